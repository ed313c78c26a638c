// Package killswitch takes an agent's power away at once and for good: the kill state every
// enforcement point checks first, and the kill, lockdown and restore that change it.
package killswitch

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// AgentState is what the kill state knows of one agent.
type AgentState struct {
	Status    warden.AgentStatus
	Epoch     int64
	ExpiresAt time.Time
	UpdatedAt time.Time
	// Agent is a private copy of the whole record without its secret hash, for enforcement
	// points that judge the agent by its owner and labels. Nobody changes it.
	Agent *warden.Agent
}

func stateOf(a *warden.Agent) AgentState {
	cp := *a
	cp.SecretHash = nil
	cp.Labels = maps.Clone(a.Labels)
	return AgentState{Status: a.Status, Epoch: a.Epoch, ExpiresAt: a.ExpiresAt, UpdatedAt: a.UpdatedAt, Agent: &cp}
}

// olderThan reports whether st is a state the agent had before other. Epochs only rise, so a
// lower epoch is always older; UpdatedAt orders changes within one epoch (a renewal, a resume).
func (st AgentState) olderThan(other AgentState) bool {
	if st.Epoch != other.Epoch {
		return st.Epoch < other.Epoch
	}
	return st.UpdatedAt.Before(other.UpdatedAt)
}

// Refusal says why an agent in state st may not act at now, or "" if it may (warden.ActRefusal).
func (st AgentState) Refusal(now time.Time) string {
	return warden.ActRefusal(st.Status, st.ExpiresAt, now)
}

// Snapshot is the kill state at one moment: every agent's status and epoch, the disabled
// tools, the quarantined digests and the lockdown. It is never changed once published.
type Snapshot struct {
	agents      map[string]AgentState
	disabled    map[string]bool
	tools       map[string]bool // every registered tool; nil until the tools are first loaded
	quarantined map[string]bool
	lockdown    warden.Lockdown
}

// Agent returns the state of an agent by ID.
func (s *Snapshot) Agent(id string) (AgentState, bool) {
	st, ok := s.agents[id]
	return st, ok
}

// ToolDisabled reports whether a tool is disabled for every agent.
func (s *Snapshot) ToolDisabled(name string) bool { return s.disabled[name] }

// Quarantined reports whether a digest (a skill version, a server package, a tool manifest) is
// quarantined.
func (s *Snapshot) Quarantined(digest string) bool { return s.quarantined[digest] }

// Lockdown returns the lockdown in force.
func (s *Snapshot) Lockdown() warden.Lockdown { return s.lockdown }

// Check is the first step of every call: may the agent, holding a token of epoch, call tool at
// now? It returns a reason code and a message, or "" when the call may go on. A nil tool checks
// the agent alone. A tool whose server package is quarantined is refused here, so on every path
// and in every listing that checks the kill state.
func (s *Snapshot) Check(agentID string, epoch int64, tool *warden.Tool, now time.Time) (reason, message string) {
	st, ok := s.agents[agentID]
	if !ok {
		return warden.ReasonAgentInactive, "agent not found"
	}
	if msg := st.Refusal(now); msg != "" {
		return warden.ReasonAgentInactive, msg
	}
	if epoch != st.Epoch {
		return warden.ReasonStaleEpoch, "token from another epoch of the agent"
	}
	if s.lockdown.Covers(tool) {
		return warden.ReasonLockdown, "lockdown in force: " + s.lockdown.Reason
	}
	if tool != nil && s.disabled[tool.Name] {
		return warden.ReasonToolDisabled, "tool " + tool.Name + " is disabled"
	}
	if tool != nil && tool.Package != nil && s.quarantined[tool.Package.Digest] {
		return warden.ReasonQuarantined, "the package " + tool.Package.Digest + " of tool " + tool.Name + " is quarantined"
	}
	return "", ""
}

// State holds the current Snapshot. Readers take no lock; writers copy and swap.
type State struct {
	snap atomic.Pointer[Snapshot]
	mu   sync.Mutex // serializes writers
	// touched records agents changed while LoadAgents was reading the store, so the load does
	// not overwrite a change it could not have seen. Guarded by mu; nil when no load is reading.
	touched map[string]struct{}
	// Tickets order the installs of what is read from the store whole (tools, lockdown,
	// quarantine): a reader takes a ticket before it reads, and its install is dropped when an
	// install of a read that began later came first. Without them a slow reload that read the
	// store before a change could put the old state back after the change was installed — a
	// lifted lockdown back in force, a disabled tool enabled — until the next reload.
	tickets                            atomic.Uint64
	toolsAt, lockdownAt, quarantinedAt uint64 // the ticket of each part's install; guarded by mu
}

// NewState returns an empty kill state: no agent may act until agents are loaded.
func NewState() *State {
	st := &State{}
	st.snap.Store(&Snapshot{agents: map[string]AgentState{}, disabled: map[string]bool{}, quarantined: map[string]bool{}})
	return st
}

// Load returns the current snapshot.
func (st *State) Load() *Snapshot { return st.snap.Load() }

// update publishes a copy of the current snapshot changed by fn. The caller holds mu.
func (st *State) update(fn func(next *Snapshot)) {
	cur := st.snap.Load()
	next := *cur
	fn(&next)
	st.snap.Store(&next)
}

// ObserveAgent makes a change just written to the store visible at once. A state older than the
// one already known is ignored, so a late call cannot bring back a token a newer epoch killed.
func (st *State) ObserveAgent(a *warden.Agent) {
	if a == nil || a.ID == "" {
		return
	}
	s := stateOf(a)
	st.mu.Lock()
	defer st.mu.Unlock()
	if old, ok := st.snap.Load().agents[a.ID]; ok && s.olderThan(old) {
		return
	}
	st.update(func(next *Snapshot) {
		next.agents = maps.Clone(next.agents)
		next.agents[a.ID] = s
	})
	if st.touched != nil {
		st.touched[a.ID] = struct{}{}
	}
}

// ForgetAgent drops a deleted agent.
func (st *State) ForgetAgent(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.snap.Load().agents[id]; ok {
		st.update(func(next *Snapshot) {
			next.agents = maps.Clone(next.agents)
			delete(next.agents, id)
		})
	}
	if st.touched != nil {
		st.touched[id] = struct{}{}
	}
}

// LoadAgents replaces the agents with the store's view, except for agents changed on this
// replica while the store was being read: for those the local change may be newer.
func (st *State) LoadAgents(ctx context.Context, list func(context.Context) ([]*warden.Agent, error)) error {
	st.mu.Lock()
	st.touched = map[string]struct{}{}
	st.mu.Unlock()

	agents, err := list(ctx)

	st.mu.Lock()
	defer st.mu.Unlock()
	touched := st.touched
	st.touched = nil
	if err != nil {
		return err
	}
	loaded := make(map[string]AgentState, len(agents))
	for _, a := range agents {
		loaded[a.ID] = stateOf(a)
	}
	cur := st.snap.Load().agents
	for id := range touched {
		local, known := cur[id]
		fromStore, stored := loaded[id]
		switch {
		case !known:
			delete(loaded, id)
		case !stored || fromStore.olderThan(local):
			loaded[id] = local
		}
	}
	st.update(func(next *Snapshot) { next.agents = loaded })
	return nil
}

// Ticket is taken before reading the tools, the lockdown or the quarantined digests from the
// store, and handed to the install that follows (SetTools, SetLockdown, SetQuarantined).
func (st *State) Ticket() uint64 { return st.tickets.Add(1) }

// fresh reports whether an install of a read with ticket t may replace the one made at *at,
// and records it. The caller holds mu.
func fresh(at *uint64, t uint64) bool {
	if t < *at {
		return false
	}
	*at = t
	return true
}

// SetTools records which tools are registered and which of them disabled, as read from the
// store with ticket t.
func (st *State) SetTools(t uint64, tools []*warden.Tool) {
	disabled := map[string]bool{}
	known := make(map[string]bool, len(tools))
	for _, tool := range tools {
		known[tool.Name] = true
		if tool.Disabled {
			disabled[tool.Name] = true
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	cur := st.snap.Load()
	if !fresh(&st.toolsAt, t) || maps.Equal(disabled, cur.disabled) && cur.tools != nil && maps.Equal(known, cur.tools) {
		return
	}
	st.update(func(next *Snapshot) { next.disabled, next.tools = disabled, known })
}

// SetLockdown records the lockdown in force, as read (or written) with ticket t.
func (st *State) SetLockdown(t uint64, l warden.Lockdown) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !fresh(&st.lockdownAt, t) || st.snap.Load().lockdown == l {
		return
	}
	st.update(func(next *Snapshot) { next.lockdown = l })
}

// SetQuarantined records the quarantined digests, as read from the store with ticket t.
func (st *State) SetQuarantined(t uint64, qs []*warden.Quarantine) {
	set := make(map[string]bool, len(qs))
	for _, q := range qs {
		set[q.Digest] = true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if !fresh(&st.quarantinedAt, t) {
		return
	}
	st.update(func(next *Snapshot) { next.quarantined = set })
}
