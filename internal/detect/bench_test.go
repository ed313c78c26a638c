package detect

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// benchEvents is the calls of 50 agents, in time order: each with a resource with an id (a
// pattern to work out) and arguments (keys to read), and a result with its bytes sent for every
// three calls.
func benchEvents(n int) []*warden.AuditEvent {
	out := make([]*warden.AuditEvent, 0, n)
	at := day0.Add(9 * time.Hour)
	actions := []string{"list", "read", "search", "create"}
	for i := range n {
		ev := withArgs(call(at.Add(time.Duration(i)*50*time.Millisecond), "mail", actions[i%len(actions)], fmt.Sprintf("/v1/messages/%d", i), warden.RiskLow, warden.EffectAllow),
			`{"id":"[redacted]","format":"full"}`)
		if i%4 == 3 { // every fourth event the result of a call, with the bytes it sent
			ev.Type, ev.Outcome.BytesIn = warden.EventToolResult, 2048
		}
		ev.Actor.Name = fmt.Sprintf("bot-%d", i%50)
		ev.Seq = int64(i + 1)
		out = append(out, ev)
	}
	return out
}

// BenchmarkObserve: events per second one detector judges (the work of the runner's one
// goroutine per event, without the store).
func BenchmarkObserve(b *testing.B) {
	evs := benchEvents(100_000)
	d := NewDetector(Config{LearningCalls: 100}, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.Observe(evs[i%len(evs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRunnerPass: events per second the runner keeps up with end to end on SQLite:
// reading the log in batches of 1000, judging each event, saving the baselines and cursor.
func BenchmarkRunnerPass(b *testing.B) {
	const total = 20_000
	ctx := context.Background()
	var judged int
	var spent time.Duration
	for range b.N {
		b.StopTimer()
		r := newRig(b)
		evs := benchEvents(total)
		for i := 0; i < total; i += 1000 {
			batch := evs[i : i+1000]
			for _, ev := range batch {
				ev.ID = fmt.Sprintf("%026d", ev.Seq)
				ev.SchemaVersion = warden.AuditSchemaVersion
			}
			if err := r.store.AppendAuditEvents(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		run := &Runner{Store: r.store, Audit: r.log, Replica: "r1", Clock: r.clk, Config: Config{LearningCalls: 100}}
		b.StartTimer()
		start := time.Now()
		for more := true; more; {
			var err error
			if more, err = run.Step(ctx); err != nil {
				b.Fatal(err)
			}
		}
		spent += time.Since(start)
		judged += total
	}
	b.ReportMetric(float64(judged)/spent.Seconds(), "events/s")
}
