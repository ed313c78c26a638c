package identity_test

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// fakeStore keeps agents, signing keys and revocations in memory with the semantics the domain
// interfaces document. It stands in for internal/sqlite until that store exists; every value
// is copied in and out, as a database would.
type fakeStore struct {
	mu      sync.Mutex
	agents  map[string]*warden.Agent // by ID
	keys    []*warden.SigningKey     // oldest first
	revoked map[string]*warden.RevokedToken
	// onAgents, when set, runs inside Agents after the list is read and before it is returned:
	// it lets a test change things while a refresh is between reading and publishing.
	onAgents func()
}

var (
	_ warden.AgentStore      = (*fakeStore)(nil)
	_ warden.KeyStore        = (*fakeStore)(nil)
	_ warden.RevocationStore = (*fakeStore)(nil)
	_ identity.Store         = (*fakeStore)(nil)
)

func newFakeStore() *fakeStore {
	return &fakeStore{agents: map[string]*warden.Agent{}, revoked: map[string]*warden.RevokedToken{}}
}

func copyAgent(a *warden.Agent) *warden.Agent {
	c := *a
	c.SecretHash = bytes.Clone(a.SecretHash)
	c.Labels = maps.Clone(a.Labels)
	return &c
}

func (s *fakeStore) byName(name string) *warden.Agent {
	for _, a := range s.agents {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func (s *fakeStore) CreateAgent(_ context.Context, a *warden.Agent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName(a.Name) != nil || s.agents[a.ID] != nil {
		return warden.Errorf(warden.EConflict, "agent %q exists", a.Name)
	}
	s.agents[a.ID] = copyAgent(a)
	return nil
}

func (s *fakeStore) Agent(_ context.Context, name string) (*warden.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byName(name); a != nil {
		return copyAgent(a), nil
	}
	return nil, warden.Errorf(warden.ENotFound, "agent %q not found", name)
}

func (s *fakeStore) AgentByID(_ context.Context, id string) (*warden.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.agents[id]; a != nil {
		return copyAgent(a), nil
	}
	return nil, warden.Errorf(warden.ENotFound, "agent not found")
}

func (s *fakeStore) Agents(_ context.Context) ([]*warden.Agent, error) {
	s.mu.Lock()
	out := make([]*warden.Agent, 0, len(s.agents))
	for _, a := range s.agents {
		out = append(out, copyAgent(a))
	}
	hook := s.onAgents
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *warden.Agent) int { return strings.Compare(a.Name, b.Name) })
	if hook != nil {
		hook()
	}
	return out, nil
}

func (s *fakeStore) UpdateAgent(_ context.Context, name string, fn func(a *warden.Agent) error) (*warden.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.byName(name)
	if cur == nil {
		return nil, warden.Errorf(warden.ENotFound, "agent %q not found", name)
	}
	next := copyAgent(cur)
	if err := fn(next); err != nil {
		return nil, err
	}
	s.agents[next.ID] = copyAgent(next)
	return next, nil
}

func (s *fakeStore) DeleteAgent(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byName(name)
	if a == nil {
		return warden.Errorf(warden.ENotFound, "agent %q not found", name)
	}
	delete(s.agents, a.ID)
	return nil
}

func copyKey(k *warden.SigningKey) *warden.SigningKey {
	c := *k
	c.Public = bytes.Clone(k.Public)
	c.Sealed = bytes.Clone(k.Sealed)
	return &c
}

func (s *fakeStore) CreateSigningKey(_ context.Context, k *warden.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.keys {
		if old.ID == k.ID {
			return warden.Errorf(warden.EConflict, "key %q exists", k.ID)
		}
		if old.RetiredAt.IsZero() {
			old.RetiredAt = k.CreatedAt
		}
	}
	s.keys = append(s.keys, copyKey(k))
	return nil
}

func (s *fakeStore) SigningKeys(_ context.Context) ([]*warden.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*warden.SigningKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = copyKey(k)
	}
	return out, nil
}

func (s *fakeStore) DeleteSigningKeysRetiredBefore(_ context.Context, t time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.keys)
	s.keys = slices.DeleteFunc(s.keys, func(k *warden.SigningKey) bool {
		return !k.RetiredAt.IsZero() && k.RetiredAt.Before(t)
	})
	return n - len(s.keys), nil
}

func (s *fakeStore) RevokeToken(_ context.Context, r *warden.RevokedToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.revoked[r.ID]; !ok {
		c := *r
		s.revoked[r.ID] = &c
	}
	return nil
}

func (s *fakeStore) RevokedTokens(_ context.Context, after time.Time) ([]*warden.RevokedToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*warden.RevokedToken
	for _, r := range s.revoked {
		if r.ExpiresAt.After(after) {
			c := *r
			out = append(out, &c)
		}
	}
	return out, nil
}

func (s *fakeStore) PruneRevokedTokens(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.revoked {
		if r.ExpiresAt.Before(before) {
			delete(s.revoked, id)
			n++
		}
	}
	return n, nil
}
