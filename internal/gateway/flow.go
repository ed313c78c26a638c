package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/redact"
	"github.com/wardenhq/warden/internal/route"
	"github.com/wardenhq/warden/internal/taint"
)

// FlowLabels resolves the flow labels of one action of a tool as the gateway does:
// warden.ResolveFlowLabels with, for an MCP tool, the annotations of its pinned manifest
// (manifest: the canonical manifest, nil when none is pinned) and, for an HTTP tool, the method
// of the routes that name the action (the most dangerous one when several do). Replay and
// `tool show` call it too, so that every view of a label is the gateway's.
func FlowLabels(t *warden.Tool, action string, manifest json.RawMessage) warden.FlowLabels {
	var method string
	if t != nil && t.Kind == warden.ToolHTTP {
		method = RouteMethod(t.Routes, action)
	}
	return warden.ResolveFlowLabels(t, action, method, warden.AnnotationsOf(manifest))
}

// RouteMethod returns the method of an HTTP tool's routes that map to action, by which its
// effect label defaults: a reading method only when every such route reads, else one that
// writes ("*" for a route of any method).
func RouteMethod(routes []string, action string) string {
	var method string
	for _, text := range routes {
		r, err := route.Parse(text)
		if err != nil || r.Action != action {
			continue
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			if method == "" {
				method = r.Method
			}
		default:
			return r.Method
		}
	}
	return method
}

// flowLabels returns the labels of one of the entry's actions: resolved when the registry was
// loaded for the actions it knows (pinned MCP tools, route actions), else now.
func (e *entry) flowLabels(action string) warden.FlowLabels {
	if l, ok := e.labels[action]; ok {
		return l
	}
	return FlowLabels(e.tool, action, nil)
}

// resolveLabels fills e.labels for the actions known when the registry loads.
func (e *entry) resolveLabels() {
	e.labels = map[string]warden.FlowLabels{}
	for name, m := range e.pins {
		e.labels[name] = FlowLabels(e.tool, name, m.Manifest)
	}
	if e.tool.Kind == warden.ToolHTTP {
		for _, text := range e.tool.Routes {
			if r, err := route.Parse(text); err == nil {
				e.labels[r.Action] = FlowLabels(e.tool, r.Action, nil)
			}
		}
	}
}

// flowSession is the session of a call as flow facts key it: the one its entry point named, else
// its token's sid.
func flowSession(c *Caller, call *Call) string {
	if call.Session != "" {
		return call.Session
	}
	return c.Claims.SessionID
}

// flowFacts returns what the call's session had read, for policy and the audit log; nil when it
// cannot be known (the store failed), and the call must be refused.
func (r *request) flowFacts() *warden.FlowFacts {
	labels := r.e.flowLabels(r.call.Action)
	session := flowSession(r.c, r.call)
	var f *warden.FlowFacts
	if r.g.Flow != nil {
		key := taint.Key{Agent: r.c.Agent.ID, Session: session}
		if err := r.g.Flow.Load(r.ctx, key); err != nil {
			r.g.Log.Error("reading the session's flow state failed; denying", "decision", r.p.Decision.ID, "err", err)
			return nil
		}
		f = r.g.Flow.Facts(key, labels, r.args)
	} else {
		f = &warden.FlowFacts{Labels: labels}
	}
	f.Session = session
	r.p.flow = &flowRef{sessions: r.g.Flow, key: taint.Key{Agent: r.c.Agent.ID, Session: session}, labels: labels,
		src: taint.Source{Tool: r.e.tool.Name, Action: r.call.Action, Decision: r.p.Decision.ID}}
	return f
}

// recorded reports whether flow facts are worth a place in the call's audit event: the session
// read something that policy may hold against a call. A fresh session's facts are its labels,
// which the configuration says.
func recorded(f *warden.FlowFacts) bool {
	return f != nil && (f.UntrustedRead || f.PrivateRead || f.Evicted || len(f.Tainted) > 0)
}

// flowRef is where an allowed call's output goes: its session's state, under the labels it was
// decided with.
type flowRef struct {
	sessions *taint.Sessions
	key      taint.Key
	labels   warden.FlowLabels
	src      taint.Source
	observed bool // the output was recorded (Observe)
}

// Observe records the output of an allowed call in its session's flow state, before the entry
// point hands it to the agent: content is the result as decoded JSON or text. Output that is
// neither untrusted nor private changes nothing. It does nothing for a denied call. An error
// (ErrFlowUnrecorded) means the output could not be recorded: the entry point must withhold
// it, since the session's next calls would be decided as if it had never been read.
func (p *Permit) Observe(content any) error {
	if p == nil || p.flow == nil || p.flow.sessions == nil || !p.Allowed() {
		return nil
	}
	if !p.flow.labels.Untrusted() && !p.flow.labels.Private() {
		return nil
	}
	// The call may be done (its context cancelled) by the time its output is recorded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.Ctx), flowRecordTimeout)
	defer cancel()
	if err := p.flow.sessions.Record(ctx, p.flow.key, p.flow.src, p.flow.labels, content); err != nil {
		return fmt.Errorf("%w: %w", ErrFlowUnrecorded, err)
	}
	p.flow.observed = true
	return nil
}

// observeUnseen records, for an allowed call that ended well without its output being observed
// (the decision API's outcome without content, an egress connection, an empty response), that
// the session read its action's kind of output: what it said is unknown, but that it was read
// is not. Called by Done.
func (p *Permit) observeUnseen(log interface{ Warn(string, ...any) }, o Outcome) {
	if p.flow == nil || p.flow.observed || o.Status != warden.StatusOK {
		return
	}
	if err := p.Observe(nil); err != nil {
		log.Warn("recording that a session read an output failed", "decision", p.Decision.ID, "err", err)
	}
}

// flowRecordTimeout bounds how long an output waits to be recorded in the store.
const flowRecordTimeout = 5 * time.Second

// ErrFlowUnrecorded is Observe's error: the output was not recorded and must be withheld.
var ErrFlowUnrecorded = errors.New("the output could not be recorded in its session's flow state")

// FlowUnrecordedMessage is what an agent is told of output withheld for ErrFlowUnrecorded.
const FlowUnrecordedMessage = "the result was withheld: warden could not record what it said in this session's flow state (flow_unavailable)"

// ObservesOutput reports whether the call's output must be observed (Observe): its action's
// output is untrusted or private. An entry point that would otherwise stream the output reads it
// first only then.
func (p *Permit) ObservesOutput() bool {
	return p != nil && p.flow != nil && p.flow.sessions != nil && (p.flow.labels.Untrusted() || p.flow.labels.Private())
}

// ObserveSession records output an upstream sent a session outside any call (an MCP server's
// request or log message while none of the session's calls is in flight) as output of the
// tool, by the tool's own labels.
func (g *Pipeline) ObserveSession(ctx context.Context, agentID, session string, tool *warden.Tool, content any) error {
	if g.Flow == nil || tool == nil {
		return nil
	}
	labels := FlowLabels(tool, "", nil)
	if !labels.Untrusted() && !labels.Private() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flowRecordTimeout)
	defer cancel()
	if err := g.Flow.Record(ctx, taint.Key{Agent: agentID, Session: session}, taint.Source{Tool: tool.Name}, labels, content); err != nil {
		return fmt.Errorf("%w: %w", ErrFlowUnrecorded, err)
	}
	return nil
}

// EndSession forgets the flow state of a session that ended (an MCP session closed): in memory
// at once, in the store by Run, so that closing many sessions (a kill) waits on nothing.
func (g *Pipeline) EndSession(agentID, session string) {
	if g.Flow != nil {
		g.Flow.ForgetLater(taint.Key{Agent: agentID, Session: session})
	}
}

// redactedFlow is the copy of flow facts the audit event records: the session id and the
// argument names are the agent's to choose and may echo a brokered secret.
func redactedFlow(f *warden.FlowFacts, rd *redact.Redactor) *warden.FlowFacts {
	cp := *f
	cp.Session = rd.Secrets(f.Session)
	if len(f.Tainted) > 0 {
		cp.Tainted = make([]warden.TaintedArg, len(f.Tainted))
		for i, t := range f.Tainted {
			t.Arg = rd.Secrets(t.Arg)
			cp.Tainted[i] = t
		}
	}
	return &cp
}
