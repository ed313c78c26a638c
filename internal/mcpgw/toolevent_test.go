package mcpgw

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

// checkToolEvents fails t unless the tool.call and tool.result events in evs have the shape
// docs/audit.md gives them whichever enforcement point wrote them: every call names its actor,
// its tool, action and risk (a resource only when the call has one), and a decision with an id, effect and reason; every
// result repeats its call's actor, target (without the arguments), decision id, effect and
// policy version and trace, so that it can be joined to its call. It returns how many calls
// and results it saw.
func checkToolEvents(t *testing.T, who string, evs []warden.AuditEvent) (calls, results int) {
	t.Helper()
	byDecision := map[string]warden.AuditEvent{}
	for _, ev := range evs {
		if ev.Type != warden.EventToolCall {
			continue
		}
		calls++
		var missing []string
		for _, f := range []struct{ name, value string }{
			{"actor.kind", ev.Actor.Kind}, {"actor.name", ev.Actor.Name},
			{"target.tool", ev.Target.Tool}, {"target.action", ev.Target.Action},
			{"target.risk", string(ev.Target.Risk)},
			{"decision.effect", ev.Decision.Effect}, {"decision.reason", ev.Decision.Reason},
		} {
			if f.value == "" {
				missing = append(missing, f.name)
			}
		}
		if !strings.HasPrefix(ev.Decision.ID, "dec_") {
			missing = append(missing, "decision.id")
		}
		if len(missing) > 0 {
			t.Errorf("%s: tool.call %+v has no %s", who, ev, strings.Join(missing, ", "))
		}
		if _, dup := byDecision[ev.Decision.ID]; dup {
			t.Errorf("%s: two tool.call events have decision id %q", who, ev.Decision.ID)
		}
		byDecision[ev.Decision.ID] = ev
	}
	for _, ev := range evs {
		if ev.Type != warden.EventToolResult {
			continue
		}
		results++
		call, ok := byDecision[ev.Decision.ID]
		if !ok {
			t.Errorf("%s: tool.result %+v names decision %q, which no tool.call has", who, ev, ev.Decision.ID)
			continue
		}
		want := call.Target
		want.Arguments = nil
		if ev.Actor != call.Actor || ev.Target.Tool != want.Tool || ev.Target.Action != want.Action ||
			ev.Target.Resource != want.Resource || ev.Target.Risk != want.Risk || ev.Target.ArgsSHA256 != want.ArgsSHA256 ||
			ev.Target.Arguments != nil {
			t.Errorf("%s: tool.result actor %+v target %+v; want its call's %+v %+v without the arguments", who, ev.Actor, ev.Target, call.Actor, want)
		}
		if ev.Decision.Effect != call.Decision.Effect || ev.Decision.PolicyVersion != call.Decision.PolicyVersion ||
			ev.TraceID != call.TraceID || ev.SpanID != call.SpanID {
			t.Errorf("%s: tool.result decision %+v trace %q/%q; want its call's %+v %q/%q", who, ev.Decision, ev.TraceID, ev.SpanID,
				call.Decision, call.TraceID, call.SpanID)
		}
		if ev.Outcome.Status == "" {
			t.Errorf("%s: tool.result %+v has no outcome.status", who, ev)
		}
	}
	return calls, results
}

// TestToolEventsHaveOneShape pins issue 13: the pipeline's tool.call and tool.result events
// and those of a local server's egress (toolEgress) are made by the same constructors
// (warden.NewToolCallEvent, NewToolResultEvent), so they carry the same fields.
func TestToolEventsHaveOneShape(t *testing.T) {
	t.Run("pipeline", func(t *testing.T) {
		up := startUpstream(t)
		log := &eventLog{}
		tool := remoteTool("up", up.URL)
		tool.Risk = warden.RiskMedium
		url, token := realPipelineGateway(t, tool, log)
		cs := connect(t, url+"/mcp/up", token, nil)
		if _, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() bool { return len(log.results("echo")) == 1 })
		log.mu.Lock()
		evs := append([]warden.AuditEvent(nil), log.events...)
		log.mu.Unlock()
		calls, results := checkToolEvents(t, "pipeline", evs)
		if calls != 1 || results != 1 {
			t.Errorf("pipeline: %d tool.call and %d tool.result events, want one each: %+v", calls, results, evs)
		}
		for _, ev := range evs {
			if ev.Target.Risk != warden.RiskMedium {
				t.Errorf("pipeline: %s event has risk %q, want the tool's %q", ev.Type, ev.Target.Risk, warden.RiskMedium)
			}
		}
	})
	t.Run("egress", func(t *testing.T) {
		upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello")
		}))
		defer upstream.Close()
		addr := netip.MustParseAddrPort(upstream.Listener.Addr().String())
		allowed := fmt.Sprintf("allowed.test:%d", addr.Port())
		f := newSandboxGateway(t, addr, sandboxPeer(t, "netbox", &warden.ToolSandbox{AllowHosts: []string{allowed}}))
		cs := connect(t, f.tg.srv.URL+"/mcp/netbox", f.token, nil)
		if got := call(t, cs, "fetch", "http://"+allowed+"/"); !strings.HasPrefix(got, "200") {
			t.Fatalf("fetching an allowed host through the proxy: %s", got)
		}
		if got := call(t, cs, "fetch", fmt.Sprintf("http://denied.test:%d/", addr.Port())); !strings.HasPrefix(got, "403") {
			t.Fatalf("fetching a host the tool was not given: %s", got)
		}
		eventually(t, func() bool { return len(f.audit.list()) >= 3 })
		var evs []warden.AuditEvent
		for _, ev := range f.audit.list() {
			evs = append(evs, *ev)
		}
		calls, results := checkToolEvents(t, "egress", evs)
		if calls != 2 || results != 1 {
			t.Errorf("egress: %d tool.call and %d tool.result events, want two and one: %+v", calls, results, evs)
		}
		for _, ev := range evs {
			if !strings.HasSuffix(ev.Target.Resource, fmt.Sprintf(".test:%d", addr.Port())) {
				t.Errorf("egress: %s event names resource %q, want the host connected to", ev.Type, ev.Target.Resource)
			}
		}
	})
}
