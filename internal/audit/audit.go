// Package audit records every decision and change of state as a warden.AuditEvent, durably,
// before the caller proceeds.
package audit

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/wardenhq/warden"
)

// Log appends events to the store. It fills in what every event carries (id, schema version,
// time, replica) so that callers only say what happened.
type Log struct {
	store   warden.AuditStore
	replica string
	now     func() time.Time

	mu      sync.Mutex // guards entropy: ULIDs are monotonic within one millisecond
	entropy *ulid.MonotonicEntropy
}

var _ warden.AuditLog = (*Log)(nil)

// New returns a Log that writes to store and names replica in every event.
func New(store warden.AuditStore, replica string) *Log {
	return &Log{
		store:   store,
		replica: replica,
		now:     time.Now,
		entropy: ulid.Monotonic(rand.Reader, 0),
	}
}

// Append stores ev and returns once it is durable. A caller that gets an error must not proceed
// with the action the event describes.
func (l *Log) Append(ctx context.Context, ev *warden.AuditEvent) error {
	if ev.Time.IsZero() {
		ev.Time = l.now()
	}
	ev.Time = ev.Time.UTC()
	ev.SchemaVersion = warden.AuditSchemaVersion
	if ev.Actor.Replica == "" {
		ev.Actor.Replica = l.replica
	}
	l.mu.Lock()
	id, err := ulid.New(ulid.Timestamp(ev.Time), l.entropy)
	l.mu.Unlock()
	if err != nil {
		return warden.WrapError(warden.EInternal, "audit id", err)
	}
	ev.ID = id.String()
	if err := l.store.AppendAuditEvents(ctx, []*warden.AuditEvent{ev}); err != nil {
		return warden.WrapError(warden.EUnavailable, "audit log unavailable", err)
	}
	return nil
}
