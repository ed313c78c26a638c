package fleet

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/apitype"
)

// Local is the fleet of one replica (SQLite): nobody else to tell, nobody to wait for, and
// the replica's view is the store's by construction.
type Local struct {
	ID      string
	Address string
	Version string // warden's
	started time.Time
	version atomic.Int64
}

var _ Bus = (*Local)(nil)

// NewLocal returns the fleet of one replica named id, started at now.
func NewLocal(id, address, version string, now time.Time) *Local {
	return &Local{ID: id, Address: address, Version: version, started: now.UTC()}
}

// Self is the replica's ID.
func (l *Local) Self() string { return l.ID }

// Publish gives the change the next version; there is nobody to announce it to.
func (l *Local) Publish(context.Context, Topic, string) (int64, error) {
	return l.version.Add(1), nil
}

// WaitAcks has no other replica to wait for.
func (l *Local) WaitAcks(context.Context, int64, time.Duration) []apitype.ReplicaAck { return nil }

// Stale is never true: the one replica's view is the store's.
func (l *Local) Stale(time.Time) bool { return false }

// Reloaded does nothing.
func (l *Local) Reloaded(time.Time) {}

// Replicas lists this replica alone.
func (l *Local) Replicas(context.Context) (apitype.Replicas, error) {
	v := l.version.Load()
	now := time.Now().UTC()
	return apitype.Replicas{Version: v, Replicas: []apitype.Replica{{
		ID: l.ID, Address: l.Address, Version: l.Version, StartedAt: l.started, HeartbeatAt: now,
		Live: true, AppliedVersion: v, Fresh: true, Self: true,
	}}}, nil
}

// Run waits for ctx to end.
func (l *Local) Run(ctx context.Context, _ Handler) error {
	<-ctx.Done()
	return nil
}
