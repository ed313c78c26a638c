package fleet_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wardenhq/warden/internal/fleet"
)

// BenchmarkNotifyRoundTrip is the baseline of the fleet's latency: one notification from one
// connection to another LISTENing one and one back, with nothing of warden's around them.
func BenchmarkNotifyRoundTrip(b *testing.B) {
	dsn := testDatabase(b)
	ctx := context.Background()
	connect := func(channel string) *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(context.Background()) })
		if _, err := c.Exec(ctx, "LISTEN "+channel); err != nil {
			b.Fatal(err)
		}
		return c
	}
	ping, pong := connect("pong"), connect("ping") // each listens for what the other sends
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := ping.Exec(ctx, "SELECT pg_notify('ping', '')"); err != nil {
			b.Fatal(err)
		}
		if _, err := pong.WaitForNotification(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := pong.Exec(ctx, "SELECT pg_notify('pong', '')"); err != nil {
			b.Fatal(err)
		}
		if _, err := ping.WaitForNotification(ctx); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	reportPercentiles(b, took)
}

// BenchmarkPublishAck is what a kill waits for in the fleet: a replica publishes a kill-state
// change, every other replica applies it (here a handler that does nothing) and acknowledges,
// and WaitAcks returns with all of them acknowledged.
func BenchmarkPublishAck(b *testing.B) {
	for _, replicas := range []int{2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			dsn := testDatabase(b)
			fleetOf := make([]*replica, replicas)
			for i := range fleetOf {
				fleetOf[i] = start(b, dsn, fmt.Sprintf("r%d", i))
			}
			a := fleetOf[0]
			ctx := context.Background()
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				v, err := a.Publish(ctx, fleet.TopicAgent, "agent-1")
				if err != nil {
					b.Fatal(err)
				}
				acks := a.WaitAcks(ctx, v, 5*time.Second)
				took = append(took, time.Since(start))
				if len(acks) != replicas-1 {
					b.Fatalf("acks = %+v, want %d", acks, replicas-1)
				}
				for _, ack := range acks {
					if !ack.Acked {
						b.Fatalf("not acknowledged: %+v", ack)
					}
				}
			}
			reportPercentiles(b, took)
		})
	}
}

// reportPercentiles adds the median and 99th percentile of took, in milliseconds.
func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
