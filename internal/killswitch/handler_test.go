package killswitch

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
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

// signallingAgents reloads agents from the store, failing while fail is set, and tells each
// reload on done.
type signallingAgents struct {
	storeAgents
	fail atomic.Bool
	done chan struct{}
}

func (a *signallingAgents) ReloadAgents(ctx context.Context) error {
	defer func() { a.done <- struct{}{} }()
	if a.fail.Load() {
		return errors.New("connection refused")
	}
	return a.storeAgents.ReloadAgents(ctx)
}

// The safety-net poll reloads the whole kill state (agents, tools, lockdown, quarantine) and
// reconciles, so a change whose announcement was lost still ends what it forbids; only a complete reload tells
// the fleet this replica is current (Reloaded): a partial one must not keep a replica whose
// feed is down looking fresh.
func TestRunReloadsAndConfirmsFreshness(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	e := newServiceEnv(t)
	clk := clock.NewFake(time.Now())
	f := &fakeFleet{}
	agents := &signallingAgents{storeAgents: storeAgents{e: e}, done: make(chan struct{})}
	e.svc.Clock, e.svc.Fleet, e.svc.Agents = clk, f, agents
	e.svc.Baseline()
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx, time.Second) }()
	tick := func() {
		t.Helper()
		if err := clk.WaitForTimers(1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second)
		select {
		case <-agents.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the poll did not reload the agents")
		}
	}

	// Another replica suspends the agent; its announcement was lost. The agents fail to load.
	if _, err := e.store.UpdateAgent(ctx, "bot", func(a *warden.Agent) error {
		a.Status, a.Epoch = warden.AgentSuspended, a.Epoch+1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// And disables a tool; that announcement was lost too.
	if _, err := e.store.UpdateTool(ctx, "wiki", func(tool *warden.Tool) error { tool.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	agents.fail.Store(true)
	tick()
	agents.fail.Store(false)
	tick()
	// A third pass, failing again, has begun only once the second is over; it tells nobody.
	agents.fail.Store(true)
	tick()
	f.mu.Lock()
	reloaded := f.reloaded
	f.mu.Unlock()
	if reloaded != 1 {
		t.Errorf("Reloaded told %d times over a failed and a complete reload; want 1", reloaded)
	}
	if e.check(2, nil) != warden.ReasonAgentInactive {
		t.Error("the poll did not load the suspension")
	}
	if got := e.terminated(t); len(got.agents) != 1 || got.agents[0] != "agt_bot" || len(got.tools) != 1 || got.tools[0] != "wiki" {
		t.Errorf("the poll's reconcile cancelled the calls of %v and of tools %v; want the suspended agent's and the disabled tool's", got.agents, got.tools)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
