package gateway

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/redact"
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
	for _, r := range routes {
		lhs, rhs, ok := strings.Cut(r, "->")
		lf, rf := strings.Fields(lhs), strings.Fields(rhs)
		if !ok || len(lf) != 2 || len(rf) == 0 || rf[0] != action {
			continue
		}
		switch m := strings.ToUpper(lf[0]); m {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			if method == "" {
				method = m
			}
		default:
			return m
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
		for _, r := range e.tool.Routes {
			if _, rhs, ok := strings.Cut(r, "->"); ok {
				if f := strings.Fields(rhs); len(f) > 0 {
					e.labels[f[0]] = FlowLabels(e.tool, f[0], nil)
				}
			}
		}
	}
}

// MaxSessionID bounds a session id an agent names (the Warden-Session header, the decision
// API's session).
const MaxSessionID = 128

// ValidSessionID reports whether s may name a session: 1 to 128 printable ASCII characters
// without spaces, as a token's sid.
func ValidSessionID(s string) bool {
	if s == "" || len(s) > MaxSessionID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// flowSession is the session of a call as flow facts key it: the one its entry point named, else
// its token's sid.
func flowSession(c *Caller, call *Call) string {
	if call.Session != "" {
		return call.Session
	}
	return c.Claims.SessionID
}

// flowFacts returns what the call's session had read, for policy and the audit log.
func (r *request) flowFacts() *warden.FlowFacts {
	labels := r.e.flowLabels(r.call.Action)
	session := flowSession(r.c, r.call)
	var f *warden.FlowFacts
	if r.g.Flow != nil {
		f = r.g.Flow.Facts(taint.Key{Agent: r.c.Agent.ID, Session: session}, labels, r.args)
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
}

// Observe records the output of an allowed call in its session's flow state, before the entry
// point hands it to the agent: content is the result as decoded JSON or text. Output that is
// neither untrusted nor private changes nothing. It does nothing for a denied call.
func (p *Permit) Observe(content any) {
	if p == nil || p.flow == nil || p.flow.sessions == nil || !p.Allowed() {
		return
	}
	if !p.flow.labels.Untrusted() && !p.flow.labels.Private() {
		return
	}
	p.flow.sessions.Observe(p.flow.key, p.flow.src, p.flow.labels, content)
}

// ObservesOutput reports whether the call's output must be observed (Observe): its action's
// output is untrusted or private. An entry point that would otherwise stream the output reads it
// first only then.
func (p *Permit) ObservesOutput() bool {
	return p != nil && p.flow != nil && p.flow.sessions != nil && (p.flow.labels.Untrusted() || p.flow.labels.Private())
}

// EndSession forgets the flow state of a session that ended (an MCP session closed).
func (g *Pipeline) EndSession(agentID, session string) {
	if g.Flow != nil {
		g.Flow.End(taint.Key{Agent: agentID, Session: session})
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
