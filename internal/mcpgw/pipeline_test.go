package mcpgw

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// fakePipeline is a small stand-in for the gateway pipeline: a fixed token table, a deny table,
// a visibility table; it records every call, permit and outcome.
type fakePipeline struct {
	mu      sync.Mutex
	tokens  map[string]*gateway.Caller // bearer token → caller
	tools   []*warden.Tool
	deny    map[string]string // "tool/action" → reason
	hidden  map[string]bool   // "tool/action" hidden from listings
	secret  string            // what UpstreamHeaders injects
	env     map[string]string // secret env var values by secret name
	seq     int
	permits []*permitRecord
	// quarantined are the digests the kill state quarantines.
	quarantined map[string]bool
}

type permitRecord struct {
	call     *gateway.Call
	permit   *gateway.Permit
	cancel   context.CancelFunc // what a kill would do
	mu       sync.Mutex
	outcomes []gateway.Outcome
	added    chan struct{} // closed at the next outcome (watch)
}

// watch returns the outcomes so far and a channel closed when the next one comes.
func (r *permitRecord) watch() ([]gateway.Outcome, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.added == nil {
		r.added = make(chan struct{})
	}
	return append([]gateway.Outcome(nil), r.outcomes...), r.added
}

func (r *permitRecord) Outcomes() []gateway.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Outcome(nil), r.outcomes...)
}

func newFakePipeline(tools ...*warden.Tool) *fakePipeline {
	return &fakePipeline{
		tokens: map[string]*gateway.Caller{},
		tools:  tools,
		deny:   map[string]string{},
		hidden: map[string]bool{},
		secret: "upstream-secret-value",
		env:    map[string]string{},

		quarantined: map[string]bool{},
	}
}

// addAgent registers an agent and returns its bearer token.
func (p *fakePipeline) addAgent(name string) (token string, c *gateway.Caller) {
	p.mu.Lock()
	defer p.mu.Unlock()
	token = "agent-token-" + name
	c = &gateway.Caller{
		Agent:  &warden.Agent{ID: "agt_" + name, Name: name, Status: warden.AgentActive},
		Claims: &warden.Claims{Subject: "agt_" + name, ClientID: "agt_" + name, SessionID: "sid_" + name, ExpiresAt: time.Now().Add(time.Hour)},
	}
	p.tokens[token] = c
	return token, c
}

func (p *fakePipeline) Authenticate(r *http.Request) (*gateway.Caller, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	p.mu.Lock()
	c := p.tokens[token]
	p.mu.Unlock()
	if !strings.EqualFold(scheme, "Bearer") || c == nil {
		return nil, warden.Errorf(warden.EUnauthenticated, "a valid Bearer access token is required")
	}
	cc := *c
	cc.Source = r.RemoteAddr
	return &cc, nil
}

func (p *fakePipeline) toolNamed(name string) *warden.Tool {
	for _, t := range p.tools {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (p *fakePipeline) Authorize(ctx context.Context, c *gateway.Caller, call *gateway.Call) *gateway.Permit {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	id := fmt.Sprintf("dec_%d", p.seq)
	rec := &permitRecord{call: call}
	p.permits = append(p.permits, rec)
	tool := p.toolNamed(call.Tool)
	key := call.Tool + "/" + call.Action
	if tool == nil {
		rec.permit = &gateway.Permit{Decision: warden.Decision{ID: id, Effect: warden.EffectDeny, Reason: "unknown_tool", Message: "no tool named " + call.Tool}}
		return rec.permit
	}
	if reason, ok := p.deny[key]; ok {
		rec.permit = &gateway.Permit{Decision: warden.Decision{ID: id, Effect: warden.EffectDeny, Reason: "forbidden_by_policy", Message: reason}, Tool: tool}
		return rec.permit
	}
	cctx, cancel := context.WithCancel(ctx)
	rec.cancel = cancel
	rec.permit = &gateway.Permit{
		Decision: warden.Decision{ID: id, Effect: warden.EffectAllow, Reason: "policy_allow"},
		Tool:     tool, Ctx: cctx, Trace: call.Trace.Child(),
	}
	rec.permit.OnDone(func(o gateway.Outcome) {
		rec.mu.Lock()
		rec.outcomes = append(rec.outcomes, o)
		if rec.added != nil {
			close(rec.added)
			rec.added = nil
		}
		rec.mu.Unlock()
		cancel()
	})
	return rec.permit
}

func (p *fakePipeline) Refuse(ctx context.Context, c *gateway.Caller, call *gateway.Call, reason, message string) *gateway.Permit {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	rec := &permitRecord{call: call}
	rec.permit = &gateway.Permit{Decision: warden.Decision{ID: fmt.Sprintf("dec_%d", p.seq), Effect: warden.EffectDeny, Reason: reason, Message: message}, Tool: p.toolNamed(call.Tool)}
	p.permits = append(p.permits, rec)
	return rec.permit
}

func (p *fakePipeline) Visible(c *gateway.Caller, tool *warden.Tool, action string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.hidden[tool.Name+"/"+action]
}

func (p *fakePipeline) MCPTools() []*warden.Tool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*warden.Tool
	for _, t := range p.tools {
		if !t.Disabled {
			out = append(out, t)
		}
	}
	return out
}

func (p *fakePipeline) UpstreamHeaders(ctx context.Context, c *gateway.Caller, tool *warden.Tool, trace gateway.TraceContext) (http.Header, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+p.secret)
	h.Set("Traceparent", trace.Traceparent())
	if c == nil { // warden itself (ListTools), as the real pipeline
		return h, nil
	}
	h.Set("Warden-Agent", c.Agent.Name)
	h.Set("Warden-Session", c.Claims.SessionID)
	return h, nil
}

func (p *fakePipeline) CommandEnv(ctx context.Context, tool *warden.Tool) ([]string, error) {
	var env []string
	for k, name := range tool.SecretEnv {
		env = append(env, k+"="+p.env[name])
	}
	return env, nil
}

func (p *fakePipeline) PackageQuarantined(digest string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.quarantined[digest]
}

// records returns the permits of calls for a tool and action.
func (p *fakePipeline) records(tool, action string) []*permitRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*permitRecord
	for _, r := range p.permits {
		if r.call.Tool == tool && r.call.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// onlyOutcome returns the outcome of the one call to tool and action, waiting for it; any other
// number of calls or of outcomes fails the test.
func onlyOutcome(t *testing.T, p *fakePipeline, tool, action string) gateway.Outcome {
	t.Helper()
	recs := p.records(tool, action)
	if len(recs) != 1 {
		t.Fatalf("%d decisions for %s/%s, want 1", len(recs), tool, action)
	}
	outs := waitOutcomes(t, recs[0], 1)
	if len(outs) != 1 {
		t.Fatalf("%s/%s: outcomes %+v, want exactly one", tool, action, outs)
	}
	return outs[0]
}

// waitOutcomes waits (up to 5s) until a permit has n outcomes, then up to 50ms more for an
// extra one, which must not come.
func waitOutcomes(t *testing.T, r *permitRecord, n int) []gateway.Outcome {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		outs, added := r.watch()
		if len(outs) >= n {
			select {
			case <-added:
			case <-time.After(50 * time.Millisecond):
			}
			return r.Outcomes()
		}
		select {
		case <-added:
		case <-deadline:
			return r.Outcomes()
		}
	}
}
