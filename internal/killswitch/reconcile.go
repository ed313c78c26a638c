package killswitch

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
)

// Artifacts stops what runs from a quarantined digest on this replica (skills, server
// packages: issue 15 enforces quarantine). The reconciler calls it for every digest newly
// quarantined; nil means nothing on this replica runs artifacts by digest.
type Artifacts interface {
	StopDigest(ctx context.Context, digest, reason string) int
}

// terminated is what one reconcile ended on this replica.
type terminated struct {
	calls, streams, approvals, sandboxes, artifacts int
}

func (t terminated) applied() fleet.Applied {
	return fleet.Applied{CallsCancelled: t.calls + t.artifacts, SessionsClosed: t.streams, SandboxesStopped: t.sandboxes}
}

// Reconcile ends on this replica what the current kill state forbids and the state reconciled
// last allowed: the calls, MCP sessions, approvals and sandboxes of agents newly killed,
// suspended, deleted or given a new epoch; everything a new or wider lockdown covers; the calls
// to tools newly disabled; what runs from digests newly quarantined, the sandboxes that mounted a
// skill of such a digest among it. Whoever changed the state —
// a command here, another replica's change applied by the Handler, the safety-net poll — this is
// the one way termination happens, and each change is terminated once.
func (s *Service) Reconcile(ctx context.Context) fleet.Applied {
	s.reconcileMu.Lock()
	defer s.reconcileMu.Unlock()
	return s.reconcileLocked(ctx).applied()
}

// reconcileLocked is Reconcile for a caller that holds reconcileMu: a local command, which
// holds it from before its store write, so that no background pass can end (and count) what
// the command's change forbids before the command does.
func (s *Service) reconcileLocked(ctx context.Context) terminated {
	cur := s.State.Load()
	prev := s.reconciled
	if prev == nil {
		prev = emptySnapshot()
	}
	s.reconciled = cur
	var t terminated
	if prev == cur {
		return t // nothing was published since the last pass
	}
	for _, e := range agentsToEnd(prev, cur) {
		s.terminateAgent(ctx, e.id, e.reason, &t)
	}
	if l := cur.lockdown; l.Active && l != prev.lockdown {
		s.terminateLockdown(ctx, cur, l, &t)
	}
	for _, name := range slices.Sorted(maps.Keys(cur.disabled)) {
		if !prev.disabled[name] {
			t.calls += s.Calls.CancelTool(name)
		}
	}
	// A tool removed (on this replica or another): its calls in flight end like a disabled
	// tool's. Before the tools were first loaded nothing is known to be removed.
	if prev.tools != nil && cur.tools != nil {
		for _, name := range slices.Sorted(maps.Keys(prev.tools)) {
			if !cur.tools[name] {
				t.calls += s.Calls.CancelTool(name)
			}
		}
	}
	for _, digest := range slices.Sorted(maps.Keys(cur.quarantined)) {
		if prev.quarantined[digest] {
			continue
		}
		if s.Artifacts != nil {
			t.artifacts += s.Artifacts.StopDigest(ctx, digest, "quarantined")
		}
		if s.Runners != nil {
			t.sandboxes += s.Runners.TerminateDigest(digest, "a skill it mounted is quarantined: "+digest)
		}
	}
	return t
}

type agentEnd struct{ id, reason string }

// agentsToEnd lists the agents whose running work prev allowed and cur forbids, by ID.
func agentsToEnd(prev, cur *Snapshot) []agentEnd {
	var out []agentEnd
	for id := range prev.agents {
		if _, ok := cur.agents[id]; !ok {
			out = append(out, agentEnd{id, "agent deleted"})
		}
	}
	for id, now := range cur.agents {
		before, known := prev.agents[id]
		if reason := newlyRefused(before, known, now); reason != "" {
			out = append(out, agentEnd{id, reason})
		}
	}
	slices.SortFunc(out, func(a, b agentEnd) int { return strings.Compare(a.id, b.id) })
	return out
}

func emptySnapshot() *Snapshot {
	return &Snapshot{agents: map[string]AgentState{}, disabled: map[string]bool{}, quarantined: map[string]bool{}}
}

// newlyRefused says why what an agent has running must end, or "" if nothing must: it is now
// refused (killed, suspended) and was not, or was in another state; or the epoch of an active
// agent changed (a rotated secret), which kills the tokens its running work was authorised with.
func newlyRefused(before AgentState, known bool, now AgentState) string {
	if now.Status != warden.AgentActive {
		if known && before.Status == now.Status && before.Epoch == now.Epoch {
			return ""
		}
		return "agent " + string(now.Status) + statusReason(now)
	}
	// A restore also raises the epoch, but nothing of a killed agent ran under the old one.
	if known && before.Epoch != now.Epoch && before.Status == warden.AgentActive {
		return "agent's credentials changed (new epoch)"
	}
	return ""
}

func statusReason(st AgentState) string {
	if st.Agent == nil || st.Agent.StatusReason == "" {
		return ""
	}
	return ": " + st.Agent.StatusReason
}

// terminateAgent ends what an agent has running on this replica: calls, streams, approvals,
// sandboxes.
func (s *Service) terminateAgent(ctx context.Context, agentID, reason string, t *terminated) {
	t.calls += s.Calls.CancelAgent(agentID)
	if s.Sessions != nil {
		t.streams += s.Sessions.CloseAgentSessions(agentID)
	}
	if s.Approvals != nil {
		n, err := s.Approvals.RejectAgent(ctx, agentID, reason)
		if err != nil {
			s.Log.Error("rejecting the agent's pending approvals", "agent", agentID, "err", err)
		}
		t.approvals += n
	}
	if s.Runners != nil {
		t.sandboxes += s.Runners.Terminate(func(agent string) bool { return agent == agentID }, reason)
	}
}

// terminateLockdown ends what a lockdown covers on this replica: everything for a full
// lockdown; the calls to the tools it covers for one from a risk up.
func (s *Service) terminateLockdown(ctx context.Context, snap *Snapshot, l warden.Lockdown, t *terminated) {
	reason := "lockdown: " + l.Reason
	if l.MinRisk == "" {
		t.calls += s.Calls.CancelAll()
		if s.Sessions != nil {
			for _, id := range slices.Sorted(maps.Keys(snap.agents)) {
				t.streams += s.Sessions.CloseAgentSessions(id)
			}
		}
		if s.Approvals != nil {
			n, err := s.Approvals.RejectAll(ctx, reason)
			if err != nil {
				s.Log.Error("rejecting pending approvals in a lockdown", "err", err)
			}
			t.approvals += n
		}
		if s.Runners != nil {
			t.sandboxes += s.Runners.Terminate(func(string) bool { return true }, reason)
		}
		return
	}
	tools, err := s.Store.Tools(ctx)
	if err != nil {
		s.Log.Error("listing tools in a lockdown", "err", err)
		return
	}
	for _, tool := range tools {
		if l.Covers(tool) {
			t.calls += s.Calls.CancelTool(tool.Name)
		}
	}
}
