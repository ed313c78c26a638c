package warden

import (
	"context"
	"time"
)

// Detection events: what internal/detect found in an agent's own calls, compared with its
// baseline (docs/detect.md). The actor is the system; target.resource names the agent,
// target.arguments carries the evidence.
const (
	EventDetectPrefix = "detect."
	EventAlertAck     = "alert.ack" // a person acknowledged a finding; the actor is that person
)

// DetectHold is an approval requirement a finding put on an agent's calls until Until. An empty
// Tool or Action matches every tool or action.
type DetectHold struct {
	Agent  string `json:"agent"`
	Tool   string `json:"tool,omitempty"`
	Action string `json:"action,omitempty"`
	// Resource, when set, narrows the hold to the calls on that resource (as the audit log
	// records it): a first-seen egress host's hold covers that host only.
	Resource string    `json:"resource,omitempty"`
	Finding  string    `json:"finding"` // the id of the detect.* event
	Until    time.Time `json:"until"`
}

// DetectAck is a person's acknowledgement of a finding.
type DetectAck struct {
	Finding string    `json:"finding"`
	By      string    `json:"by"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// DetectStore keeps the detector's state: baselines (opaque bodies, one per agent) with the
// audit seq the detector has read up to, under a lease that lets one replica at a time run it;
// holds; acknowledgements.
type DetectStore interface {
	// AcquireDetectLease makes holder the detector until expires, if no other holder's lease is
	// live at now, and returns the seq read up to; ok is false when another replica holds it.
	AcquireDetectLease(ctx context.Context, holder string, now, expires time.Time) (seq int64, ok bool, err error)
	// SaveDetectState stores the changed baselines and the seq read up to in one transaction,
	// only while holder still holds the lease (EConflict otherwise: nothing is saved).
	SaveDetectState(ctx context.Context, holder string, seq int64, baselines map[string][]byte, now time.Time) error
	// DetectBaselines returns the stored baseline bodies by agent name: of the agents named,
	// or every one when none is.
	DetectBaselines(ctx context.Context, agents ...string) (map[string][]byte, error)
	// PutDetectHold adds or replaces the hold of (agent, tool, action).
	PutDetectHold(ctx context.Context, h *DetectHold) error
	// DetectHolds returns the holds whose Until is after now.
	DetectHolds(ctx context.Context, now time.Time) ([]*DetectHold, error)
	// AckDetectFinding records an acknowledgement; a second one of the same finding is EConflict.
	AckDetectFinding(ctx context.Context, a *DetectAck) error
	// DetectAcks returns the acknowledgements of the findings named.
	DetectAcks(ctx context.Context, findings []string) (map[string]*DetectAck, error)
}
