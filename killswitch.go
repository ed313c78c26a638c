package warden

import (
	"context"
	"time"
)

// Lockdown is fleet-wide break glass: while it is on, every agent is denied, or with MinRisk
// every call to a tool of that risk or more. Only an admin lifts it.
type Lockdown struct {
	Active  bool      `json:"active"`
	MinRisk Risk      `json:"min_risk,omitempty"` // "" means every call
	Reason  string    `json:"reason,omitempty"`
	By      string    `json:"by,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// Covers reports whether the lockdown denies a call to tool.
func (l Lockdown) Covers(tool *Tool) bool {
	if !l.Active {
		return false
	}
	if l.MinRisk == "" || tool == nil {
		return true
	}
	return tool.Risk.Level() >= l.MinRisk.Level()
}

// Quarantine takes a skill out of use by its content digest, whoever would load it.
type Quarantine struct {
	Digest string    `json:"digest"` // "sha256:<hex>"
	Reason string    `json:"reason"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
}

// KillStore keeps the parts of the kill state that are not agents or tools.
type KillStore interface {
	// Lockdown returns the lockdown in force (Active false when none).
	Lockdown(ctx context.Context) (Lockdown, error)
	// SetLockdown replaces it.
	SetLockdown(ctx context.Context, l Lockdown) error
	// Quarantine adds a quarantined digest; adding it again keeps the first record.
	Quarantine(ctx context.Context, q *Quarantine) error
	// Quarantined lists every quarantined digest.
	Quarantined(ctx context.Context) ([]*Quarantine, error)
	// LiftQuarantine removes a quarantined digest; ENotFound when it was not quarantined.
	LiftQuarantine(ctx context.Context, digest string) (*Quarantine, error)
}
