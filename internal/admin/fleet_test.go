package admin

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/secrets"
	"github.com/wardenhq/warden/internal/sqlite"
)

// recordingFleet records what is announced to the other replicas and what is waited for.
type recordingFleet struct {
	mu     sync.Mutex
	events []string // "topic name", and "wait" after a change the command waited for
}

func (f *recordingFleet) Self() string { return "replica-a" }

func (f *recordingFleet) Publish(_ context.Context, topic fleet.Topic, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, strings.TrimSpace(string(topic)+" "+name))
	return int64(len(f.events)), nil
}

func (f *recordingFleet) WaitAcks(context.Context, int64, time.Duration) []apitype.ReplicaAck {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, "wait")
	return nil
}

func (f *recordingFleet) Reloaded(time.Time) {}

func (f *recordingFleet) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.events
	f.events = nil
	return out
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, *warden.AuditEvent) error { return nil }

type countingCalls struct {
	mu     sync.Mutex
	agents []string
	tools  []string
}

func (c *countingCalls) CancelAgent(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.agents = append(c.agents, id)
	return 1
}

func (c *countingCalls) CancelTool(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tools = append(c.tools, name)
	return 1
}

func (c *countingCalls) CancelAll() int { return 0 }

type noTokens struct{}

func (noTokens) LiveSessions(string) int { return 0 }

// TestEveryChangeIsAnnounced makes each kind of admin change against a real store and checks
// that the fleet hears of it, by topic and name, after it is written; that the changes that
// take power away (a suspension, a tool disabled) wait for the fleet; and that they end what
// they forbid on this replica through the kill switch.
func TestEveryChangeIsAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.DiscardHandler)
	state := killswitch.NewState()
	registry := gateway.NewRegistry(store, log)
	registry.Kill = state
	budgets, err := budget.New(ctx, store, log, budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &recordingFleet{}
	calls := &countingCalls{}
	kill := &killswitch.Service{Store: store, State: state, Audit: nopAudit{}, Calls: calls, Tokens: noTokens{}, Registry: registry, Fleet: f, Log: log}
	s := New(Deps{Store: store, Audit: nopAudit{}, Observer: state, Secrets: secrets.New(store, make([]byte, 32)), Registry: registry,
		Calls: calls, Budgets: budgets, Kill: kill, Fleet: f, Log: log})
	p := &warden.Principal{Name: "ops", Role: warden.RoleAdmin}

	a, _, err := s.CreateAgent(ctx, p, AgentSpec{Name: "bot", Owner: "o@example.com", Purpose: "p"})
	if err != nil {
		t.Fatal(err)
	}
	agent := "agent " + a.ID
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"create agent", func() error { return nil }, []string{agent}},
		{"renew", func() error { _, err := s.Renew(ctx, p, "bot", "30d"); return err }, []string{agent}},
		{"rotate", func() error { _, _, err := s.RotateSecret(ctx, p, "bot"); return err }, []string{agent}},
		{"suspend", func() error { _, err := s.Suspend(ctx, p, "bot", "review"); return err }, []string{agent, "wait"}},
		{"suspend again: nothing changes", func() error { _, err := s.Suspend(ctx, p, "bot", "review"); return err }, nil},
		{"resume", func() error { _, err := s.Resume(ctx, p, "bot", "back"); return err }, []string{agent}},
		{"add tool", func() error {
			_, err := s.AddTool(ctx, p, ToolSpec{Name: "wiki", HTTP: "http://127.0.0.1:1", Risk: "low", Routes: []string{"GET / -> read"}})
			return err
		}, []string{"tool wiki"}},
		{"disable tool", func() error { _, _, err := s.SetToolEnabled(ctx, p, "wiki", false, "broken"); return err }, []string{"tool wiki", "wait"}},
		{"enable tool", func() error { _, _, err := s.SetToolEnabled(ctx, p, "wiki", true, "fixed"); return err }, []string{"tool wiki"}},
		{"policies", func() error {
			_, err := s.ApplyPolicies(ctx, p, PolicyApply{Files: map[string]string{"a.cedar": `permit(principal == Agent::"bot", action in Action::"wiki", resource);`}})
			return err
		}, []string{"policy 1"}},
		{"shadow", func() error {
			_, err := s.ApplyShadow(ctx, p, PolicyApply{Files: map[string]string{"a.cedar": `forbid(principal, action in Action::"wiki", resource);`}})
			return err
		}, []string{"policy shadow"}},
		{"drop shadow", func() error { _, err := s.DropShadow(ctx, p, "no"); return err }, []string{"policy shadow"}},
		{"set budget", func() error { _, err := s.SetBudget(ctx, p, BudgetSpec{Agent: "bot", Spec: "quota 5/day"}); return err }, nil},
		{"admin token", func() error {
			_, _, err := s.CreateAdminToken(ctx, p, AdminTokenSpec{Name: "carol", Role: "operator"})
			return err
		}, []string{"admin_token carol"}},
		{"revoke admin token", func() error { return s.RevokeAdminToken(ctx, p, "carol") }, []string{"admin_token carol"}},
		{"remove tool", func() error { return s.RemoveTool(ctx, p, "wiki") }, nil},
		{"delete agent", func() error { return s.DeleteAgent(ctx, p, "bot") }, []string{agent}},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := f.take()
		want := st.want
		switch st.name {
		case "set budget":
			bs := budgets.Show("bot", time.Now())
			if len(bs) != 1 {
				t.Fatalf("budgets %+v", bs)
			}
			want = []string{"budget " + bs[0].Budget.ID}
		case "remove tool":
			// The policy naming wiki must go first.
			want = []string{"tool wiki"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s announced %q, want %q", st.name, got, want)
		}
		if st.name == "set budget" {
			if err := s.DeleteBudget(ctx, p, want[0][len("budget "):]); err != nil {
				t.Fatal(err)
			}
			if got := f.take(); !slices.Equal(got, want) {
				t.Errorf("delete budget announced %q, want %q", got, want)
			}
		}
		if st.name == "revoke admin token" {
			if _, err := s.ApplyPolicies(ctx, p, PolicyApply{Files: map[string]string{}}); err != nil {
				t.Fatal(err)
			}
			f.take()
		}
	}
	// Rotation and suspension each ended the agent's calls here; the disable ended the tool's.
	if !slices.Equal(calls.agents, []string{a.ID, a.ID, a.ID}) {
		t.Errorf("agent calls cancelled for %v; want the rotation, the suspension and the deletion", calls.agents)
	}
	if fmt.Sprint(calls.tools) != "[wiki wiki]" {
		t.Errorf("tool calls cancelled for %v; want the disable and the removal", calls.tools)
	}
}
