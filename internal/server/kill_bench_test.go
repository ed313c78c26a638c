package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/identity"
)

// BenchmarkKill measures how long kill takes to return, and how long until the agent's calls in
// flight have all ended, with 1,000 live sessions of the agent on the server, 500 calls a second
// flowing, and 20 slow calls in flight when the kill starts. It reports p50 and p99 of both.
func BenchmarkKill(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.Write([]byte("ok"))
	}))
	defer up.Close()
	in := start(b, b.TempDir(), nil)
	p := &warden.Principal{Name: "bench", Role: warden.RoleAdmin}
	ctx := context.Background()
	if _, err := in.srv.Admin.AddTool(ctx, p, admin.ToolSpec{Name: "api", HTTP: up.URL, Risk: "low", Routes: []string{"GET /fast -> fast", "GET /slow -> slow"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := in.srv.Admin.ApplyPolicies(ctx, p, admin.PolicyApply{Files: map[string]string{"all.cedar": `permit(principal, action in Action::"api", resource);`}}); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	call := func(token, path string) {
		req, _ := http.NewRequest("GET", in.url+"/http/api"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	var returned, cancelled []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		a, _, err := in.srv.Admin.CreateAgent(ctx, p, admin.AgentSpec{Name: fmt.Sprintf("canary-%d", i), Owner: "sec@example.com", Purpose: "kill benchmark"})
		if err != nil {
			b.Fatal(err)
		}
		var tokens []string
		for s := 0; s < 1000; s++ {
			iss, err := in.srv.Identity.Issue(ctx, a, identity.IssueRequest{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := in.srv.Identity.VerifyToken(ctx, iss.Token); err != nil {
				b.Fatal(err)
			}
			tokens = append(tokens, iss.Token)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // 500 calls a second until stopped
			defer wg.Done()
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-t.C:
					go call(tokens[n%len(tokens)], "/fast")
				}
			}
		}()
		for s := 0; s < 20; s++ {
			wg.Add(1)
			go func() { defer wg.Done(); call(tokens[s], "/slow") }()
		}
		for in.srv.Pipeline.InFlight(a.ID) < 20 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
		t0 := time.Now()
		if _, err := in.srv.Kill.Kill(ctx, p, a.Name, "benchmark", nil); err != nil {
			b.Fatal(err)
		}
		returned = append(returned, time.Since(t0))
		for in.srv.Pipeline.InFlight(a.ID) > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		cancelled = append(cancelled, time.Since(t0))
		b.StopTimer()
		close(stop)
		wg.Wait()
	}
	slices.Sort(returned)
	slices.Sort(cancelled)
	b.ReportMetric(ms(returned[len(returned)/2]), "return-p50-ms")
	b.ReportMetric(ms(returned[len(returned)*99/100]), "return-p99-ms")
	b.ReportMetric(ms(cancelled[len(cancelled)/2]), "cancelled-p50-ms")
	b.ReportMetric(ms(cancelled[len(cancelled)*99/100]), "cancelled-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
