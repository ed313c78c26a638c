package cedar

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// toolEntities are the entity ids and parent sets every request on one tool shares; the engine
// builds them once per registered tool rather than once per decision.
type toolEntities struct {
	toolUID   types.EntityUID
	groupUID  types.EntityUID    // Action::"<tool>"
	inTool    types.EntityUIDSet // {Tool::"<tool>"}: parents of a Resource
	inGroup   types.EntityUIDSet // {Action::"<tool>"}: parents of an action
	actionIDs map[string]string  // tool-local action → "<tool>:<action>", for http tools
	toolName  types.Value        // context.tool, boxed once
	// closed: a call may name only the actions of actionIDs (a decision-only tool), listed in
	// actions for a refusal's message; schemas are their input schemas.
	closed  bool
	actions []string
	schemas map[string]*InputSchema
}

// riskValues are context.risk and context.risk_level for each risk, boxed once rather than on
// every decision.
var riskValues = func() map[warden.Risk][2]types.Value {
	m := map[warden.Risk][2]types.Value{}
	for _, r := range []warden.Risk{warden.RiskLow, warden.RiskMedium, warden.RiskHigh, warden.RiskCritical} {
		m[r] = [2]types.Value{types.String(r), types.Long(r.Level())}
	}
	return m
}()

func newToolEntities(tv *toolVocabulary) *toolEntities {
	te := &toolEntities{
		toolUID:  types.NewEntityUID(typeTool, types.String(tv.name)),
		groupUID: types.NewEntityUID(typeAction, types.String(tv.name)),
		toolName: types.String(tv.name),
		closed:   tv.closed,
		actions:  tv.actions,
		schemas:  tv.schemas,
	}
	te.inTool = types.NewEntityUIDSet(te.toolUID)
	te.inGroup = types.NewEntityUIDSet(te.groupUID)
	if len(tv.actions) > 0 {
		te.actionIDs = make(map[string]string, len(tv.actions))
		for _, a := range tv.actions {
			te.actionIDs[a] = tv.name + ":" + a
		}
	}
	return te
}

// quoteAction quotes an action a caller named, for a message, cut short.
func quoteAction(a string) string {
	if len(a) > 80 {
		a = a[:80] + "…"
	}
	return strconv.Quote(a)
}

func (te *toolEntities) actionID(tool, action string) string {
	if id, ok := te.actionIDs[action]; ok {
		return id
	}
	return tool + ":" + action
}

// requestEntities is the entity store of one request: the agent, the action and its tool group,
// the resource and its tool. Nothing else exists: an entity a policy names but the request does
// not has no parents, and reading its attributes is an evaluation error.
//
// The agent entity is built on first use: most policies decide on the scope alone and never read
// the agent's attributes or tags.
type requestEntities struct {
	agent     *warden.Agent
	principal types.EntityUID
	built     bool
	entity    types.Entity

	action      types.EntityUID
	tool        *toolEntities
	resource    types.EntityUID
	hasResource bool
	sets        map[types.EntityUID]types.Entity // the policy set's named sets
}

var _ types.EntityGetter = (*requestEntities)(nil)

func (re *requestEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch {
	case uid == re.principal:
		if !re.built {
			re.entity = agentEntity(re.principal, re.agent)
			re.built = true
		}
		return re.entity, true
	case uid == re.action:
		return types.Entity{UID: uid, Parents: re.tool.inGroup}, true
	case uid == re.tool.groupUID:
		return types.Entity{UID: uid}, true
	case re.hasResource && uid == re.resource:
		return types.Entity{UID: uid, Parents: re.tool.inTool}, true
	case uid == re.tool.toolUID:
		return types.Entity{UID: uid}, true
	case uid.Type == typeSet:
		e, ok := re.sets[uid]
		return e, ok
	}
	return types.Entity{}, false
}

func agentEntity(uid types.EntityUID, a *warden.Agent) types.Entity {
	tags := make(types.RecordMap, len(a.Labels))
	for k, v := range a.Labels {
		tags[types.String(k)] = types.String(v)
	}
	return types.Entity{
		UID: uid,
		Attributes: types.NewRecord(types.RecordMap{
			attrOwner:   types.String(a.Owner),
			attrPurpose: types.String(a.Purpose),
		}),
		Tags: types.NewRecord(tags),
	}
}

// invalidRequest is a request policy cannot judge. Its message is safe to show the caller; its
// reason is warden.ReasonInvalidRequest unless it says otherwise.
type invalidRequest struct {
	msg    string
	reason string
}

func (e *invalidRequest) Error() string { return e.msg }

// translate turns a warden request into a Cedar request and its entities. It refuses a request
// that is malformed or whose arguments have no Cedar value: judging a request that is not what
// the agent sent could allow what no policy meant to.
//
// With checkArgs, the arguments must fit the action's input schema (invalid_arguments). A
// listing (MayPermit) asks about an action with no arguments at all, which a schema's
// required members would refuse: it does not check them.
func (e *Engine) translate(r *warden.Request, checkArgs bool) (cedar.Request, *requestEntities, error) {
	switch {
	case r == nil:
		return cedar.Request{}, nil, &invalidRequest{msg: "no request"}
	case r.Agent == nil:
		return cedar.Request{}, nil, &invalidRequest{msg: "the request names no agent"}
	case r.Agent.Name == "":
		return cedar.Request{}, nil, &invalidRequest{msg: "the request's agent has no name"}
	case r.Tool == nil:
		return cedar.Request{}, nil, &invalidRequest{msg: "the request names no tool"}
	case r.Tool.Name == "":
		return cedar.Request{}, nil, &invalidRequest{msg: "the request's tool has no name"}
	case r.Action == "":
		return cedar.Request{}, nil, &invalidRequest{msg: fmt.Sprintf("the request on tool %q names no action", r.Tool.Name)}
	}
	risk, err := warden.ParseRisk(string(r.Tool.ActionRisk(r.Action)))
	if err != nil {
		return cedar.Request{}, nil, &invalidRequest{msg: fmt.Sprintf("tool %q: %s", r.Tool.Name, warden.ErrorMessage(err))}
	}
	te := e.tools[r.Tool.Name]
	if te == nil {
		// A tool registered after this policy set was compiled: no policy can name it yet, but
		// wildcard policies still judge the call. Its name must be valid all the same, or an action
		// id such as "a:b:c" could be read as belonging to another tool.
		if err := warden.ValidateName("tool", r.Tool.Name); err != nil {
			return cedar.Request{}, nil, &invalidRequest{msg: warden.ErrorMessage(err)}
		}
		tv, err := toolVocabularyOf(r.Tool)
		if err != nil {
			return cedar.Request{}, nil, &invalidRequest{msg: warden.ErrorMessage(err)}
		}
		te = newToolEntities(tv)
	}
	if _, declared := te.actionIDs[r.Action]; te.closed && !declared {
		return cedar.Request{}, nil, &invalidRequest{reason: warden.ReasonUnknownAction,
			msg: fmt.Sprintf("tool %s declares no action %s: it has %s", r.Tool.Name, quoteAction(r.Action), listOf("actions", te.actions))}
	}
	// The schema first: an argument of the wrong type is named as such, before a conversion
	// could fail on it for another reason.
	schema := te.schemas[r.Action]
	if !checkArgs {
		schema = nil
	}
	if err := schema.Check(r.Arguments); err != nil {
		return cedar.Request{}, nil, &invalidRequest{reason: warden.ReasonInvalidArguments, msg: err.Error()}
	}
	args, err := argsRecord(r.Arguments)
	if err != nil {
		return cedar.Request{}, nil, &invalidRequest{msg: err.Error()}
	}
	re := &requestEntities{
		agent:     r.Agent,
		principal: types.NewEntityUID(typeAgent, types.String(r.Agent.Name)),
		action:    types.NewEntityUID(typeAction, types.String(te.actionID(r.Tool.Name, r.Action))),
		tool:      te,
		resource:  te.toolUID,
		sets:      e.sets,
	}
	if r.Resource != "" {
		re.resource = types.NewEntityUID(typeResource, types.String(r.Resource))
		re.hasResource = true
	}

	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	rv, ok := riskValues[risk]
	if !ok {
		rv = [2]types.Value{types.String(risk), types.Long(risk.Level())}
	}
	num := emptyRecord
	if e.readsNum {
		num = numRecord(args)
	}
	norm := emptyRecord
	if e.readsNorm {
		norm = schema.normRecord(r.Arguments)
	}
	ctx := types.NewRecord(types.RecordMap{
		ctxArgs:          args,
		ctxNum:           num,
		ctxNorm:          norm,
		ctxRisk:          rv[0],
		ctxRiskLevel:     rv[1],
		ctxTool:          te.toolName,
		ctxLabels:        labelsRecord(r.Flow),
		ctxSession:       sessionRecord(r.SessionID, r.Flow),
		ctxTaint:         taintRecord(r.Flow, r.Arguments),
		ctxOnBehalfOf:    types.String(r.OnBehalfOf),
		ctxResource:      types.String(r.Resource),
		ctxNow:           types.Long(now.Unix()),
		ctxDatetime:      types.NewDatetime(now),
		ctxBodyInspected: types.Boolean(!r.BodyUninspected),
	})
	return cedar.Request{Principal: re.principal, Action: re.action, Resource: re.resource, Context: ctx}, re, nil
}

// labelRecords are the context.labels records of every combination of label values, built once:
// a decision looks its labels up rather than building a record.
var labelRecords = func() map[[3]string]types.Value {
	m := map[[3]string]types.Value{}
	for _, o := range []string{"", warden.OutputUntrusted, warden.OutputTrusted} {
		for _, d := range []string{"", warden.DataPrivate, warden.DataPublic} {
			for _, e := range []string{"", warden.EffectNone, warden.EffectInternal, warden.EffectExternal} {
				m[[3]string{o, d, e}] = newLabelsRecord(o, d, e)
			}
		}
	}
	return m
}()

func newLabelsRecord(output, data, effect string) types.Value {
	return types.NewRecord(types.RecordMap{
		warden.LabelOutput: types.String(output),
		warden.LabelData:   types.String(data),
		warden.LabelEffect: types.String(effect),
	})
}

// labelsRecord is context.labels: the called action's flow labels, "" each when the request
// carries no flow facts.
func labelsRecord(f *warden.FlowFacts) types.Value {
	if f == nil {
		return labelRecords[[3]string{}]
	}
	l := f.Labels
	if v, ok := labelRecords[[3]string{l.Output.Value, l.Data.Value, l.Effect.Value}]; ok {
		return v
	}
	return newLabelsRecord(l.Output.Value, l.Data.Value, l.Effect.Value)
}

var emptySet = types.NewSet()

// sessionRecord is context.session: the session's id and what it had read.
func sessionRecord(id string, f *warden.FlowFacts) types.Value {
	m := types.RecordMap{
		attrID:               types.String(id),
		attrUntrustedRead:    types.False,
		attrPrivateRead:      types.False,
		attrUntrustedSources: emptySet,
	}
	if f != nil {
		m[attrUntrustedRead] = types.Boolean(f.UntrustedRead || f.Evicted)
		m[attrPrivateRead] = types.Boolean(f.PrivateRead)
		if len(f.UntrustedSources) > 0 {
			srcs := make([]types.Value, len(f.UntrustedSources))
			for i, s := range f.UntrustedSources {
				srcs[i] = types.String(s)
			}
			m[attrUntrustedSources] = types.NewSet(srcs...)
		}
	}
	return types.NewRecord(m)
}

var noTaint = types.NewRecord(types.RecordMap{attrArgs: emptySet, attrAny: types.False})

// taintRecord is context.taint: the arguments that carry values from untrusted output. A
// session whose state was evicted cannot say which do: every argument counts (fail closed).
func taintRecord(f *warden.FlowFacts, args map[string]any) types.Value {
	if f == nil || len(f.Tainted) == 0 && !f.Evicted {
		return noTaint
	}
	names := f.TaintedArgs()
	if f.Evicted {
		// Every argument, whether or not the facts name it.
		for k := range args {
			if !slices.Contains(names, k) {
				names = append(names, k)
			}
		}
	}
	vals := make([]types.Value, len(names))
	for i, n := range names {
		vals[i] = types.String(n)
	}
	return types.NewRecord(types.RecordMap{attrArgs: types.NewSet(vals...), attrAny: types.True})
}
