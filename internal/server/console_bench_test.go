package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/identity"
)

// BenchmarkConsolePages measures the server time of the console's heaviest pages, through HTTP
// on 127.0.0.1 with a signed-in browser session, on SQLite holding 10,000 agents and an audit log
// of WARDEN_BENCH_EVENTS events (default 1,000,000) over the last week: tool calls of those
// agents and their results, one in ten high risk, one call in ten denied. It reports ms/op for each page.
func BenchmarkConsolePages(b *testing.B) {
	events := 1_000_000
	if s := os.Getenv("WARDEN_BENCH_EVENTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		events = n
	}
	const agents = 10_000
	const span = 7 * 24 * time.Hour // the events are spread over the last week
	ctx := context.Background()
	// Detection is off: it would be reading the generated log in the background all along.
	noDetect := func(c *config.Config) { c.Detect.Disabled = true }
	in := start(b, b.TempDir(), noDetect)
	now := time.Now().UTC()
	ids := make([]string, agents)
	for i := range agents {
		a := &warden.Agent{ID: warden.NewID("agt_"), Name: fmt.Sprintf("bench-agent-%05d", i), Owner: fmt.Sprintf("team-%d@example.com", i%40),
			Purpose: "console benchmark", Labels: map[string]string{"team": strconv.Itoa(i % 40)}, Status: warden.AgentActive,
			CreatedAt: now, UpdatedAt: now, SecretHash: make([]byte, 32)}
		if i%50 == 0 {
			a.Status = warden.AgentSuspended
		}
		if err := in.srv.Store.CreateAgent(ctx, a); err != nil {
			b.Fatal(err)
		}
		ids[i] = a.ID
	}
	const batch = 5000
	evs := make([]*warden.AuditEvent, 0, batch)
	for i := range events {
		ev := &warden.AuditEvent{
			SchemaVersion: warden.AuditSchemaVersion, ID: warden.NewID(""), Type: warden.EventToolCall,
			Time:     now.Add(-span + time.Duration(i)*span/time.Duration(events)),
			Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: ids[i%agents], Name: fmt.Sprintf("bench-agent-%05d", i%agents)},
			Target:   warden.EventTarget{Tool: "bank", Action: "transfer", Risk: warden.RiskLow},
			Decision: warden.EventDecision{Effect: warden.EffectAllow},
		}
		if i%10 == 0 {
			ev.Target.Risk = warden.RiskHigh
		}
		if i%2 == 1 { // each call's result
			ev.Type, ev.Decision = warden.EventToolResult, warden.EventDecision{}
		}
		if i%20 == 0 {
			ev.Decision = warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonNoMatchingPolicy}
		}
		evs = append(evs, ev)
		if len(evs) == batch || i == events-1 {
			if err := in.srv.Store.AppendAuditEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	in = in.restart(noDetect) // the audit log and the kill state read what was written behind them
	c := consoleSignIn(b, in, in.admin).c
	for _, page := range []string{"/ui/agents", "/ui/agents?owner=team-7@example.com&status=active", "/ui/agents/bench-agent-04242", "/ui/overview", "/ui/audit", "/ui/audit?decision=deny"} {
		b.Run(page, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.Get(in.url + page)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %d", page, resp.StatusCode)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkConsoleStreams measures the gateway's p50 for an allowed call through /http (a
// decision, two audit events, a forward to a local upstream) with no console open and with 100
// consoles following the live high-risk stream (/ui/stream), where every call is high risk and
// so sent to each of them.
func BenchmarkConsoleStreams(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer up.Close()
	in := start(b, b.TempDir(), func(c *config.Config) { c.Detect.Disabled = true })
	p := &warden.Principal{Name: "bench", Role: warden.RoleAdmin}
	ctx := context.Background()
	if _, err := in.srv.Admin.AddTool(ctx, p, admin.ToolSpec{Name: "api", HTTP: up.URL, Risk: "high", Routes: []string{"GET /fast -> fast"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := in.srv.Admin.ApplyPolicies(ctx, p, admin.PolicyApply{Files: map[string]string{"all.cedar": `@approval("waived") permit(principal, action in Action::"api", resource);`}}); err != nil {
		b.Fatal(err)
	}
	a, _, err := in.srv.Admin.CreateAgent(ctx, p, admin.AgentSpec{Name: "streamed", Owner: "sec@example.com", Purpose: "stream benchmark"})
	if err != nil {
		b.Fatal(err)
	}
	iss, err := in.srv.Identity.Issue(ctx, a, identity.IssueRequest{})
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	call := func() time.Duration {
		req, _ := http.NewRequest("GET", in.url+"/http/api/fast", nil)
		req.Header.Set("Authorization", "Bearer "+iss.Token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("call: %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	browser := consoleSignIn(b, in, in.admin)
	for _, consoles := range []int{0, 100} {
		b.Run(fmt.Sprintf("consoles=%d", consoles), func(b *testing.B) {
			sctx, stop := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for range consoles {
				req, _ := http.NewRequestWithContext(sctx, "GET", in.url+"/ui/stream", nil)
				resp, err := browser.c.Do(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("stream: %v", err)
				}
				wg.Go(func() { _, _ = io.Copy(io.Discard, resp.Body); resp.Body.Close() })
			}
			var took []time.Duration
			for b.Loop() {
				took = append(took, call())
			}
			stop()
			wg.Wait()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
		})
	}
}
