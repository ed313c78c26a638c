package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// RunAppendBenchmark measures appends to the audit log, which every decision waits for. Each op
// appends one batch: one event, as when the log is idle, or 64, as a group commit writes under
// load. open returns a new, empty store for each batch size and closes it when b ends.
func RunAppendBenchmark(b *testing.B, open func(b *testing.B) warden.Store) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b)
			now := time.Now()
			n := 0
			for b.Loop() {
				evs := make([]*warden.AuditEvent, size)
				for i := range evs {
					n++
					evs[i] = &warden.AuditEvent{
						SchemaVersion: warden.AuditSchemaVersion,
						ID:            fmt.Sprintf("ev-%09d", n),
						Time:          now,
						Type:          "tool.call",
						Actor:         warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", SessionID: "s1"},
						Target:        warden.EventTarget{Tool: "github", Action: "issues.create", Arguments: []byte(`{"title":"x"}`)},
						Decision:      warden.EventDecision{Effect: warden.EffectAllow, Reason: "policy_allow"},
					}
				}
				if err := s.AppendAuditEvents(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
