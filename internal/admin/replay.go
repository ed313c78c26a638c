package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/taint"
)

// AuditSearch reads the audit log: a replay of its tool calls.
type AuditSearch interface {
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
}

// replayPage is how many events a --from-audit replay reads at a time (the store's cap).
const replayPage = 1000

// Notes a replay report carries, so that nobody reads more into its figures than they say.
const (
	noteHeldApproved = "a held step (approval_required) is taken as approved for what follows: its result is fed to the session"
	noteNoSideEffect = "nothing was forwarded, recorded, counted against a budget or held; kill state and lockdowns are not replayed"
	noteWithoutFlow  = "%d replayed events carry no flow facts: their session had read nothing (or they were recorded before flow facts were); they are decided as a fresh session with the tools' labels as they are now"
)

// Replay decides recorded calls again, with candidate policy files or the ones in force: the
// sessions of a replay file step by step, following each session's flow as the gateway does, or
// the tool calls of the audit log with the flow facts they recorded. It is how a policy change
// is measured before it is applied. Nothing is forwarded, stored, counted against a budget or
// held for a person.
func (s *Service) Replay(ctx context.Context, req apitype.ReplayRequest) (*apitype.ReplayReport, error) {
	if (len(req.Sessions) == 0) == (req.FromAudit == nil) {
		return nil, warden.Errorf(warden.EInvalid, "give either sessions or from_audit")
	}
	if len(req.Sessions) > apitype.MaxReplaySessions {
		return nil, warden.Errorf(warden.EInvalid, "at most %d sessions", apitype.MaxReplaySessions)
	}
	for i := range req.Sessions {
		if err := req.Sessions[i].Validate(); err != nil {
			return nil, warden.Errorf(warden.EInvalid, "session %d: %s", i+1, warden.ErrorMessage(err))
		}
	}
	engine, err := s.engineFor(ctx, req.Files)
	if err != nil {
		return nil, err
	}
	r := &replayer{s: s, ctx: ctx, engine: engine, tools: map[string]*warden.Tool{}, agents: map[string]*warden.Agent{},
		manifests: map[string]map[string][]byte{}}
	rep := &apitype.ReplayReport{PolicyVersion: engine.Version(), Summary: apitype.ReplaySummary{ByEffect: map[string]apitype.ReplayCounts{}}}
	if req.FromAudit != nil {
		err = r.audit(rep, *req.FromAudit)
	} else {
		err = r.sessions(rep, req.Sessions)
	}
	if err != nil {
		return nil, err
	}
	rep.Notes = append(rep.Notes, noteNoSideEffect)
	return rep, nil
}

// replayer is one replay: its policies and what it has read of the store.
type replayer struct {
	s      *Service
	ctx    context.Context
	engine *cedar.Engine

	tools     map[string]*warden.Tool      // nil: no such tool
	agents    map[string]*warden.Agent     // by name
	manifests map[string]map[string][]byte // MCP tool → tool name → its pinned manifest
}

// verdict is a replayed decision: allow, deny or approval_required, as the gateway would end.
type verdict struct {
	effect, reason, message string
	policies                []string
}

func (v verdict) blocked() bool { return v.effect != warden.EffectAllow }

// decide judges one call as the gateway's pipeline does from the tool on: an unknown or
// disabled tool and unreadable arguments are denied; policy decides the rest, and an allowed
// call that its tool or risk sends to a person is held.
func (r *replayer) decide(agent *warden.Agent, t *warden.Tool, action, resource string, args map[string]any, argsErr error, session, onBehalfOf string, at time.Time, facts *warden.FlowFacts) verdict {
	switch {
	case t == nil:
		return verdict{effect: warden.EffectDeny, reason: warden.ReasonUnknownTool, message: "no tool of that name is registered"}
	case t.Disabled:
		return verdict{effect: warden.EffectDeny, reason: warden.ReasonToolDisabled, message: "tool " + t.Name + " is disabled"}
	case argsErr != nil:
		return verdict{effect: warden.EffectDeny, reason: warden.ReasonInvalidArguments, message: "the arguments are not a JSON object warden can read"}
	}
	d := r.engine.Decide(&warden.Request{Agent: agent, Tool: t, Action: action, Resource: resource, Arguments: args,
		SessionID: session, OnBehalfOf: onBehalfOf, Time: at, Flow: facts})
	v := verdict{effect: d.Effect, reason: d.Reason, message: d.Message, policies: d.Policies}
	switch d.Effect {
	case warden.EffectAllow:
		if why := gateway.ApprovalReason(t, action, d); why != "" {
			v.effect, v.reason, v.message = warden.EffectApprovalRequired, warden.ReasonApprovalRequired, "a person must approve: "+why
		}
	case warden.EffectApprovalRequired:
	default:
		v.effect = warden.EffectDeny
	}
	return v
}

// tool returns the registered tool of that name (the built-in egress tool too), or nil.
func (r *replayer) tool(name string) (*warden.Tool, error) {
	if t, ok := r.tools[name]; ok {
		return t, nil
	}
	if name == warden.EgressTool.Name {
		return warden.EgressTool, nil
	}
	t, err := r.s.store.Tool(r.ctx, name)
	switch {
	case warden.ErrorCode(err) == warden.ENotFound || warden.ErrorCode(err) == warden.EInvalid:
		t = nil
	case err != nil:
		return nil, err
	}
	r.tools[name] = t
	return t, nil
}

// agent returns the agent of that name, or one made up (active, owned by owner) when none is
// registered: policies may be written, and replayed, before an agent exists.
func (r *replayer) agent(name, owner string) (*warden.Agent, error) {
	if a, ok := r.agents[name]; ok {
		return a, nil
	}
	a, err := r.s.store.Agent(r.ctx, name)
	switch {
	case warden.ErrorCode(err) == warden.ENotFound:
		a = &warden.Agent{Name: name, Owner: owner, Status: warden.AgentActive}
	case err != nil:
		return nil, err
	}
	r.agents[name] = a
	return a, nil
}

// labels resolves an action's flow labels as the gateway does (gateway.FlowLabels): the
// admin's labels, else the pinned MCP manifest's annotations, else (an HTTP route) its method,
// else the defaults.
func (r *replayer) labels(t *warden.Tool, action string) (warden.FlowLabels, error) {
	if t == nil || t.Kind != warden.ToolMCP && t.Kind != warden.ToolMCPCommand {
		return gateway.FlowLabels(t, action, nil), nil
	}
	byName, ok := r.manifests[t.Name]
	if !ok {
		rows, err := r.s.store.ToolManifests(r.ctx, t.Name)
		if err != nil {
			return warden.FlowLabels{}, err
		}
		byName = map[string][]byte{}
		for _, m := range rows {
			byName[m.Name] = m.Manifest
		}
		r.manifests[t.Name] = byName
	}
	return gateway.FlowLabels(t, action, byName[action]), nil
}

// sessions replays each session from a fresh flow state: every step is decided with the facts
// of the steps before it, and the result of a step that was allowed or held is fed to the
// session; a denied step never ran, so its result is not.
func (r *replayer) sessions(rep *apitype.ReplayReport, sessions []apitype.ReplaySession) error {
	flows := taint.New(taint.Config{}, nil)
	now := r.s.now()
	for i, sess := range sessions {
		agent, err := r.agent(sess.Agent, "")
		if err != nil {
			return err
		}
		name := sess.Name
		if name == "" {
			name = fmt.Sprintf("%s/%s", sess.Agent, sess.Session)
		}
		sr := apitype.ReplaySessionReport{Name: name, Agent: sess.Agent, Session: sess.Session}
		key := taint.Key{Agent: sess.Agent, Session: sess.Session}
		sourceStep := map[string]int{} // synthetic decision id → step
		for j, st := range sess.Steps {
			t, err := r.tool(st.Tool)
			if err != nil {
				return err
			}
			labels, err := r.labels(t, st.Action)
			if err != nil {
				return err
			}
			args, argsErr := gateway.DecodeArguments(st.Args)
			facts := flows.Facts(key, labels, args)
			v := r.decide(agent, t, st.Action, st.Resource, args, argsErr, sess.Session, sess.OnBehalfOf, now, facts)
			step := apitype.ReplayStepReport{Index: j + 1, Tool: st.Tool, Action: st.Action, Label: st.Label, Effect: v.effect,
				Reason: v.reason, Message: v.message, Policies: v.policies, Labels: labels, Expect: st.Expect}
			for _, ta := range facts.Tainted {
				step.Tainted = append(step.Tainted, apitype.ReplayTaint{Arg: ta.Arg, Kind: ta.Kind, SourceStep: sourceStep[ta.SourceDecision],
					SourceTool: ta.SourceTool, SourceAction: ta.SourceAction})
			}
			if !v.blocked() || v.effect == warden.EffectApprovalRequired {
				id := fmt.Sprintf("replay:%d:%d", i+1, j+1)
				sourceStep[id] = j + 1
				flows.Observe(key, taint.Source{Tool: st.Tool, Action: st.Action, Decision: id}, labels, decodeResult(st.Result))
				step.Fed = true
			}
			step.Mismatch = !expected(st.Expect, v)
			sr.Blocked = sr.Blocked || v.blocked()
			countStep(&rep.Summary, name, step)
			sr.Steps = append(sr.Steps, step)
		}
		flows.End(key)
		if e := sess.Expect; e != nil && e.Blocked != nil && *e.Blocked != sr.Blocked {
			sr.Mismatch = fmt.Sprintf("expected blocked=%t, got blocked=%t", *e.Blocked, sr.Blocked)
			rep.Summary.Mismatches++
		}
		rep.Sessions = append(rep.Sessions, sr)
	}
	ratios(&rep.Summary)
	rep.Notes = append(rep.Notes, noteHeldApproved)
	return nil
}

// decodeResult reads a step's result for the flow state: JSON with exact numbers, as the
// gateway reads a tool's output; nil when there is none.
func decodeResult(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// expected reports whether a step's expectation holds ("" expects nothing).
func expected(expect string, v verdict) bool {
	switch expect {
	case "":
		return true
	case apitype.ReplayBlocked:
		return v.blocked()
	}
	return expect == v.effect
}

// why says, for a person reading a miss, what decided a step.
func why(st apitype.ReplayStepReport) string {
	parts := []string{st.Reason}
	switch {
	case len(st.Policies) > 0:
		parts = append(parts, "by "+strings.Join(st.Policies, ", "))
	case st.Message != "":
		parts = append(parts, st.Message)
	}
	var tainted []string
	for _, t := range st.Tainted {
		tainted = append(tainted, fmt.Sprintf("%s (%s from step %d)", t.Arg, t.Kind, t.SourceStep))
	}
	if len(tainted) == 0 {
		parts = append(parts, "no argument tainted")
	} else {
		parts = append(parts, "tainted: "+strings.Join(tainted, ", "))
	}
	parts = append(parts, fmt.Sprintf("labels output=%s data=%s effect=%s", st.Labels.Output.Value, st.Labels.Data.Value, st.Labels.Effect.Value))
	return strings.Join(parts, "; ")
}

// countStep adds a step to the summary; a labelled step the policies got wrong is a miss.
func countStep(sum *apitype.ReplaySummary, session string, st apitype.ReplayStepReport) {
	c := sum.ByEffect[st.Labels.Effect.Value]
	sum.Calls++
	c.Calls++
	switch st.Effect {
	case warden.EffectAllow:
		sum.Allowed++
		c.Allowed++
	case warden.EffectApprovalRequired:
		sum.Held++
		c.Held++
	default:
		sum.Denied++
		c.Denied++
	}
	sum.ByEffect[st.Labels.Effect.Value] = c
	if st.Mismatch {
		sum.Mismatches++
	}
	allowed := st.Effect == warden.EffectAllow
	switch st.Label {
	case apitype.ReplayAttack:
		sum.AttackCalls++
		if !allowed {
			sum.AttackBlocked++
			return
		}
	case apitype.ReplayBenign:
		sum.BenignCalls++
		if allowed {
			sum.BenignAllowed++
			return
		}
	default:
		return
	}
	sum.Misses = append(sum.Misses, apitype.ReplayMiss{Session: session, Step: st.Index, Label: st.Label, Effect: st.Effect, Why: why(st)})
}

// ratios computes the attack and benign ratios; with no labelled steps of a kind its ratio is 0.
func ratios(sum *apitype.ReplaySummary) {
	if sum.AttackCalls > 0 {
		sum.AttackRatio = float64(sum.AttackBlocked) / float64(sum.AttackCalls)
	}
	if sum.BenignCalls > 0 {
		sum.BenignRatio = float64(sum.BenignAllowed) / float64(sum.BenignCalls)
	}
}
