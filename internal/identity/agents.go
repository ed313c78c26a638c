package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"time"

	"github.com/wardenhq/warden"
)

// Agent returns this replica's current view of an agent: the record as last written or loaded,
// without its secret hash. The caller must not change it.
func (s *Service) Agent(id string) (*warden.Agent, bool) {
	st, ok := s.kill.Load().Agent(id)
	if !ok {
		return nil, false
	}
	return st.Agent, true
}

// ObserveAgent makes a change the caller has just written to the store visible to this
// replica's token checks at once, instead of at the next refresh. The agent service calls it
// after every write. A state older than the one already known is ignored, so a late call
// cannot bring back a token that a newer epoch killed.
func (s *Service) ObserveAgent(a *warden.Agent) { s.kill.ObserveAgent(a) }

// ForgetAgent drops a deleted agent, so its tokens stop verifying at once.
func (s *Service) ForgetAgent(id string) { s.kill.ForgetAgent(id) }

// loadAgents replaces the kill state's agents with the store's view.
func (s *Service) loadAgents(ctx context.Context) error {
	return s.kill.LoadAgents(ctx, s.store.Agents)
}

// refusal returns why the agent may not hold live tokens at now, or nil.
func refusal(a *warden.Agent, now time.Time) error {
	if msg := warden.ActRefusal(a.Status, a.ExpiresAt, now); msg != "" {
		return unauthenticated(msg, nil)
	}
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
	if err := refusal(a, s.cfg.Clock.Now()); err != nil {
		return nil, err
	}
	return a, nil
}

// ReloadAgents replaces the kill state's agents with the store's view: the safety-net poll
// and a replica whose fleet feed reconnected call it.
func (s *Service) ReloadAgents(ctx context.Context) error {
	if err := s.loadAgents(ctx); err != nil {
		return fmt.Errorf("identity: load agents: %w", err)
	}
	return nil
}

// ReloadAgent reads one agent, named by ID, from the store into the kill state: another
// replica announced a change to it. An agent no longer in the store is forgotten.
func (s *Service) ReloadAgent(ctx context.Context, id string) error {
	a, err := s.store.AgentByID(ctx, id)
	if warden.ErrorCode(err) == warden.ENotFound {
		s.kill.ForgetAgent(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("identity: load agent %s: %w", id, err)
	}
	s.kill.ObserveAgent(a)
	return nil
}
