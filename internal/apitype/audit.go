package apitype

import (
	"fmt"

	"github.com/wardenhq/warden"
)

// AuditEventName is the Server-Sent Events name of GET /v1/audit/stream's events, whose id is
// the event's seq and whose data is a warden.AuditEvent.
const AuditEventName = "audit"

// AuditHeadHeader is the header of GET /v1/audit/events that says the seq of the newest event.
const AuditHeadHeader = "Warden-Audit-Head"

// AuditTotalHeader is the header of GET /v1/audit/events that says how many events the search
// matches in all (after and before aside): a number, or AuditTotalCap followed by "+" when there
// are at least that many.
const AuditTotalHeader = "Warden-Audit-Total"

// AuditDefaultLimit is the page of GET /v1/audit/events without a limit.
const AuditDefaultLimit = 100

// AuditTotalCap is where the server stops counting a search's events.
const AuditTotalCap = 100_000

// CheckpointResponse is a checkpoint with the key that verifies it.
type CheckpointResponse struct {
	*warden.AuditCheckpoint
	VerifierKey string `json:"verifier_key"`
}

// VerifierKeyResponse is the answer of GET /v1/audit/key.
type VerifierKeyResponse struct {
	VerifierKey string `json:"verifier_key"`
}

// VerifyRequest optionally carries an exported checkpoint the log must extend.
type VerifyRequest struct {
	Checkpoint string `json:"checkpoint,omitempty"`
}

// VerifyReport is what verification of the audit log found.
type VerifyReport struct {
	OK          bool        `json:"ok"`
	Events      int64       `json:"events"`           // events checked
	First       int64       `json:"first,omitempty"`  // seq of the oldest event kept
	Last        int64       `json:"last,omitempty"`   // seq of the newest
	Head        string      `json:"head,omitempty"`   // hash of the newest
	Origin      string      `json:"origin,omitempty"` // of the checkpoints
	Anchor      int64       `json:"anchor,omitempty"` // events up to here were pruned; a checkpoint of this size anchors the rest
	Checkpoints int         `json:"checkpoints"`      // stored checkpoints whose signature verified
	Extends     int64       `json:"extends,omitempty"`
	Break       *AuditBreak `json:"break,omitempty"`
	Elapsed     string      `json:"elapsed"`
}

// AuditBreak is the first place where the log is not what warden wrote.
type AuditBreak struct {
	Kind    string `json:"kind"`
	Seq     int64  `json:"seq"`
	Message string `json:"message"`
}

func (b *AuditBreak) Error() string { return fmt.Sprintf("%s at seq %d: %s", b.Kind, b.Seq, b.Message) }
