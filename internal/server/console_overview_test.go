package server_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// TestConsoleCallsChart: the overview's chart counts the tool calls of the last minutes —
// allowed and denied — and not their results or other events.
func TestConsoleCallsChart(t *testing.T) {
	in := start(t, t.TempDir(), nil)
	b := consoleSignIn(t, in, in.admin)
	ctx := context.Background()
	for i, typ := range []string{warden.EventToolCall, warden.EventToolResult, warden.EventToolCall, warden.EventToolResult, warden.EventToolCall, "agent.created"} {
		ev := &warden.AuditEvent{Type: typ, Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "agt_chart", Name: "chart-bot"},
			Target: warden.EventTarget{Tool: "bank", Action: "transfer"}}
		if typ == warden.EventToolCall {
			ev.Decision.Effect = warden.EffectAllow
			if i == 4 {
				ev.Decision = warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonNoMatchingPolicy}
			}
		}
		if err := in.srv.Audit.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	status, body, _ := b.get("/ui/overview")
	if status != http.StatusOK || !strings.Contains(body, "Tool calls per minute") {
		t.Fatalf("overview: %d %s", status, body)
	}
	if want := `<p id="chart-summary">3 tool calls in the last 30 minutes; the busiest minute had 3.</p>`; !strings.Contains(body, want) {
		t.Fatalf("the chart's summary is not %q in\n%s", want, body)
	}
}

// TestConsoleStreamHighRisk: the console's live stream, served through the shared hub, sends
// the high-risk events and passes over the others.
func TestConsoleStreamHighRisk(t *testing.T) {
	in := start(t, t.TempDir(), nil)
	b := consoleSignIn(t, in, in.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", in.url+"/ui/stream", nil)
	resp, err := b.c.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "retry: 2000" {
		t.Fatalf("the stream began with %q", sc.Text())
	}
	var high *warden.AuditEvent
	for _, risk := range []warden.Risk{warden.RiskLow, warden.RiskHigh} {
		ev := &warden.AuditEvent{Type: warden.EventToolCall, Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "agt_stream", Name: "stream-bot"},
			Target: warden.EventTarget{Tool: "bank", Action: "transfer", Risk: risk}, Decision: warden.EventDecision{Effect: warden.EffectAllow}}
		if err := in.srv.Audit.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		high = ev
	}
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			if want := strconv.FormatInt(high.Seq, 10); id != want {
				t.Fatalf("the first event streamed is %s; want the high-risk one, %s", id, want)
			}
			return
		}
	}
	t.Fatalf("the stream ended: %v", sc.Err())
}
