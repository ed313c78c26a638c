package audit_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
)

// BenchmarkDurableAppend measures Append on the SQLite default, on disk, with synchronous=FULL:
// each op is one event that is durable when Append returns. Concurrent appenders share commits
// (group commit); the metrics are events/s and the p50 and p99 of the time each Append waited.
func BenchmarkDurableAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 32, 64, 128} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l := openLog(b)
			ev := event(0)
			args := ev.Target.Arguments
			var mu sync.Mutex
			var latencies []time.Duration
			var next atomic.Int64
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, appenders/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					i := next.Add(1)
					ev := &warden.AuditEvent{
						Type:     warden.EventToolCall,
						Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", SessionID: "s1", Source: "127.0.0.1:40000"},
						Target:   warden.EventTarget{Tool: "github", Action: "issues.create", Resource: "repo:acme/web", Arguments: args},
						Decision: warden.EventDecision{ID: fmt.Sprintf("dec_%d", i), Effect: warden.EffectAllow, Reason: "policy_allow", Policies: []string{"triage"}, PolicyVersion: 3},
						TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
					}
					t0 := time.Now()
					if err := l.Append(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(latencies)
			b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "events/s")
			b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
			b.ReportMetric(0, "ns/op") // per-op time hides the concurrency; events/s says it
		})
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var verifyEvents = flag.Int("audit.verify-events", 200_000, "events in the log BenchmarkVerify checks")

// BenchmarkVerify measures verification of a log on SQLite: each op verifies the whole log, of
// -audit.verify-events events with a checkpoint every 1000.
func BenchmarkVerify(b *testing.B) {
	l := openLog(b)
	n := *verifyEvents
	ctx := context.Background()
	now := time.Now()
	batch := make([]*warden.AuditEvent, 0, 1000)
	for i := range n {
		ev := event(i)
		ev.ID = fmt.Sprintf("%026d", i)
		ev.Time = now
		ev.SchemaVersion = warden.AuditSchemaVersion
		ev.Actor.Replica = "r1"
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == n-1 {
			if err := l.store.AppendAuditEvents(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
			if _, err := l.Checkpoint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		r, err := audit.Verify(ctx, l.store, audit.VerifyOptions{Verifiers: l.keys.Verifiers})
		if err != nil || !r.OK || r.Events != int64(n) {
			b.Fatalf("verify: %+v %v", r, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Minutes(), "events/min")
}

// BenchmarkDurableAppendAtRate offers appends at a fixed rate, as a busy gateway does, rather
// than from a fixed number of callers: each op is one event, due at its place in the schedule
// whether or not earlier ones have returned (an open loop). A pool of appenders, far more than
// the rate needs for the events in flight, takes the events as they fall due, so that the
// figures are Append's rather than those of starting a goroutine per event. The metrics are the
// rate achieved and the p50 and p99 of the time each Append took — under that load.
func BenchmarkDurableAppendAtRate(b *testing.B) {
	for _, rate := range []int{1000, 5000, 10000, 20000} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			l := openLog(b)
			args := event(0).Target.Arguments
			latencies := make([]time.Duration, b.N)
			interval := time.Second / time.Duration(rate)
			// 50 ms of events: a pool that ran out would show as a rate below the one offered.
			appenders := rate / 20
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range appenders {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
							time.Sleep(wait)
						}
						ev := &warden.AuditEvent{
							Type:     warden.EventToolCall,
							Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", SessionID: "s1", Source: "127.0.0.1:40000"},
							Target:   warden.EventTarget{Tool: "github", Action: "issues.create", Resource: "repo:acme/web", Arguments: args},
							Decision: warden.EventDecision{ID: "dec_" + strconv.Itoa(i), Effect: warden.EffectAllow, Reason: "policy_allow"},
							TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
						}
						t0 := time.Now()
						if err := l.Append(context.Background(), ev); err != nil {
							b.Error(err)
							return
						}
						latencies[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(latencies)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(ms(percentile(latencies, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(latencies, 0.99)), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
