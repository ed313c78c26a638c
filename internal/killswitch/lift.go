package killswitch

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
)

// Quarantines lists every quarantined digest, ordered by digest.
func (s *Service) Quarantines(ctx context.Context) ([]*warden.Quarantine, error) {
	return s.Store.Quarantined(ctx)
}

// LiftQuarantine puts a digest back into use: the store forgets it, and the change goes to the
// whole fleet as every kill-state change does (Change: this replica's state reloaded, the others
// told, their acknowledgements awaited). It returns the record lifted.
func (s *Service) LiftQuarantine(ctx context.Context, p *warden.Principal, digest, reason string) (*warden.Quarantine, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if !warden.ValidDigest(digest) {
		return nil, warden.Errorf(warden.EInvalid, "digest %q: want sha256:<64 hex digits>", digest)
	}
	var q *warden.Quarantine
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		var err error
		if q, err = s.Store.LiftQuarantine(ctx, digest); err != nil {
			return err
		}
		if err := s.Load(ctx); err != nil {
			return err
		}
		announce(fleet.TopicQuarantine, digest)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return q, s.record(ctx, p, warden.EventQuarantineLift, "skill:"+digest, reason+FleetNote(r), nil)
}
