package killswitch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// TestSnapshotCheck is the first step of every call, for every combination that decides it:
// the agent's status, expiry and epoch, the lockdown (full or from a risk up) and the disabled
// tools. Refusals come in a fixed order: the agent, its epoch, the lockdown, the tool.
func TestSnapshotCheck(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st := NewState()
	for _, a := range []*warden.Agent{
		{ID: "active", Status: warden.AgentActive, Epoch: 3, ExpiresAt: now.Add(time.Hour)},
		{ID: "forever", Status: warden.AgentActive, Epoch: 1}, // no expiry
		{ID: "expired", Status: warden.AgentActive, Epoch: 3, ExpiresAt: now},
		{ID: "suspended", Status: warden.AgentSuspended, Epoch: 3, ExpiresAt: now.Add(time.Hour)},
		{ID: "killed", Status: warden.AgentKilled, Epoch: 4, ExpiresAt: now.Add(time.Hour)},
		{ID: "odd", Status: "retired", Epoch: 3, ExpiresAt: now.Add(time.Hour)},
	} {
		st.ObserveAgent(a)
	}
	low := &warden.Tool{Name: "wiki", Risk: warden.RiskLow}
	high := &warden.Tool{Name: "payments", Risk: warden.RiskHigh}
	critical := &warden.Tool{Name: "shell", Risk: warden.RiskCritical}
	off := &warden.Tool{Name: "github", Risk: warden.RiskLow, Disabled: true}
	st.SetTools(st.Ticket(), []*warden.Tool{low, high, critical, off})
	none := warden.Lockdown{}
	full := warden.Lockdown{Active: true, Reason: "incident 7"}
	fromHigh := warden.Lockdown{Active: true, MinRisk: warden.RiskHigh, Reason: "incident 8"}
	lifted := warden.Lockdown{Active: false, MinRisk: warden.RiskLow, Reason: "lifted"}

	tests := []struct {
		name    string
		agent   string
		epoch   int64
		tool    *warden.Tool
		lock    warden.Lockdown
		reason  string
		message string // a prefix of the message
	}{
		{"active, its epoch, a tool", "active", 3, low, none, "", ""},
		{"active, the agent alone", "active", 3, nil, none, "", ""},
		{"active, no expiry", "forever", 1, low, none, "", ""},
		{"unknown agent", "nobody", 0, low, none, warden.ReasonAgentInactive, "agent not found"},
		{"expired at the instant", "expired", 3, low, none, warden.ReasonAgentInactive, "agent identity expired"},
		{"suspended", "suspended", 3, low, none, warden.ReasonAgentInactive, "agent is suspended"},
		{"killed", "killed", 4, low, none, warden.ReasonAgentInactive, "agent is killed"},
		{"killed, an old epoch", "killed", 3, low, none, warden.ReasonAgentInactive, "agent is killed"},
		{"a status warden does not know", "odd", 3, low, none, warden.ReasonAgentInactive, "agent is not active"},
		{"older epoch", "active", 2, low, none, warden.ReasonStaleEpoch, "token from another epoch"},
		{"newer epoch", "active", 4, low, none, warden.ReasonStaleEpoch, "token from another epoch"},
		{"epoch zero", "active", 0, nil, none, warden.ReasonStaleEpoch, "token from another epoch"},
		{"full lockdown, a tool", "active", 3, low, full, warden.ReasonLockdown, "lockdown in force: incident 7"},
		{"full lockdown, the agent alone", "active", 3, nil, full, warden.ReasonLockdown, "lockdown in force: incident 7"},
		{"lockdown from high, a low tool", "active", 3, low, fromHigh, "", ""},
		{"lockdown from high, a high tool", "active", 3, high, fromHigh, warden.ReasonLockdown, "lockdown in force: incident 8"},
		{"lockdown from high, a critical tool", "active", 3, critical, fromHigh, warden.ReasonLockdown, "lockdown in force: incident 8"},
		{"lockdown from high, the agent alone", "active", 3, nil, fromHigh, warden.ReasonLockdown, "lockdown in force"},
		{"a lifted lockdown", "active", 3, critical, lifted, "", ""},
		{"disabled tool", "active", 3, off, none, warden.ReasonToolDisabled, "tool github is disabled"},
		{"disabled tool, stale epoch first", "active", 2, off, none, warden.ReasonStaleEpoch, ""},
		{"disabled tool, lockdown first", "active", 3, off, full, warden.ReasonLockdown, ""},
		{"killed agent in a lockdown: the agent first", "killed", 4, off, full, warden.ReasonAgentInactive, "agent is killed"},
		{"suspended agent, stale epoch: the agent first", "suspended", 1, low, none, warden.ReasonAgentInactive, "agent is suspended"},
		// A tool is disabled by name: another tool of the same name and risk in the call is
		// disabled too, whatever the registry's copy says.
		{"disabled by name", "active", 3, &warden.Tool{Name: "github", Risk: warden.RiskLow}, none, warden.ReasonToolDisabled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.SetLockdown(st.Ticket(), tt.lock)
			reason, msg := st.Load().Check(tt.agent, tt.epoch, tt.tool, now)
			if reason != tt.reason || !strings.HasPrefix(msg, tt.message) || (reason == "") != (msg == "") {
				t.Errorf("Check = %q, %q; want %q, %q…", reason, msg, tt.reason, tt.message)
			}
		})
	}
}

// A published snapshot never changes: a reader holding one sees the state of its moment, and
// the next Load sees every change.
func TestSnapshotIsImmutable(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := NewState()
	if reason, _ := st.Load().Check("a", 1, nil, now); reason != warden.ReasonAgentInactive {
		t.Fatalf("a new state lets an unknown agent act: %q", reason)
	}
	st.ObserveAgent(&warden.Agent{ID: "a", Status: warden.AgentActive, Epoch: 1, UpdatedAt: now})
	before := st.Load()

	st.ObserveAgent(&warden.Agent{ID: "a", Status: warden.AgentKilled, Epoch: 2, UpdatedAt: now})
	st.SetLockdown(st.Ticket(), warden.Lockdown{Active: true, Reason: "r"})
	st.SetTools(st.Ticket(), []*warden.Tool{{Name: "t", Disabled: true}})
	st.SetQuarantined(st.Ticket(), []*warden.Quarantine{{Digest: "sha256:x"}})
	st.ObserveAgent(&warden.Agent{ID: "b", Status: warden.AgentActive, Epoch: 1})

	if reason, _ := before.Check("a", 1, &warden.Tool{Name: "t"}, now); reason != "" {
		t.Errorf("the earlier snapshot changed: %q", reason)
	}
	if before.Lockdown().Active || before.ToolDisabled("t") || before.Quarantined("sha256:x") {
		t.Error("the earlier snapshot sees later changes")
	}
	if _, ok := before.Agent("b"); ok {
		t.Error("the earlier snapshot sees a later agent")
	}
	after := st.Load()
	if reason, _ := after.Check("a", 2, nil, now); reason != warden.ReasonAgentInactive {
		t.Errorf("the kill is not in the new snapshot: %q", reason)
	}
	if !after.Lockdown().Active || !after.ToolDisabled("t") || !after.Quarantined("sha256:x") {
		t.Error("the new snapshot misses a change")
	}
	if a, ok := after.Agent("a"); !ok || a.Status != warden.AgentKilled || a.Epoch != 2 {
		t.Errorf("agent a in the new snapshot: %+v", a)
	}
}

// Readers take no lock while writers swap: run with -race. Every snapshot a reader loads is
// whole: ten agents a load publishes together are all of one load, never some of the one
// before.
func TestStateSwapUnderConcurrentReaders(t *testing.T) {
	t.Parallel()
	st := NewState()
	agents := func(epoch int64) []*warden.Agent {
		var list []*warden.Agent
		for i := range 10 {
			list = append(list, &warden.Agent{ID: fmt.Sprint("a", i), Status: warden.AgentActive, Epoch: epoch})
		}
		return list
	}
	load := func(epoch int64) {
		if err := st.LoadAgents(context.Background(), func(context.Context) ([]*warden.Agent, error) { return agents(epoch), nil }); err != nil {
			t.Error(err)
		}
	}
	load(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := st.Load()
				first, _ := snap.Agent("a0")
				for i := range 10 {
					if a, ok := snap.Agent(fmt.Sprint("a", i)); !ok || a.Epoch != first.Epoch {
						errs <- fmt.Sprintf("a snapshot mixes two loads: a0 in epoch %d, a%d in %d", first.Epoch, i, a.Epoch)
						return
					}
				}
				_ = snap.Lockdown()
				_ = snap.ToolDisabled("t")
			}
		})
	}
	for i := range 200 {
		load(int64(i + 2))
		st.SetLockdown(st.Ticket(), warden.Lockdown{Active: i%2 == 0, Reason: "flip"})
		st.SetTools(st.Ticket(), []*warden.Tool{{Name: "t", Disabled: i%3 == 0}})
		st.ObserveAgent(&warden.Agent{ID: "b", Status: warden.AgentActive, Epoch: int64(i)})
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st.ObserveAgent(&warden.Agent{ID: "a0", Status: warden.AgentKilled, Epoch: 500})
	if reason, _ := st.Load().Check("a0", 201, nil, time.Now()); reason != warden.ReasonAgentInactive {
		t.Fatalf("after the kill: %q", reason)
	}
}

// A state older than the one known never replaces it: a late observation of the agent from
// before its kill cannot bring its old epoch back.
func TestObserveAgentIgnoresOlderStates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := t0.Add(time.Minute)
	st := NewState()
	st.ObserveAgent(&warden.Agent{ID: "a", Status: warden.AgentKilled, Epoch: 2, UpdatedAt: t0})
	st.ObserveAgent(&warden.Agent{ID: "a", Status: warden.AgentActive, Epoch: 1, UpdatedAt: t0.Add(time.Hour)})
	if reason, _ := st.Load().Check("a", 1, nil, now); reason != warden.ReasonAgentInactive {
		t.Errorf("an older epoch came back: %q", reason)
	}
	// Within one epoch the later change wins: a suspension, then a resume, then the stale
	// suspension again.
	st.ObserveAgent(&warden.Agent{ID: "b", Status: warden.AgentSuspended, Epoch: 1, UpdatedAt: t0})
	st.ObserveAgent(&warden.Agent{ID: "b", Status: warden.AgentActive, Epoch: 1, UpdatedAt: t0.Add(time.Second)})
	st.ObserveAgent(&warden.Agent{ID: "b", Status: warden.AgentSuspended, Epoch: 1, UpdatedAt: t0})
	if reason, _ := st.Load().Check("b", 1, nil, now); reason != "" {
		t.Errorf("a stale suspension replaced the resume: %q", reason)
	}
	st.ObserveAgent(nil)
	st.ObserveAgent(&warden.Agent{})
	if _, ok := st.Load().Agent(""); ok {
		t.Error("an agent without an ID was recorded")
	}
	st.ForgetAgent("b")
	if reason, _ := st.Load().Check("b", 1, nil, now); reason != warden.ReasonAgentInactive {
		t.Errorf("a deleted agent may act: %q", reason)
	}
}

// LoadAgents replaces the agents with the store's, except those changed here while it read:
// a kill observed during the load is not undone by the store's older view, and an agent
// forgotten during the load stays forgotten.
func TestLoadAgentsKeepsChangesMadeDuringTheLoad(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := NewState()
	st.ObserveAgent(&warden.Agent{ID: "gone", Status: warden.AgentActive, Epoch: 1})
	err := st.LoadAgents(context.Background(), func(context.Context) ([]*warden.Agent, error) {
		st.ObserveAgent(&warden.Agent{ID: "a", Status: warden.AgentKilled, Epoch: 2, UpdatedAt: now})
		st.ForgetAgent("d")
		return []*warden.Agent{
			{ID: "a", Status: warden.AgentActive, Epoch: 1, UpdatedAt: now.Add(-time.Minute)},
			{ID: "c", Status: warden.AgentActive, Epoch: 1},
			{ID: "d", Status: warden.AgentActive, Epoch: 1},
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	snap := st.Load()
	if reason, _ := snap.Check("a", 1, nil, now); reason != warden.ReasonAgentInactive {
		t.Errorf("the load undid a kill made while it read: %q", reason)
	}
	if reason, _ := snap.Check("c", 1, nil, now); reason != "" {
		t.Errorf("a stored agent was not loaded: %q", reason)
	}
	if _, ok := snap.Agent("d"); ok {
		t.Error("an agent deleted during the load came back")
	}
	if _, ok := snap.Agent("gone"); ok {
		t.Error("an agent no longer in the store is still known")
	}
	// A failed load changes nothing.
	if err := st.LoadAgents(context.Background(), func(context.Context) ([]*warden.Agent, error) {
		return nil, errors.New("database is locked")
	}); err == nil {
		t.Fatal("a failed load reported success")
	}
	if st.Load() != snap {
		t.Error("a failed load published a snapshot")
	}
}

// TestStaleReadIsNotInstalled: a reload that read the store before a change, and installs
// after the change was installed, does not put the old state back — not the lockdown a lift
// ended, not a tool's enabled flag a disable changed, not a quarantine's absence.
func TestStaleReadIsNotInstalled(t *testing.T) {
	st := NewState()
	stale := st.Ticket() // a slow reload begins reading: lockdown on, tool enabled, nothing quarantined
	// A change is written and installed meanwhile: lockdown lifted, tool disabled, digest quarantined.
	st.SetLockdown(st.Ticket(), warden.Lockdown{Reason: "lifted"})
	st.SetTools(st.Ticket(), []*warden.Tool{{Name: "payments", Disabled: true}})
	st.SetQuarantined(st.Ticket(), []*warden.Quarantine{{Digest: "sha256:bad"}})
	// The slow reload installs what it read before.
	st.SetLockdown(stale, warden.Lockdown{Active: true, Reason: "incident"})
	st.SetTools(stale, []*warden.Tool{{Name: "payments"}})
	st.SetQuarantined(stale, nil)
	snap := st.Load()
	if snap.Lockdown().Active {
		t.Error("a stale read put a lifted lockdown back in force")
	}
	if !snap.ToolDisabled("payments") {
		t.Error("a stale read enabled a disabled tool")
	}
	if !snap.Quarantined("sha256:bad") {
		t.Error("a stale read lifted a quarantine")
	}
	// A read that began later still installs.
	st.SetLockdown(st.Ticket(), warden.Lockdown{Active: true, Reason: "again"})
	if !st.Load().Lockdown().Active {
		t.Error("a fresh read was not installed")
	}
}
