package killswitch

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// BenchmarkReconcile measures one reconcile over a kill state of 1,000 agents and 100 tools:
// the cost every announcement and every safety-net pass pays on top of its reload, when
// nothing changed, and when one agent was killed since the last pass.
func BenchmarkReconcile(b *testing.B) {
	now := time.Now()
	agents := make([]*warden.Agent, 1000)
	for i := range agents {
		agents[i] = &warden.Agent{ID: fmt.Sprintf("agt_%04d", i), Name: fmt.Sprintf("a%d", i), Status: warden.AgentActive, Epoch: 1, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	tools := make([]*warden.Tool, 100)
	for i := range tools {
		tools[i] = &warden.Tool{Name: fmt.Sprintf("t%d", i), Disabled: i%10 == 0}
	}
	newService := func(b *testing.B) *Service {
		state := NewState()
		if err := state.LoadAgents(context.Background(), func(context.Context) ([]*warden.Agent, error) { return agents, nil }); err != nil {
			b.Fatal(err)
		}
		state.SetTools(state.Ticket(), tools)
		s := &Service{State: state, Calls: &fakeCalls{}, Sessions: &fakeSessions{}, Runners: NewRunners(), Log: slog.New(slog.DiscardHandler)}
		s.Baseline()
		return s
	}
	b.Run("unchanged", func(b *testing.B) {
		s := newService(b)
		ctx := context.Background()
		for b.Loop() {
			s.Reconcile(ctx)
		}
	})
	b.Run("one agent killed", func(b *testing.B) {
		s := newService(b)
		ctx := context.Background()
		epoch := int64(1)
		for b.Loop() {
			epoch++
			a := *agents[7]
			a.Status, a.Epoch = warden.AgentKilled, epoch
			s.State.ObserveAgent(&a)
			s.Reconcile(ctx)
		}
	})
}
