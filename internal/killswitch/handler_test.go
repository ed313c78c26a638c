package killswitch

import (
	"context"
	"errors"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
)

// storeAgents reloads agents from the store into the kill state, as the token service does.
type storeAgents struct {
	e    *serviceEnv
	fail error
}

func (a storeAgents) ReloadAgents(ctx context.Context) error {
	if a.fail != nil {
		return a.fail
	}
	return a.e.svc.State.LoadAgents(ctx, a.e.store.Agents)
}

func (a storeAgents) ReloadAgent(ctx context.Context, id string) error {
	if a.fail != nil {
		return a.fail
	}
	ag, err := a.e.store.AgentByID(ctx, id)
	if warden.ErrorCode(err) == warden.ENotFound {
		a.e.svc.State.ForgetAgent(id)
		return nil
	}
	if err != nil {
		return err
	}
	a.e.svc.State.ObserveAgent(ag)
	return nil
}

type countingReload struct{ n int }

func (c *countingReload) ReloadKeys(context.Context) error { c.n++; return nil }
func (c *countingReload) Reload(context.Context) error     { c.n++; return nil }

// Another replica kills an agent: it writes the store and announces the agent. This replica's
// Handler reloads the agent, refuses it, ends what it has running here and reports it.
func TestHandlerAppliesAnotherReplicasKill(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	e.svc.Agents = storeAgents{e: e}
	e.svc.Baseline()
	ctx := context.Background()
	a, err := e.store.UpdateAgent(ctx, "bot", func(a *warden.Agent) error {
		a.Status, a.StatusReason, a.Epoch = warden.AgentKilled, "from replica b", a.Epoch+1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := e.svc.Handler(nil, nil)
	applied, err := h(ctx, fleet.Change{Topic: fleet.TopicAgent, Name: a.ID, Version: 9, Replica: "replica-b"})
	if err != nil {
		t.Fatal(err)
	}
	if e.check(a.Epoch, nil) != warden.ReasonAgentInactive {
		t.Fatal("the other replica's kill is not enforced here")
	}
	if applied != (fleet.Applied{CallsCancelled: 2, SessionsClosed: 1, SandboxesStopped: 1}) {
		t.Errorf("applied %+v", applied)
	}
	if got := e.terminated(t); len(got.approvals) != 1 || got.approvals[0] != "agt_bot: agent killed: from replica b" {
		t.Errorf("approvals rejected %v", got.approvals)
	}
}

// Each topic reloads what it names: a lockdown from the store, keys, budgets.
func TestHandlerReloadsByTopic(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	e.svc.Agents = storeAgents{e: e}
	e.svc.Baseline()
	ctx := context.Background()
	if err := e.store.SetLockdown(ctx, warden.Lockdown{Active: true, Reason: "from b"}); err != nil {
		t.Fatal(err)
	}
	keys, budgets := &countingReload{}, &countingReload{}
	h := e.svc.Handler(keys, budgets)
	applied, err := h(ctx, fleet.Change{Topic: fleet.TopicLockdown, Version: 1, Replica: "b"})
	if err != nil || applied.CallsCancelled != 5 || e.check(1, nil) != warden.ReasonLockdown {
		t.Fatalf("lockdown: %+v, %v", applied, err)
	}
	for _, topic := range []fleet.Topic{fleet.TopicKey, fleet.TopicRevocation} {
		if _, err := h(ctx, fleet.Change{Topic: topic}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h(ctx, fleet.Change{Topic: fleet.TopicBudget}); err != nil {
		t.Fatal(err)
	}
	if keys.n != 2 || budgets.n != 1 {
		t.Errorf("keys reloaded %d times, budgets %d; want 2 and 1", keys.n, budgets.n)
	}
	if _, err := h(ctx, fleet.Change{Topic: fleet.TopicAll}); err != nil || keys.n != 3 || budgets.n != 2 {
		t.Errorf("all: %v; keys %d, budgets %d", err, keys.n, budgets.n)
	}
}

// A change that cannot be read from the store is not acknowledged: the Handler returns the
// error (the safety-net poll retries).
func TestHandlerReturnsReloadErrors(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	e.svc.Agents = storeAgents{e: e, fail: errors.New("connection refused")}
	h := e.svc.Handler(nil, nil)
	if _, err := h(context.Background(), fleet.Change{Topic: fleet.TopicAgent, Name: "agt_bot"}); err == nil {
		t.Fatal("a failed reload was acknowledged")
	}
}
