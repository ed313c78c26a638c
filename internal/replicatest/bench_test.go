package replicatest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/apitype"
)

// benchEnv reads a positive integer knob of the fleet benchmark from the environment.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// BenchmarkFleetKill measures the two figures on three replicas with many open MCP
// sessions and steady load (WARDEN_FLEET_BENCH_SESSIONS, default 1000; WARDEN_FLEET_BENCH_RATE
// calls a second, default 500): the time for `kill` sent to r1 to return with every replica
// acknowledged, and the time from sending it until the upstream saw the victim's last call in
// flight on r2 and r3 aborted. Each iteration kills a fresh victim. Reported as p50 and p99 over
// the iterations (run with -benchtime=20x or more); a call not aborted within 3 s is counted in
// not-cancelled and left out of the percentiles.
func BenchmarkFleetKill(b *testing.B) {
	sessions := benchEnv(b, "WARDEN_FLEET_BENCH_SESSIONS", 1000)
	rate := benchEnv(b, "WARDEN_FLEET_BENCH_RATE", 500)
	f := Start(b, Options{})
	ctx := b.Context()
	up := StartUpstream(b)
	bystander := f.Setup(ctx, up, "bystander")[0]
	if _, err := f.Client(0).ApplyPolicies(ctx, apitype.PolicyApply{Files: map[string]string{"replicatest.cedar": fmt.Sprintf(
		"permit(principal, action in [Action::%q, Action::%q], resource);\n", HTTPTool, MCPTool)}}); err != nil {
		b.Fatal(err)
	}
	token := f.AgentToken(ctx, 0, bystander)
	for i := range f.Replicas {
		if err := f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			b.Fatal(err)
		}
	}
	open := openSessions(b, f, token, sessions)
	defer func() {
		for _, cs := range open {
			cs.Close()
		}
	}()
	stopLoad := steadyLoad(ctx, f, token, rate)
	defer stopLoad()

	var kills, cancels []time.Duration
	notCancelled := 0
	b.ResetTimer()
	for n := range b.N {
		b.StopTimer()
		victim := &Agent{Name: fmt.Sprintf("victim-%d", n)}
		created, err := f.Client(0).CreateAgent(ctx, apitype.AgentSpec{Name: victim.Name, Owner: "bench@example.invalid", TTL: "1d", Purpose: "fleet kill benchmark"})
		if err != nil {
			b.Fatal(err)
		}
		victim.ClientID, victim.Secret = created.ClientID, created.ClientSecret
		vt := f.AgentToken(ctx, 0, victim)
		callCtx, stop := context.WithCancel(ctx)
		var calls sync.WaitGroup
		var ids []string
		for _, i := range []int{1, 2} {
			if err := f.WaitEcho(ctx, i, vt, http.StatusOK); err != nil {
				b.Fatal(err)
			}
			id := fmt.Sprintf("%s-%s", victim.Name, f.Replicas[i].ID)
			ids = append(ids, id)
			calls.Add(1)
			go func() {
				defer calls.Done()
				_, _, _ = Get(callCtx, &http.Client{}, f.Replicas[i].URL+"/http/"+HTTPTool+"/block?id="+id, vt)
			}()
			if err := up.WaitStarted(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		sent := time.Now()
		rep, err := f.Client(0).Kill(ctx, victim.Name, apitype.KillRequest{Reason: "fleet kill benchmark"})
		kills = append(kills, time.Since(sent))
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Logf("first kill report's replicas: %+v", rep.Replicas)
		}
		var last time.Duration
		waitCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		for _, id := range ids {
			at, err := up.WaitCancelled(waitCtx, id)
			if err != nil {
				notCancelled++
				last = -1
				break
			}
			last = max(last, at.Sub(sent))
		}
		cancel()
		if last >= 0 {
			cancels = append(cancels, last)
		}
		stop()
		calls.Wait()
		b.StartTimer()
	}
	b.StopTimer()
	report := func(name string, d []time.Duration) {
		if len(d) == 0 {
			return
		}
		slices.Sort(d)
		b.ReportMetric(ms(d[len(d)/2]), name+"-p50-ms")
		b.ReportMetric(ms(d[min(len(d)-1, len(d)*99/100)]), name+"-p99-ms")
	}
	report("kill-return", kills)
	report("remote-cancel", cancels)
	b.ReportMetric(float64(notCancelled), "not-cancelled")
	b.ReportMetric(float64(len(open)), "sessions")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// openSessions opens n MCP sessions of the token, spread over the replicas, eight at a time.
func openSessions(b *testing.B, f *Fleet, token string, n int) []*mcp.ClientSession {
	out := make([]*mcp.ClientSession, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cs, err := MCPConnect(b.Context(), f.Replicas[i%len(f.Replicas)].URL+"/mcp", token)
			out[i] = cs
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatalf("opening %d MCP sessions: %v", n, err)
		}
	}
	return out
}

// steadyLoad sends rate echo calls a second of the token, spread over the replicas, until the
// returned function is called (open loop; a call that would make 256 outstanding is skipped).
func steadyLoad(ctx context.Context, f *Fleet, token string, rate int) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	sem := make(chan struct{}, 256)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, _, _ = Get(ctx, hc, f.Replicas[i%len(f.Replicas)].URL+"/http/"+HTTPTool+"/echo", token)
			}()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
