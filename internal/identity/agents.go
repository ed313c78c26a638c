package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"maps"
	"time"

	"github.com/wardenhq/warden"
)

// agentSnapshot maps agent ID to what VerifyToken needs to know about the agent. It is never
// changed once published; writers copy it.
type agentSnapshot map[string]agentState

type agentState struct {
	status    warden.AgentStatus
	epoch     int64
	expiresAt time.Time
	updatedAt time.Time
	// agent is a private copy of the whole record, for enforcement points that judge the agent
	// by its owner and labels; nobody changes it once it is in a snapshot.
	agent *warden.Agent
}

func stateOf(a *warden.Agent) agentState {
	cp := *a
	cp.SecretHash = nil
	cp.Labels = maps.Clone(a.Labels)
	return agentState{status: a.Status, epoch: a.Epoch, expiresAt: a.ExpiresAt, updatedAt: a.UpdatedAt, agent: &cp}
}

// same reports whether two states say the same about the agent.
func (st agentState) same(other agentState) bool {
	return st.status == other.status && st.epoch == other.epoch && st.expiresAt.Equal(other.expiresAt) &&
		st.updatedAt.Equal(other.updatedAt)
}

// Agent returns this replica's current view of an agent: the record as last written or loaded,
// without its secret hash. The caller must not change it.
func (s *Service) Agent(id string) (*warden.Agent, bool) {
	st, ok := (*s.agents.Load())[id]
	if !ok {
		return nil, false
	}
	return st.agent, true
}

// olderThan reports whether st is a state the agent had before other. Epochs only rise, so a
// lower epoch is always older; UpdatedAt orders changes within one epoch (a renewal, a resume).
func (st agentState) olderThan(other agentState) bool {
	if st.epoch != other.epoch {
		return st.epoch < other.epoch
	}
	return st.updatedAt.Before(other.updatedAt)
}

// refusal returns why an agent in state st may not hold live tokens at now, or nil.
func (st agentState) refusal(now time.Time) error {
	switch st.status {
	case warden.AgentActive:
	case warden.AgentSuspended:
		return unauthenticated("agent is suspended", nil)
	case warden.AgentKilled:
		return unauthenticated("agent is killed", nil)
	default:
		return unauthenticated("agent is not active", nil)
	}
	if !st.expiresAt.IsZero() && !now.Before(st.expiresAt) {
		return unauthenticated("agent identity expired; renew it", nil)
	}
	return nil
}

// ObserveAgent makes a change the caller has just written to the store visible to this
// replica's token checks at once, instead of at the next refresh. The agent service calls it
// after every write. A state older than the one already known is ignored, so a late call
// cannot bring back a token that a newer epoch killed.
func (s *Service) ObserveAgent(a *warden.Agent) {
	if a == nil || a.ID == "" {
		return
	}
	st := stateOf(a)
	s.agentsMu.Lock()
	defer s.agentsMu.Unlock()
	cur := *s.agents.Load()
	if old, ok := cur[a.ID]; ok && st.olderThan(old) {
		return
	}
	next := maps.Clone(cur)
	next[a.ID] = st
	s.agents.Store(&next)
	if s.touched != nil {
		s.touched[a.ID] = struct{}{}
	}
}

// ForgetAgent drops a deleted agent, so its tokens stop verifying at once.
func (s *Service) ForgetAgent(id string) {
	s.agentsMu.Lock()
	defer s.agentsMu.Unlock()
	cur := *s.agents.Load()
	if _, ok := cur[id]; ok {
		next := maps.Clone(cur)
		delete(next, id)
		s.agents.Store(&next)
	}
	if s.touched != nil {
		s.touched[id] = struct{}{}
	}
}

// loadAgents replaces the snapshot with the store's view, except for agents this replica
// changed while the store was being read: for those the local change may be newer.
func (s *Service) loadAgents(ctx context.Context) error {
	s.agentsMu.Lock()
	s.touched = map[string]struct{}{}
	s.agentsMu.Unlock()

	list, err := s.store.Agents(ctx)

	s.agentsMu.Lock()
	defer s.agentsMu.Unlock()
	touched := s.touched
	s.touched = nil
	if err != nil {
		return err
	}
	next := make(agentSnapshot, len(list))
	for _, a := range list {
		next[a.ID] = stateOf(a)
	}
	cur := *s.agents.Load()
	for id := range touched {
		local, known := cur[id]
		loaded, stored := next[id]
		switch {
		case !known:
			delete(next, id)
		case !stored || loaded.olderThan(local):
			next[id] = local
		}
	}
	s.agents.Store(&next)
	return nil
}

// badClient does not say whether the client exists: that would let anyone enumerate agents.
func badClient() error { return unauthenticated("invalid client credentials", nil) }

// unknownClientHash is compared against when the client does not exist, so that an unknown
// client costs the same hashing and comparison as a wrong secret.
var unknownClientHash = sha256.Sum256([]byte("warden: no such client"))

// AuthenticateClient checks an agent's client credentials (client_id is the agent ID). A wrong
// ID or secret gets the same refusal; the agent's status is told only to a caller who proved
// the secret, so it is not a way to probe for agents.
func (s *Service) AuthenticateClient(ctx context.Context, clientID, secret string) (*warden.Agent, error) {
	if clientID == "" || secret == "" {
		return nil, badClient()
	}
	hash := HashSecret(secret)
	a, err := s.store.AgentByID(ctx, clientID)
	if warden.ErrorCode(err) == warden.ENotFound {
		subtle.ConstantTimeCompare(hash, unknownClientHash[:])
		return nil, badClient()
	}
	if err != nil {
		return nil, fmt.Errorf("identity: look up client: %w", err)
	}
	if subtle.ConstantTimeCompare(hash, a.SecretHash) != 1 {
		return nil, badClient()
	}
	if err := stateOf(a).refusal(s.cfg.Now()); err != nil {
		return nil, err
	}
	return a, nil
}
