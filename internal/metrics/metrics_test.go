package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/metrics"
)

// TestObserverSeries checks that each call lands in the series of its own labels, however many
// label sets share the cache, and that outcomes of MCP calls alone feed the MCP histogram.
func TestObserverSeries(t *testing.T) {
	m := metrics.New()
	a := gateway.CallLabels{Entry: gateway.EntryMCP, Tool: "notes", Action: "echo"}
	b := gateway.CallLabels{Entry: gateway.EntryHTTP, Tool: "github", Action: "issues.list"}
	var oa, ob gateway.OutcomeObserver
	for range 3 {
		oa = m.Decided(a, warden.EffectAllow, warden.ReasonPolicyAllow, time.Millisecond)
	}
	m.Decided(b, warden.EffectDeny, "no_matching_policy", time.Millisecond)
	ob = m.Decided(b, warden.EffectAllow, warden.ReasonPolicyAllow, time.Millisecond)
	oa.Finished(gateway.Outcome{Status: warden.StatusOK, Latency: 20 * time.Millisecond})
	ob.Finished(gateway.Outcome{Status: warden.StatusError, Latency: 20 * time.Millisecond})
	want := `
# HELP warden_calls_total Tool calls decided, by entry point (mcp, http, authorize), registered tool and action (else other), effect and reason.
# TYPE warden_calls_total counter
warden_calls_total{action="echo",effect="allow",entry="mcp",reason="policy_allow",tool="notes"} 3
warden_calls_total{action="issues.list",effect="allow",entry="http",reason="policy_allow",tool="github"} 1
warden_calls_total{action="issues.list",effect="deny",entry="http",reason="no_matching_policy",tool="github"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "warden_calls_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "mcp_server_operation_duration_seconds"); n != 1 {
		t.Errorf("mcp_server_operation_duration_seconds has %d series; want the MCP call's alone", n)
	}
	if n := testutil.CollectAndCount(m.Registry(), "warden_upstream_duration_seconds"); n != 2 {
		t.Errorf("warden_upstream_duration_seconds has %d series; want 2", n)
	}
}

// TestEventTypesBounded: past maxEventTypes distinct types, the rest count as other.
func TestEventTypesBounded(t *testing.T) {
	m := metrics.New()
	types := make([]string, 300)
	for i := range types {
		types[i] = "t." + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String()
	}
	m.Committed(types, time.Millisecond)
	if n := testutil.CollectAndCount(m.Registry(), "warden_audit_events_total"); n != 257 {
		t.Errorf("warden_audit_events_total has %d series; want 256 and other", n)
	}
}

// BenchmarkObserver is what the metrics add to one call: its decision counted and timed, its
// outcome timed.
func BenchmarkObserver(b *testing.B) {
	m := metrics.New()
	c := gateway.CallLabels{Entry: gateway.EntryMCP, Tool: "notes", Action: "echo"}
	o := gateway.Outcome{Status: warden.StatusOK, Latency: 3 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		m.Decided(c, warden.EffectAllow, warden.ReasonPolicyAllow, 12*time.Microsecond).Finished(o)
	}
}
