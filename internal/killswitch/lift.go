package killswitch

import (
	"context"

	"github.com/wardenhq/warden"
)

// quarantineLifter is the store method a lift needs. It is asserted rather than added to Store
// so that this file stands apart from the rest of the service; a store without it cannot lift,
// and says so.
type quarantineLifter interface {
	LiftQuarantine(ctx context.Context, digest string) (*warden.Quarantine, error)
}

// Quarantines lists every quarantined digest, ordered by digest.
func (s *Service) Quarantines(ctx context.Context) ([]*warden.Quarantine, error) {
	return s.Store.Quarantined(ctx)
}

// LiftQuarantine puts a digest back into use: the store forgets it and this replica's kill state
// is reloaded before it returns (others on their next reload). It returns the record lifted.
func (s *Service) LiftQuarantine(ctx context.Context, p *warden.Principal, digest, reason string) (*warden.Quarantine, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if !validDigest(digest) {
		return nil, warden.Errorf(warden.EInvalid, "digest %q: want sha256:<64 hex digits>", digest)
	}
	l, ok := s.Store.(quarantineLifter)
	if !ok {
		return nil, warden.Errorf(warden.EInternal, "this store cannot lift a quarantine")
	}
	q, err := l.LiftQuarantine(ctx, digest)
	if err != nil {
		return nil, err
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return q, s.record(ctx, p, warden.EventQuarantineLift, "skill:"+digest, reason, nil)
}
