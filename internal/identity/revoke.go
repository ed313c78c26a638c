package identity

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
)

// revocationSet maps a revoked token's jti to the token's expiry. Like the agent snapshot it is
// immutable once published: revocations are rare, verifications are not.
type revocationSet map[string]time.Time

func (r *revocationSet) contains(jti string) bool {
	_, ok := (*r)[jti]
	return ok
}

// Revoke revokes an access token (RFC 7009) on this replica at once and, through the store and
// the fleet's announcement, on the others. by is the agent that asks, or "" for an admin, who may
// revoke any token. It returns the claims of the revoked token, or nil claims and a nil error
// when there is nothing to revoke: the token is invalid, already expired, or belongs to
// another agent (RFC 7009 answers 200 in every such case, so a caller learns nothing).
func (s *Service) Revoke(ctx context.Context, token string, by string) (*warden.Claims, error) {
	now := s.cfg.Clock.Now()
	e, err := s.verifySigned(token, s.keys.Load(), now)
	if err != nil {
		s.log.Debug("revocation of an invalid token ignored", "reason", warden.ErrorMessage(err))
		return nil, nil
	}
	c := &e.claims // e is this call's own: it is not cached
	if by != "" && c.ClientID != by {
		s.log.Info("revocation of another agent's token ignored", "agent", by, "token_agent", c.ClientID, "jti", c.ID)
		return nil, nil
	}
	if !now.Before(c.ExpiresAt.Add(s.cfg.ClockSkew)) {
		return nil, nil
	}
	// Memory first: if the store write fails, this replica refuses the token all the same.
	s.addRevocations(map[string]time.Time{c.ID: c.ExpiresAt})
	err = s.store.RevokeToken(ctx, &warden.RevokedToken{ID: c.ID, AgentID: c.ClientID, ExpiresAt: c.ExpiresAt, RevokedAt: now.UTC()})
	if err != nil {
		return nil, fmt.Errorf("identity: record revocation: %w", err)
	}
	s.announce(ctx, fleet.TopicRevocation, c.ID)
	return c, nil
}

func (s *Service) addRevocations(add map[string]time.Time) {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	cur := *s.revoked.Load()
	var next revocationSet
	for jti, exp := range add {
		if _, ok := cur[jti]; ok {
			continue
		}
		if next == nil {
			next = maps.Clone(cur)
			if next == nil {
				next = revocationSet{}
			}
		}
		next[jti] = exp
	}
	if next != nil {
		s.revoked.Store(&next)
	}
}

// loadRevocations adds the revocations recorded by any replica. It never removes one: only
// expiry does (pruneRevocations).
func (s *Service) loadRevocations(ctx context.Context) error {
	list, err := s.store.RevokedTokens(ctx, s.cfg.Clock.Now().Add(-s.cfg.ClockSkew))
	if err != nil {
		return err
	}
	add := make(map[string]time.Time, len(list))
	for _, r := range list {
		add[r.ID] = r.ExpiresAt
	}
	s.addRevocations(add)
	return nil
}

// pruneRevocations forgets revocations of tokens that expired before t: they fail the expiry
// check anyway.
func (s *Service) pruneRevocations(t time.Time) {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	cur := *s.revoked.Load()
	expired := func(_ string, exp time.Time) bool { return exp.Before(t) }
	for jti, exp := range cur {
		if expired(jti, exp) {
			next := maps.Clone(cur)
			maps.DeleteFunc(next, expired)
			s.revoked.Store(&next)
			return
		}
	}
}
