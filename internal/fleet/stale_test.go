package fleet

import (
	"testing"
	"time"
)

// TestStale is the freshness rule, case by case: fresh when a full reload is recent, or when
// the feed is connected, caught up, recently confirmed and has no change waiting too long.
func TestStale(t *testing.T) {
	now := time.Unix(1000, 0)
	const limit = 2 * time.Second
	recent, old := now.Add(-limit/2).UnixNano(), now.Add(-2*limit).UnixNano()
	tests := []struct {
		name                         string
		connGen, readyGen            int64
		confirmed, pending, reloaded int64
		stale                        bool
	}{
		{"feed up and confirmed", 3, 3, recent, 0, 0, false},
		{"never connected, never reloaded", 0, 0, 0, 0, 0, true},
		{"feed down", 0, 3, recent, 0, 0, true},
		{"feed down, reloaded recently", 0, 3, recent, 0, recent, false},
		{"feed down, reload old", 0, 3, recent, 0, old, true},
		{"reconnected, catch-up not finished", 4, 3, recent, 0, 0, true},
		{"confirmation old", 3, 3, old, 0, 0, true},
		{"a change waiting too long", 3, 3, recent, old, 0, true},
		{"a change waiting a little", 3, 3, recent, recent, 0, false},
		{"a change waiting too long, reloaded recently", 3, 3, recent, old, recent, false},
	}
	for _, tt := range tests {
		p := &Postgres{maxStaleness: limit}
		p.connGen.Store(tt.connGen)
		p.readyGen.Store(tt.readyGen)
		p.confirmed.Store(tt.confirmed)
		p.pendingSince.Store(tt.pending)
		p.reloaded.Store(tt.reloaded)
		if got := p.Stale(now); got != tt.stale {
			t.Errorf("%s: Stale = %v, want %v", tt.name, got, tt.stale)
		}
	}
}

// BenchmarkStale is the cost the freshness check adds to every tool call.
func BenchmarkStale(b *testing.B) {
	p := &Postgres{maxStaleness: 2 * time.Second}
	now := time.Now()
	p.connGen.Store(1)
	p.readyGen.Store(1)
	p.confirmed.Store(now.UnixNano())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p.Stale(now) {
				b.Fatal("stale")
			}
		}
	})
}
