// Package fleet carries changes between the replicas of warden that share one store. A replica
// that changes the kill state or the registry writes the store, then publishes a Change; every
// other replica applies it on receipt (through its Handler) and, for kill-state changes,
// acknowledges it, so that the replica that heard the command can wait for the whole fleet.
// On PostgreSQL the changes travel by LISTEN/NOTIFY on one channel; with SQLite (one replica)
// Local is the whole fleet.
package fleet

import (
	"context"
	"time"

	"github.com/wardenhq/warden/internal/apitype"
)

// Topic names what changed, so that a replica reloads only that.
type Topic string

// The topics. TopicAll asks for everything to be reloaded: a replica whose feed reconnected
// after a gap, or a safety-net poll, applies it.
const (
	TopicAgent      Topic = "agent"       // an agent's record: status, epoch, secret, expiry, labels; or its deletion
	TopicTool       Topic = "tool"        // a tool added, changed, disabled, enabled or removed
	TopicPolicy     Topic = "policy"      // the policy set
	TopicBudget     Topic = "budget"      // a budget added, changed or removed
	TopicAdminToken Topic = "admin_token" // an admin token created or revoked
	TopicKey        Topic = "key"         // a signing key added, rotated or retired
	TopicRevocation Topic = "revocation"  // a token revoked
	TopicLockdown   Topic = "lockdown"    // a lockdown or its lift
	TopicQuarantine Topic = "quarantine"  // a digest quarantined or released
	TopicAll        Topic = "all"
)

// KillState reports whether a change of the topic changes the kill state, so that the
// publisher waits for the fleet's acknowledgements.
func (t Topic) KillState() bool {
	switch t {
	case TopicAgent, TopicTool, TopicLockdown, TopicQuarantine, TopicAll:
		return true
	}
	return false
}

// Change is one announcement: small, naming what changed and the fleet version it was
// published as. It never carries a secret or a record: receivers read the store.
type Change struct {
	Topic   Topic  `json:"t"`
	Name    string `json:"n,omitempty"` // the agent ID, tool name, … that changed; "" for the whole topic
	Version int64  `json:"v"`
	Replica string `json:"r"` // the publisher
}

// Applied is what a replica did on receiving a change: it applied the new state and
// terminated what the state forbids on that replica.
type Applied struct {
	CallsCancelled   int
	SessionsClosed   int
	SandboxesStopped int
}

// Handler applies a change published by another replica: it reloads what the topic names from
// the store and reconciles (terminates what the new kill state forbids). It returns what it
// did, or an error when the store could not be read (the change is then not acknowledged).
type Handler func(ctx context.Context, c Change) (Applied, error)

// Bus is the fleet as one replica sees it.
type Bus interface {
	// Self is this replica's ID.
	Self() string
	// Publish announces a change this replica has committed to the store and returns the
	// fleet version it was given (versions only rise, across the fleet).
	Publish(ctx context.Context, topic Topic, name string) (int64, error)
	// WaitAcks waits until every other live replica has acknowledged version (or a later one)
	// or timeout passes, and returns one ReplicaAck per other live replica, acked or not.
	WaitAcks(ctx context.Context, version int64, timeout time.Duration) []apitype.ReplicaAck
	// Stale reports whether this replica cannot confirm that its view is current at now: its
	// feed is down and the last full reload (Reloaded) is older than the maximum staleness.
	// The gateway refuses every call with stale_state while it is.
	Stale(now time.Time) bool
	// Reloaded records a successful full reload of the kill state from the store at t (the
	// safety-net poll), which keeps the replica fresh while its feed is down.
	Reloaded(t time.Time)
	// Replicas lists the fleet: every replica with a heartbeat, live or not.
	Replicas(ctx context.Context) (apitype.Replicas, error)
	// Run delivers other replicas' changes to the handler, acknowledges kill-state changes,
	// keeps the feed connected (calling the handler with TopicAll after every reconnection)
	// and records this replica's heartbeat, until ctx ends.
	Run(ctx context.Context, h Handler) error
}
