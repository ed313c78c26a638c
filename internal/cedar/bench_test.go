package cedar

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/wardenhq/warden"
)

// benchPolicies returns a policy set of about n policies shaped like a real deployment: grants
// from warden.yaml for many agents, some with conditions, and a few wildcard forbids that every
// request evaluates.
func benchPolicies(tb testing.TB, n int) map[string]string {
	tb.Helper()
	forbids := []string{
		`@id("no-critical") forbid(principal, action, resource) when { context.risk_level >= 4 };`,
		`@id("no-deletes") forbid(principal, action == Action::"github:repo.delete", resource) unless { principal.getTag("team") == "platform" };`,
		`@id("prod-secrets") forbid(principal, action, resource == Resource::"repo:acme/secrets");`,
		`@id("night") forbid(principal, action in Action::"github", resource) when { context.args has force && context.args.force == true };`,
		`@id("contractors") forbid(principal, action, resource) when { principal.hasTag("contractor") && context.risk_level >= 3 };`,
	}
	if n < len(forbids) {
		return map[string]string{"forbids.cedar": strings.Join(forbids[:n], "\n")}
	}
	var b strings.Builder
	for i := range n - len(forbids) {
		g := GrantSpec{Agent: fmt.Sprintf("agent-%d", i/10), Tool: []string{"github", "everything", "shell"}[i%3], Index: i % 10}
		switch i % 4 {
		case 1:
			g.Actions = []string{"issues.list", "issues.comment"}
			if g.Tool != "github" {
				g.Actions = []string{"echo"}
			}
		case 2:
			g.When = fmt.Sprintf(`resource == Resource::"repo:acme/r%d" || context.args.count < %d`, i, i%50)
		case 3:
			g.Approval = true
		}
		text, err := Grant(g)
		if err != nil {
			tb.Fatal(err)
		}
		b.WriteString(text)
	}
	return map[string]string{"forbids.cedar": strings.Join(forbids, "\n"), "grants.cedar": b.String()}
}

func benchRequest() *warden.Request {
	return &warden.Request{
		Agent:     &warden.Agent{Name: "agent-3", Owner: "alice@example.com", Purpose: "triage", Labels: map[string]string{"team": "payments"}},
		Tool:      testTool("github"),
		Action:    "issues.list",
		Resource:  "repo:acme/web",
		Arguments: map[string]any{"state": "open", "count": 20.0, "labels": []any{"bug", "p1"}},
		SessionID: "s-1",
		Time:      testNow,
	}
}

// BenchmarkDecide reports ns/op and, per call, the median and 99th percentile.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			e, err := Compile(benchPolicies(b, n), testTools(), 1)
			if err != nil {
				b.Fatal(err)
			}
			r := benchRequest()
			if d := e.Decide(r); n > 1 && d.Effect == warden.EffectDeny {
				b.Fatalf("benchmark request denied: %+v", d)
			}
			benchLatency(b, func() { e.Decide(r) })
		})
	}
}

// BenchmarkDecideUnindexed evaluates every policy, as cedar-go alone would: the cost the index
// saves.
func BenchmarkDecideUnindexed(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			e, err := Compile(benchPolicies(b, n), testTools(), 1)
			if err != nil {
				b.Fatal(err)
			}
			all := make([]int32, len(e.policies))
			for i := range all {
				all[i] = int32(i)
			}
			full := func(cedar.Request, string) []int32 { return all }
			r := benchRequest()
			benchLatency(b, func() { e.evaluate(r, full) })
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	e, err := Compile(benchPolicies(b, 10000), testTools(), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := benchRequest()
		for pb.Next() {
			e.Decide(r)
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	files := benchPolicies(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(files, testTools(), 1); err != nil {
			b.Fatal(err)
		}
	}
}

func benchLatency(b *testing.B, decide func()) {
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		decide()
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
