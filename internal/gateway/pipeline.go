package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/redact"
	"github.com/wardenhq/warden/internal/taint"
)

// Verifier authenticates agents' tokens and knows the agents.
type Verifier interface {
	VerifyToken(ctx context.Context, token string) (*warden.Claims, error)
	// Agent returns the current state of an agent known to this replica.
	Agent(id string) (*warden.Agent, bool)
}

// Budgets consumes budgets atomically; release ends a concurrency slot. burn is the largest share
// of one budget's limit the allowed call took (budget.Budgets.Charge), recorded for detection.
type Budgets interface {
	Consume(agent, tool, action string, args map[string]any, now time.Time) (release func(), burn float64, denial *BudgetDenial, err error)
}

// BudgetDenial says which budget refused a call.
type BudgetDenial struct {
	Reason     string // budget_exceeded, or a reason waiting will not fix (budget_argument_invalid)
	Message    string
	RetryAfter time.Duration
}

// Approvals holds a call that needs a person's approval until someone decides or the hold time
// passes. A request is bound to exactly one call: agent, session, the person the agent acts for,
// tool, action, resource, argument digest and policy version.
type Approvals interface {
	Await(ctx context.Context, req *ApprovalRequest) (ApprovalResult, error)
}

// ApprovalRequest is a call waiting for a person.
type ApprovalRequest struct {
	DecisionID    string
	Agent         *warden.Agent
	SessionID     string
	OnBehalfOf    string
	Tool          *warden.Tool
	Action        string
	Resource      string
	ArgsSHA256    string
	Arguments     json.RawMessage // redacted
	Policies      []string        // the policies that asked for approval
	PolicyVersion int64
	Reason        string // why approval is needed: warden.ApprovalByPolicy, ApprovalByTool or ApprovalByRisk
	// Flow is the call's flow facts as its audit event records them (nil: the session read
	// nothing), for the person who decides.
	Flow *warden.FlowFacts
	// NoWait asks for the request's state at once, without holding the call (Call.NoWait).
	NoWait bool

	// RecordedAction and RecordedResource are Action and Resource as the audit log records them,
	// brokered secrets redacted: what the request stores and shows people. The binding covers
	// Action and Resource themselves. Empty means the same as Action and Resource.
	RecordedAction, RecordedResource string
}

// Recorded returns the action and resource to store and show: RecordedAction and
// RecordedResource, or Action and Resource where those are empty.
func (r *ApprovalRequest) Recorded() (action, resource string) {
	action, resource = r.RecordedAction, r.RecordedResource
	if action == "" {
		action = r.Action
	}
	if resource == "" {
		resource = r.Resource
	}
	return action, resource
}

// ApprovalResult is what became of an ApprovalRequest.
type ApprovalResult struct {
	State     string // warden.ApprovalApproved, ApprovalPending, ApprovalRejected, ApprovalExpired or ApprovalLimited
	RequestID string
	Message   string   // the approver's note or reason
	Approvers []string // who approved
}

// Freshness reports whether this replica cannot confirm that its kill state is current: its
// feed of the other replicas' changes is down and its last full reload is too old. It is
// asked on every call, so it must be cheap.
type Freshness interface {
	Stale(now time.Time) bool
}

// Secrets resolves brokered secret values.
type Secrets interface {
	SecretValue(ctx context.Context, name string) (string, error)
}

// Pipeline runs the pipeline every call passes, whatever its entry point. Its fields are set
// once before use.
type Pipeline struct {
	Registry *Registry
	Tokens   Verifier
	Kill     *killswitch.State // checked first on every call
	// Fresh says whether this replica's kill state is known to be current (fleet.Bus); while it
	// is stale every call is refused with stale_state. nil: always current (one replica).
	Fresh     Freshness
	Budgets   Budgets   // nil: no budgets
	Approvals Approvals // nil: a call that needs approval is denied
	// Holds are the approval requirements detection's findings put on an agent's calls
	// (internal/detect); nil: none.
	Holds   Holds
	Secrets Secrets
	Audit   warden.AuditLog
	Log     *slog.Logger
	// Clock tells the time of decisions, kill checks and decision expiry (Run); nil: the real
	// clock.
	Clock clock.Clock
	// Refusals records refused tokens (token.refuse) within per-source limits
	// (identity.RefusalLog), since anyone can send junk tokens; nil records them in Audit.
	Refusals warden.AuditLog
	// Flow keeps what each session read and the values of its untrusted output (context.session,
	// context.taint); nil: every call is decided as the first of a fresh session.
	Flow *taint.Sessions
	// Tracer makes each call's spans (internal/tracing); nil: none, at no cost.
	Tracer trace.Tracer
	// Observer is told of every decision and outcome (metrics); nil: nobody is.
	Observer Observer
	// Shadow compares every policy decision with the registry's candidate policy set and
	// records the differences (shadow mode); nil: no call is compared.
	Shadow *Shadow

	inflight inflight
	pending  pendingDecisions
}

func (g *Pipeline) now() time.Time { return clock.Or(g.Clock).Now() }

// Authenticate checks the request's Bearer token and returns the agent. A refusal is an audit
// event; the error is EUnauthenticated with a safe message.
func (g *Pipeline) Authenticate(r *http.Request) (*Caller, error) {
	token := bearerToken(r)
	var err error
	var claims *warden.Claims
	if token == "" {
		err = warden.Errorf(warden.EUnauthenticated, "a Bearer access token is required")
	} else {
		claims, err = g.Tokens.VerifyToken(r.Context(), token)
	}
	if err == nil && !resourceAllows(claims.Audience, r.URL.Path) {
		err = warden.Errorf(warden.EUnauthenticated, "the token is for another resource")
	}
	var agent *warden.Agent
	if err == nil {
		var ok bool
		if agent, ok = g.Tokens.Agent(claims.AgentID()); !ok {
			err = warden.Errorf(warden.EUnauthenticated, "agent not found")
		}
	}
	if err != nil {
		// The path is the caller's to choose: an agent whose token has expired may still echo a
		// brokered secret in it.
		rd := g.eventRedactor(g.Registry.current(), nil)
		ev := &warden.AuditEvent{
			Type:     warden.EventTokenRefuse,
			Actor:    warden.EventActor{Kind: warden.ActorAgent, Source: r.RemoteAddr},
			Target:   warden.EventTarget{Action: rd.Secrets(r.Method + " " + r.URL.Path)},
			Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonInvalidToken, Message: warden.ErrorMessage(err)},
		}
		refusals := g.Refusals
		if refusals == nil {
			refusals = g.Audit
		}
		if aerr := refusals.Append(r.Context(), ev); aerr != nil {
			g.Log.Error("audit append failed", "type", ev.Type, "err", aerr)
		}
		if warden.ErrorCode(err) != warden.EUnauthenticated {
			err = warden.WrapError(warden.EUnauthenticated, "token could not be verified", err)
		}
		return nil, err
	}
	return &Caller{Claims: claims, Agent: agent, Source: r.RemoteAddr}, nil
}

// resourceAllows reports whether a token with audience aud may be used at path. A token issued
// for one MCP endpoint (an RFC 8707 resource, its audience warden's URL of /mcp or /mcp/<tool>)
// is good at that endpoint only, never at another one or at /http or /v1/authorize; a token
// with warden's own audience is good everywhere.
//
// An endpoint's audience may sit under a path of warden's public URL (https://host/warden/mcp,
// behind a proxy that strips /warden): what counts is its MCP endpoint at the end, which the
// request's path must be. A token bound to an endpoint is never taken for an unbound one.
func resourceAllows(aud []string, path string) bool {
	bound := false
	for _, a := range aud {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		m := mcpEndpoint.FindString(u.Path)
		if m == "" {
			continue
		}
		bound = true
		if strings.TrimSuffix(m, "/") == strings.TrimSuffix(path, "/") {
			return true
		}
	}
	return !bound
}

// mcpEndpoint is the MCP endpoint at the end of an audience's path: /mcp or /mcp/<tool>.
var mcpEndpoint = regexp.MustCompile(`/mcp(?:/[^/]+)?/?$`)

func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// Authorize runs the pipeline for one call an authenticated agent asks to make (Authenticate
// came first; UpstreamHeaders brokers the credential of an allowed call after). Each step is a
// method of the call's request and says whether the call may go on; one that refuses has set
// the decision and recorded the refusal. Every failure on the way denies. The answer is
// never nil.
func (g *Pipeline) Authorize(ctx context.Context, c *Caller, call *Call) *Permit {
	r := g.newRequest(ctx, c, call)
	r.resolve()
	if r.killState() && r.decide() && r.approve() && r.budget() {
		r.record()
	}
	r.observe()
	r.p.span.decided(r.p)
	return r.p
}

// observe tells the Observer of the decision, and keeps what it returns for the outcome.
func (r *request) observe() {
	if r.g.Observer == nil {
		return
	}
	o := r.g.Observer.Decided(r.labels(), r.p.Decision.Effect, r.p.Decision.Reason, time.Since(r.start))
	if r.p.allowed != nil {
		r.p.allowed.outcome = o
	}
}

// labels names the call for the Observer: only a registered tool, and only one of its known
// actions, is named; anything else an agent sent is OtherLabel.
func (r *request) labels() CallLabels {
	l := CallLabels{Entry: r.call.Entry, Tool: OtherLabel, Action: OtherLabel}
	if r.e != nil {
		l.Tool = r.e.tool.Name
		if _, known := r.e.labels[r.call.Action]; known {
			l.Action = r.call.Action
		}
	}
	return l
}

// request is one call on its way through Authorize: what each step found, for the steps after
// it. It lives on the stack of Authorize; what outlives the call is in the Permit.
type request struct {
	g    *Pipeline
	ctx  context.Context
	c    *Caller
	call *Call
	now  time.Time // when the call arrived; record stamps the moment of the decision
	// start is when the call arrived on the monotonic clock, for the Observer's latency: zero
	// without an Observer.
	start time.Time
	p     *Permit // the answer

	// Set by resolve.
	snap    *snapshot
	e       *entry // the tool the call names; nil when none is registered by that name
	args    map[string]any
	argsErr error
	rd      *redact.Redactor   // the call's event redactor (eventRedactor)
	ev      *warden.AuditEvent // the call's tool.call event

	release func()  // set by budget: the budgets' concurrency slot
	burn    float64 // set by budget: the largest share of a budget's limit the call took
}

// newRequest starts a call's request: its time, decision ID and span.
func (g *Pipeline) newRequest(ctx context.Context, c *Caller, call *Call) request {
	r := request{
		g: g, ctx: ctx, c: c, call: call, now: g.now(),
		p: &Permit{Decision: warden.Decision{ID: warden.NewID("dec_")}, Ctx: ctx},
	}
	if g.Observer != nil {
		r.start = time.Now()
	}
	if g.Tracer != nil {
		r.startSpan()
	} else {
		r.p.Trace = call.Trace.Child()
	}
	return r
}

// resolve finds what the call names: its tool in the current snapshot, its arguments decoded,
// and the audit event that records it. It refuses nothing: what it could not resolve is
// refused after the kill state is checked, so that a stopped agent is told it is stopped
// whatever it called.
func (r *request) resolve() {
	r.snap = r.g.Registry.current()
	r.e = r.snap.tools[r.call.Tool]
	r.args, r.argsErr = DecodeArguments(r.call.Arguments)
	r.rd = r.g.eventRedactor(r.snap, r.e)
	var risk warden.Risk
	if t := r.tool(); t != nil {
		risk = t.ActionRisk(r.call.Action)
	}
	r.ev = r.g.callEvent(r.c, r.call, r.rd, r.p, r.now, r.args, risk)
	r.p.span.resolved(r)
}

// tool returns the registered tool the call names, or nil.
func (r *request) tool() *warden.Tool {
	if r.e == nil {
		return nil
	}
	return r.e.tool
}

// refuse ends the call with a refusal and records it. A refusal that cannot be recorded is
// still a refusal; the failure is logged. It returns false, for a step to return.
func (r *request) refuse(effect, reason, message string) bool {
	r.p.Decision.Effect, r.p.Decision.Reason, r.p.Decision.Message = effect, reason, message
	span := r.p.span.child(spanAudit)
	r.g.record(r.ctx, r.ev, r.p, r.rd)
	endSpan(span)
	return false
}

// StaleStateMessage is the answer to every call while this replica's kill state is stale.
const StaleStateMessage = "this replica cannot confirm its kill state is current (its link to the other replicas is down); retry later or on another replica"

// killState checks the kill state first: the agent may have been stopped since its token was
// checked, the tool disabled, or a lockdown begun. A kill state this replica cannot confirm is
// current may miss a kill made on another replica: then nothing is allowed (fail closed, with
// no option to fail open).
func (r *request) killState() bool {
	if r.g.Fresh != nil && r.g.Fresh.Stale(r.now) {
		return r.refuse(warden.EffectError, warden.ReasonStaleState, StaleStateMessage)
	}
	if reason, msg := r.g.Kill.Load().Check(r.c.Agent.ID, r.c.Claims.Epoch, r.tool(), r.now); reason != "" {
		return r.refuse(warden.EffectDeny, reason, msg)
	}
	return true
}

// decide refuses a call on no tool, a disabled tool or with undecodable arguments, and asks
// policy about the rest. Without a valid policy set nothing is allowed.
func (r *request) decide() bool {
	if r.e == nil {
		return r.refuse(warden.EffectDeny, warden.ReasonUnknownTool, "no tool named "+quote(r.call.Tool))
	}
	r.p.Tool = r.e.tool
	if r.e.tool.Disabled {
		return r.refuse(warden.EffectDeny, warden.ReasonToolDisabled, "tool "+r.e.tool.Name+" is disabled")
	}
	if reason, msg := manifestRefusal(r.g.Kill.Load(), r.e, r.call.Action); reason != "" {
		return r.refuse(warden.EffectDeny, reason, msg)
	}
	if reason, msg := entryRefusal(r.e.tool, r.call.Entry); reason != "" {
		return r.refuse(warden.EffectDeny, reason, msg)
	}
	if r.argsErr != nil {
		return r.refuse(warden.EffectDeny, warden.ReasonInvalidArguments, r.argsErr.Error())
	}
	if r.snap.engine == nil {
		return r.refuse(warden.EffectDeny, warden.ReasonPolicyError, "no valid policy set is in force")
	}
	flow := r.flowFacts()
	if flow == nil {
		return r.refuse(warden.EffectError, warden.ReasonFlowUnavailable, "what this session read could not be read; retry later")
	}
	if recorded(flow) {
		r.ev.Flow = redactedFlow(flow, r.rd)
	}
	r.p.span.action(r.labels().Action) // bounded as metrics are: a name the agent chose freely is "other"
	span := r.p.span.child(spanPolicy)
	req := &warden.Request{
		Agent: r.c.Agent, Tool: r.e.tool, Action: r.call.Action, Resource: r.call.Resource, Arguments: r.args,
		SessionID: flow.Session, OnBehalfOf: r.c.Claims.OnBehalfOf(), Time: r.now, BodyUninspected: r.call.BodyUninspected,
		Flow: flow,
	}
	d := r.snap.engine.Decide(req)
	endSpan(span)
	if r.g.Shadow != nil {
		r.g.Shadow.compare(r, req, d)
	}
	d.ID = r.p.Decision.ID
	r.p.Decision = d
	switch d.Effect {
	case warden.EffectAllow, warden.EffectApprovalRequired:
		return true
	}
	return r.refuse(d.Effect, d.Reason, d.Message)
}

// approve holds a call that policy, its tool or its risk sends to a person until someone
// decides (ApprovalReason says when); any answer but an approval refuses it.
func (r *request) approve() bool {
	why := warden.ApprovalByPolicy
	if r.p.Decision.Effect == warden.EffectAllow {
		if why = ApprovalReason(r.e.tool, r.call.Action, r.p.Decision); why == "" {
			// A finding's hold needs a person even where policy waives approval: it is
			// containment of an agent that drifted, not a rule about the tool.
			if r.g.Holds == nil || !r.g.Holds.Held(r.c.Agent.Name, r.e.tool.Name, r.call.Action, r.ev.Target.Resource, r.now) {
				return true
			}
			why = warden.ApprovalByDetection
		}
	}
	g, p := r.g, r.p
	if g.Approvals == nil {
		return r.refuse(warden.EffectApprovalRequired, warden.ReasonApprovalRequired, "this call needs a person's approval, and this server takes no approvals")
	}
	span := p.span.child(spanApproval)
	res, err := g.Approvals.Await(r.ctx, &ApprovalRequest{
		DecisionID: p.Decision.ID, Agent: r.c.Agent, SessionID: r.c.Claims.SessionID, OnBehalfOf: r.c.Claims.OnBehalfOf(),
		Tool: r.e.tool, Action: r.call.Action, Resource: r.call.Resource, ArgsSHA256: r.ev.Target.ArgsSHA256,
		RecordedAction: r.ev.Target.Action, RecordedResource: r.ev.Target.Resource,
		Arguments: r.ev.Target.Arguments, Policies: p.Decision.Policies, PolicyVersion: p.Decision.PolicyVersion, Reason: why,
		Flow: r.ev.Flow, NoWait: r.call.NoWait,
	})
	endSpan(span)
	if err != nil {
		g.Log.Error("approval failed; denying", "decision", p.Decision.ID, "err", err)
		return r.refuse(warden.EffectError, warden.ReasonApprovalError, "the approval could not be obtained")
	}
	p.ApprovalID = res.RequestID
	switch res.State {
	case warden.ApprovalApproved:
		p.Decision.Effect, p.Decision.Reason = warden.EffectApproved, warden.ReasonApproved
		p.Decision.Message = "approved by " + strings.Join(res.Approvers, ", ") + " (request " + res.RequestID + ")"
		return true
	case warden.ApprovalPending:
		return r.refuse(warden.EffectApprovalRequired, warden.ReasonApprovalPending, "waiting for a person's approval: request "+res.RequestID+"; send the same call again once it is approved")
	case warden.ApprovalLimited:
		return r.refuse(warden.EffectDeny, warden.ReasonApprovalLimit, res.Message)
	case warden.ApprovalRejected:
		return r.refuse(warden.EffectRejected, warden.ReasonApprovalRejected, "rejected: "+res.Message+" (request "+res.RequestID+")")
	default:
		return r.refuse(warden.EffectExpired, warden.ReasonApprovalExpired, "the approval request "+res.RequestID+" expired")
	}
}

// budget consumes the call's budgets, atomically; a concurrency slot it takes is released when
// the call is done, or refused after all.
func (r *request) budget() bool {
	r.release = func() {}
	if r.g.Budgets == nil {
		return true
	}
	rel, burn, denial, err := r.g.Budgets.Consume(r.c.Agent.Name, r.e.tool.Name, r.call.Action, r.args, r.now)
	if err != nil {
		r.g.Log.Error("budget check failed", "agent", r.c.Agent.Name, "tool", r.e.tool.Name, "err", err)
		return r.refuse(warden.EffectDeny, warden.ReasonBudgetError, "budgets could not be checked")
	}
	if denial != nil {
		r.p.RetryAfter = denial.RetryAfter
		reason := denial.Reason
		if reason == "" {
			reason = warden.ReasonBudgetExceeded
		}
		return r.refuse(warden.EffectDeny, reason, denial.Message)
	}
	r.release, r.burn = rel, burn
	return true
}

// record registers the allowed call in flight, checks the kill state once more and makes the
// allow durable; only then does the Permit carry the call's context and its Done.
//
// Registered first, so that a kill from now on finds the call in flight and cancels it; then
// the kill state once more: a kill that changed the state before this check is seen here, and
// one that changes it after finds the call registered. Either way nothing of the agent is
// decided allowed, or goes upstream, once kill has returned.
func (r *request) record() {
	g, p := r.g, r.p
	callCtx, cancel := context.WithCancel(r.ctx)
	a := &allowed{g: g, ctx: r.ctx, ev: r.ev, cancel: cancel, release: r.release}
	a.id = g.inflight.add(r.c.Agent.ID, r.e.tool.Name, r.call.Action, cancel)
	decided := g.now()
	ks := g.Kill.Load()
	reason, msg := ks.Check(r.c.Agent.ID, r.c.Claims.Epoch, r.e.tool, decided)
	if reason == "" {
		// A quarantine of the tool's manifest that the reconciler did not find in flight.
		reason, msg = manifestRefusal(ks, r.e, r.call.Action)
	}
	if reason != "" {
		a.unregister()
		r.refuse(warden.EffectDeny, reason, msg)
		return
	}

	// Durable before the action: an allow that is not on record does not happen. The event is
	// stamped with the moment of the decision.
	r.ev.Time = decided
	g.fillDecision(r.ev, p, r.rd)
	r.ev.Decision.BudgetBurn = r.burn
	span := p.span.child(spanAudit)
	err := g.Audit.Append(r.ctx, r.ev)
	endSpan(span)
	if err != nil {
		a.unregister()
		g.Log.Error("audit append failed; denying", "decision", p.Decision.ID, "err", err)
		p.Decision.Effect, p.Decision.Reason, p.Decision.Message = warden.EffectError, warden.ReasonAuditUnavailable, "the audit log is unavailable"
		return
	}
	p.Ctx = callCtx
	p.allowed = a
	p.by, p.agentID, p.epoch = g, r.c.Agent.ID, r.c.Claims.Epoch
	p.span.startUpstream(p)
}

// allowed is a call the pipeline let through, registered in flight, until its Done. It is one
// allocation where closures over the same state would be several.
type allowed struct {
	g       *Pipeline
	ctx     context.Context // the caller's, for the outcome's record
	ev      *warden.AuditEvent
	id      uint64 // in flight
	cancel  context.CancelFunc
	release func()          // the budgets' concurrency slot
	outcome OutcomeObserver // from the Observer, when there is one
}

// StopMessage says why warden cancelled an allowed call when the kill state now refuses it —
// the agent killed or suspended, the tool disabled, a lockdown — in the words a refused call
// gets; "" when it does not (the session ended, the agent cancelled it) or p was not allowed.
// It holds after Done, when the entry point tells the agent why its call ended.
func (p *Permit) StopMessage() string {
	if p.by == nil {
		return ""
	}
	_, msg := p.by.Kill.Load().Check(p.agentID, p.epoch, p.Tool, p.by.now())
	return msg
}

// unregister takes the call off the in-flight list, cancels its context and releases its slot.
func (a *allowed) unregister() {
	a.g.inflight.remove(a.id)
	a.cancel()
	a.release()
}

// finished tells the Observer of the outcome.
func (a *allowed) finished(o Outcome) {
	if a.outcome != nil {
		a.outcome.Finished(o)
	}
}

// record writes the outcome's audit event.
func (a *allowed) record(o Outcome) {
	a.g.recordOutcome(context.WithoutCancel(a.ctx), a.ev, o, false)
}

// recordLater writes the outcome's audit event for an entry point that answered without
// waiting for it (Permit.End): the log may let it share the next commit.
func (a *allowed) recordLater(o Outcome) {
	a.g.recordOutcome(context.WithoutCancel(a.ctx), a.ev, o, true)
}

// laterAppender is an audit log that can let an event no action waits on share the next
// event's commit (audit.Log.AppendLater).
type laterAppender interface {
	AppendLater(ctx context.Context, ev *warden.AuditEvent) error
}

// callEvent starts the audit event of a call with what is known before any decision. args are
// the decoded arguments, or nil when they could not be decoded. r is the call's
// eventRedactor: the agent chose the tool, action and resource it names, its session id and
// its arguments, and may have put a brokered secret in any of them. risk is the registered
// tool's, "" for a call that names none.
func (g *Pipeline) callEvent(c *Caller, call *Call, r *redact.Redactor, p *Permit, now time.Time, args map[string]any, risk warden.Risk) *warden.AuditEvent {
	ev := warden.NewToolCallEvent(now,
		warden.EventActor{
			Kind: warden.ActorAgent, ID: c.Agent.ID, Name: c.Agent.Name, Owner: c.Agent.Owner,
			OnBehalfOf: r.Secrets(c.Claims.OnBehalfOf()), SessionID: r.Secrets(c.Claims.SessionID), Source: c.Source,
		},
		warden.EventTarget{Tool: r.Secrets(call.Tool), Action: r.Secrets(call.Action), Resource: r.Secrets(call.Resource), Risk: risk},
		warden.EventDecision{ID: p.Decision.ID},
		p.Trace.TraceID, p.Trace.SpanID)
	if len(call.Arguments) == 0 {
		return ev
	}
	// The digest covers the canonical unredacted arguments (sorted keys, numbers as written), so
	// the same call hashes the same whatever its layout; undecodable arguments hash as sent.
	var buf [512]byte
	encoded, ok := encodeArgs(buf[:0], args)
	canonical := []byte(call.Arguments)
	if ok {
		canonical = encoded
	}
	sum := sha256.Sum256(canonical)
	var digest [2 * sha256.Size]byte
	hex.Encode(digest[:], sum[:])
	ev.Target.ArgsSHA256 = string(digest[:])
	if args == nil {
		ev.Target.Arguments = json.RawMessage(`"` + redact.Marker + `"`)
		return ev
	}
	if ok && !r.Redacts(args) {
		// Nothing to redact: the record is the canonical form, as encoding the redacted copy
		// would have made it.
		ev.Target.Arguments = bytes.Clone(canonical)
	} else {
		redacted, _ := r.Value(args).(map[string]any) // a map stays a map
		if b, ok := encodeArgs(make([]byte, 0, len(call.Arguments)+len(redact.Marker)), redacted); ok {
			ev.Target.Arguments = b
		}
	}
	return ev
}

// encodeArgs appends decoded arguments (nil: none could be decoded) to dst as json.Marshal
// writes them, and reports whether it could.
func encodeArgs(dst []byte, v map[string]any) ([]byte, bool) {
	if v == nil {
		return dst, false
	}
	if b, ok := appendJSON(dst, v); ok {
		return b, true
	}
	b, err := json.Marshal(v)
	return b, err == nil
}

// eventRedactor returns the redactor of the audit event of a call on e: the tool's brokered
// secret values and sensitive argument names. For a call that names no registered tool it knows
// the brokered secrets of every tool, since an agent may echo any of them where a tool's name
// goes; only a call refused for that reason pays for it.
func (g *Pipeline) eventRedactor(snap *snapshot, e *entry) *redact.Redactor {
	if e != nil {
		return redact.New(g.secretValues(e), e.tool.SensitiveArgs)
	}
	if snap == nil {
		return redact.New(nil, nil)
	}
	entries := make([]*entry, 0, len(snap.tools))
	for _, e := range snap.tools {
		entries = append(entries, e)
	}
	return redact.New(g.secretValues(entries...), nil)
}

// secretValues returns the brokered secret values of tools, so that an agent echoing one to
// warden does not put it in the log.
func (g *Pipeline) secretValues(entries ...*entry) []string {
	var names []string
	for _, e := range entries {
		if e.tool.Secret != "" {
			names = append(names, e.tool.Secret)
		}
		for _, n := range e.tool.SecretEnv {
			names = append(names, n)
		}
	}
	var values []string
	for _, n := range names {
		if v, err := g.Secrets.SecretValue(context.Background(), n); err == nil {
			values = append(values, v)
		}
	}
	return values
}

// fillDecision copies the decision into the event; its message may quote what the agent sent
// (a tool's name, an argument's), so r takes the brokered secrets out of it.
func (g *Pipeline) fillDecision(ev *warden.AuditEvent, p *Permit, r *redact.Redactor) {
	ev.Decision = warden.EventDecision{
		ID:     p.Decision.ID,
		Effect: p.Decision.Effect, Reason: p.Decision.Reason, Message: r.Secrets(p.Decision.Message),
		Policies: p.Decision.Policies, PolicyVersion: p.Decision.PolicyVersion,
	}
	for _, pe := range p.Decision.Errors {
		ev.Decision.Errors = append(ev.Decision.Errors, warden.PolicyError{Policy: pe.Policy, Message: r.Secrets(pe.Message)})
	}
}

// record writes the event of a refused call. A refusal that cannot be recorded is still a
// refusal; the failure is logged.
func (g *Pipeline) record(ctx context.Context, ev *warden.AuditEvent, p *Permit, r *redact.Redactor) {
	g.fillDecision(ev, p, r)
	if err := g.Audit.Append(ctx, ev); err != nil {
		g.Log.Error("audit append failed", "type", ev.Type, "decision", p.Decision.ID, "err", err)
	}
}

func (g *Pipeline) recordOutcome(ctx context.Context, call *warden.AuditEvent, o Outcome, later bool) {
	ev := warden.NewToolResultEvent(call, warden.EventOutcome{
		Status: o.Status, UpstreamStatus: o.UpstreamStatus,
		LatencyMS: float64(o.Latency.Microseconds()) / 1000, BytesIn: o.BytesIn, BytesOut: o.BytesOut, RemoteAddr: o.RemoteAddr,
	})
	appendEvent := g.Audit.Append
	if la, ok := g.Audit.(laterAppender); ok && later {
		appendEvent = la.AppendLater
	}
	if err := appendEvent(ctx, ev); err != nil {
		g.Log.Error("audit append failed", "type", ev.Type, "decision", call.Decision.ID, "err", err)
	}
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// inflight tracks allowed calls in progress so that a kill can cancel them.
type inflight struct {
	mu    sync.Mutex
	next  uint64
	calls map[uint64]inflightCall
}

type inflightCall struct {
	agent, tool, action string
	cancel              context.CancelFunc
}

func (f *inflight) add(agent, tool, action string, cancel context.CancelFunc) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[uint64]inflightCall{}
	}
	f.next++
	f.calls[f.next] = inflightCall{agent: agent, tool: tool, action: action, cancel: cancel}
	return f.next
}

func (f *inflight) remove(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.calls, id)
}

// Cancel cancels every call in flight that match selects and returns how many.
func (f *inflight) cancel(match func(c inflightCall) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if match(c) {
			c.cancel()
			n++
		}
	}
	return n
}

// CancelAgent cancels every call in flight of an agent (the kill switch calls it).
func (g *Pipeline) CancelAgent(agentID string) int {
	return g.inflight.cancel(func(c inflightCall) bool { return c.agent == agentID })
}

// InFlight counts the calls of an agent in flight on this replica ("" counts all of them).
func (g *Pipeline) InFlight(agentID string) int {
	g.inflight.mu.Lock()
	defer g.inflight.mu.Unlock()
	n := 0
	for _, c := range g.inflight.calls {
		if agentID == "" || c.agent == agentID {
			n++
		}
	}
	return n
}

// CancelAll cancels every call in flight (a lockdown calls it).
func (g *Pipeline) CancelAll() int {
	return g.inflight.cancel(func(inflightCall) bool { return true })
}

// CancelTool cancels every call in flight to a tool (disabling a tool calls it).
func (g *Pipeline) CancelTool(tool string) int {
	return g.inflight.cancel(func(c inflightCall) bool { return c.tool == tool })
}

// StopDigest cancels every call in flight to an MCP tool whose pinned manifest has the digest,
// and every call to a local MCP server whose package has it (the kill switch's reconciler calls
// it for a digest newly quarantined), and returns how many. New calls to them are refused with
// quarantined by the pipeline (manifestRefusal; the kill state's Check for a package).
func (g *Pipeline) StopDigest(_ context.Context, digest, _ string) int {
	type key struct{ tool, action string }
	hit := map[key]bool{}
	servers := map[string]bool{}
	for _, e := range g.Registry.current().tools {
		if p := e.tool.Package; p != nil && p.Digest == digest {
			servers[e.tool.Name] = true
		}
		for name, m := range e.pins {
			if m.Digest == digest || m.HeldDigest == digest {
				hit[key{e.tool.Name, name}] = true
			}
		}
	}
	if len(hit) == 0 && len(servers) == 0 {
		return 0
	}
	return g.inflight.cancel(func(c inflightCall) bool { return servers[c.tool] || hit[key{c.tool, c.action}] })
}

// PackagesOf names the local MCP servers (tools) whose pinned package has the digest, sorted.
func (g *Pipeline) PackagesOf(digest string) []string {
	var out []string
	for _, e := range g.Registry.current().tools {
		if p := e.tool.Package; p != nil && p.Digest == digest {
			out = append(out, e.tool.Name)
		}
	}
	slices.Sort(out)
	return out
}

// PackageQuarantined reports whether a server package's digest is quarantined in the kill
// state this replica enforces.
func (g *Pipeline) PackageQuarantined(digest string) bool { return g.Kill.Load().Quarantined(digest) }

// PinnedDigest returns the digest of the manifest pinned for an MCP server's tool, "" when it
// has none in force (held, removed, never pinned); ok is false when nothing of the server is
// pinned yet. A listing shows a tool only when the manifest it lists has this digest.
func (g *Pipeline) PinnedDigest(tool, name string) (digest string, ok bool) {
	e := g.Registry.current().tools[tool]
	if e == nil || e.pins == nil {
		return "", false
	}
	if m := e.pins[name]; m != nil && m.State == warden.ManifestPinned {
		return m.Digest, true
	}
	return "", true
}

// ManifestsOf names the pinned MCP tool manifests with the digest, pinned or held, as
// "SERVER/TOOL", sorted.
func (g *Pipeline) ManifestsOf(digest string) []string {
	var out []string
	for _, e := range g.Registry.current().tools {
		for name, m := range e.pins {
			if m.Digest == digest || m.HeldDigest == digest {
				out = append(out, e.tool.Name+"/"+name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// manifestRefusal says why a call to an MCP tool may not go on because of its pinned manifest:
// upstream changed, added or removed it (held for review), or its digest is quarantined. A
// server none of whose tools is pinned yet is not refused here: its first listing pins them.
func manifestRefusal(ks *killswitch.Snapshot, e *entry, action string) (reason, message string) {
	m := e.pins[action]
	if m == nil {
		// Methods other than tools/call (resources/read, prompts/get) are no tool names.
		if e.pins != nil && (e.tool.Kind == warden.ToolMCP || e.tool.Kind == warden.ToolMCPCommand) && warden.ValidateMCPToolName(action) == nil {
			return warden.ReasonManifestChanged, "the MCP tool " + quote(action) + " of " + e.tool.Name + " has no pinned manifest; it is held until an operator accepts it (warden tool review " + e.tool.Name + ")"
		}
		return "", ""
	}
	if ks.Quarantined(m.Digest) || m.HeldDigest != "" && ks.Quarantined(m.HeldDigest) {
		return warden.ReasonQuarantined, "the manifest of the MCP tool " + quote(action) + " of " + e.tool.Name + " is quarantined"
	}
	if m.State != warden.ManifestPinned {
		return warden.ReasonManifestChanged, "the MCP tool " + quote(action) + " of " + e.tool.Name + " changed since it was pinned; it is held until an operator accepts it (warden tool review " + e.tool.Name + ")"
	}
	return "", ""
}
