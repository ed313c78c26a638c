// Package gateway is the enforcement pipeline every tool call passes, whatever door it came
// through (MCP, HTTP, the decision API): authenticate, kill state, resolve, policy, approval,
// budgets, audit, broker the credential, forward, record the outcome.
package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/wardenhq/warden"
)

// Entry points.
const (
	EntryMCP       = "mcp"
	EntryHTTP      = "http"
	EntryAuthorize = "authorize"
)

// OtherLabel stands for a tool or action that is not registered when an Observer is told of a
// call: the name an agent chose is not a label, so that what observers count stays bounded.
const OtherLabel = "other"

// CallLabels name a call for an Observer: its entry point, its registered tool and one of the
// tool's known actions (a pinned MCP tool, an HTTP route's action), each else OtherLabel.
type CallLabels struct {
	Entry, Tool, Action string
}

// Observer is told of every decision the pipeline makes and of every allowed call's outcome
// (internal/metrics). It is called on the call's path: it must be quick and must not block.
type Observer interface {
	// Decided is called once per call Authorize answers, took after its arrival. For an allowed
	// call, what it returns is told of the outcome, when the entry point reports it.
	Decided(c CallLabels, effect, reason string, took time.Duration) OutcomeObserver
}

// OutcomeObserver is told of one allowed call's outcome.
type OutcomeObserver interface {
	Finished(o Outcome)
}

// Caller is an authenticated agent at an enforcement point.
type Caller struct {
	Claims *warden.Claims
	Agent  *warden.Agent
	Source string // the remote address
}

// Call is one action an agent asks to take, as an entry point resolved it.
type Call struct {
	Entry     string
	Tool      string          // the registered tool's name
	Action    string          // tool-local: the MCP tool name or method, or the HTTP route's action
	Resource  string          // "" means the tool itself
	Arguments json.RawMessage // a JSON object, or nil
	Trace     TraceContext    // from the request's traceparent, or new
	// BodyUninspected is set when part of the call went upstream unparsed (an HTTP request body
	// that is not JSON): policy sees context.body_inspected false, and only the body's digest,
	// an argument, binds it.
	BodyUninspected bool
	// Method is the MCP method that made the call (tools/call, resources/read, …), for its
	// span; "" is tools/call at the MCP entry and nothing at the others.
	Method string
	// Session is the session the entry point knows the call by, for its flow facts: the MCP
	// session, the HTTP gateway's Warden-Session header, the decision API's session. "" means
	// the token's sid.
	Session string
	// NoWait answers a call that needs a person's approval at once, approval_required with the
	// pending request's id, instead of holding it (the decision API's "hold": 0). The request
	// stays pending; the same call sent again once it is approved goes ahead.
	NoWait bool
}

// Outcome is what came of an allowed call.
type Outcome struct {
	Status         string // warden.StatusOK, StatusError or StatusCanceled
	UpstreamStatus int
	Latency        time.Duration
	BytesIn        int64
	BytesOut       int64
	RemoteAddr     string // the address dialed, IP:port, when the caller knows it (the egress proxy)
}

// Permit is the pipeline's answer to a Call. Only when Decision.Effect is allow may the entry
// point forward the call, using Ctx (which a kill cancels) for the upstream request, and it must
// then call Done exactly once with the outcome.
type Permit struct {
	Decision warden.Decision
	Tool     *warden.Tool
	Ctx      context.Context
	// Trace is the span the upstream's traceparent names: the call's, which its audit event
	// records; with a Pipeline.Tracer, once the call is allowed, its upstream round trip's, a
	// child of the call's.
	Trace TraceContext
	// RetryAfter is set when a rate budget denied the call.
	RetryAfter time.Duration
	// ApprovalID is the approval request the call was held on, when it needed one.
	ApprovalID string

	done    func(Outcome) // set by OnDone
	allowed *allowed      // set by Pipeline.Authorize
	flow    *flowRef      // set by Pipeline.Authorize: where the call's output is observed
	span    *callSpan     // set by Pipeline.Authorize with a Tracer: the call's span
	// set by Pipeline.Authorize for an allowed call: StopMessage checks them against the kill state
	by      *Pipeline
	agentID string
	epoch   int64
}

// OnDone sets what Done does: for pipelines other than Pipeline (test doubles of an entry point's
// pipeline). It returns p.
func (p *Permit) OnDone(done func(Outcome)) *Permit {
	p.done = done
	return p
}

// Allowed reports whether the call may be forwarded: policy allowed it, or a person approved it.
func (p *Permit) Allowed() bool {
	return warden.EffectAllows(p.Decision.Effect)
}

// Done records the outcome of an allowed call and releases what the call held (its
// concurrency slot, its cancellation). Calling it for a denied call does nothing.
func (p *Permit) Done(o Outcome) {
	switch {
	case p.done != nil:
		p.done(o)
		p.done = nil
	case p.allowed != nil:
		p.observeUnseen(p.allowed.g.Log, o)
		a := p.allowed
		p.allowed = nil
		a.unregister()
		a.finished(o)
		p.span.done(o)
		a.record(o)
	}
}

// End is Done for an entry point that answers the agent before the outcome is recorded: it
// releases what the call held at once, so that the agent's next call finds its concurrency slot
// free and a kill no longer counts the call in flight, and returns the recording of the
// outcome, which waits for a durable commit of the audit log, for the caller to run (and wait
// for before the audit log closes). As nothing waits on that event, the log may hold it briefly
// to share the next event's commit (audit.Log.AppendLater). It returns nil for a denied call or
// one already done.
func (p *Permit) End(o Outcome) (record func()) {
	switch {
	case p.done != nil:
		done := p.done
		p.done = nil
		return func() { done(o) }
	case p.allowed != nil:
		p.observeUnseen(p.allowed.g.Log, o)
		a := p.allowed
		p.allowed = nil
		a.unregister()
		a.finished(o)
		p.span.done(o)
		return func() { a.recordLater(o) }
	}
	return nil
}
