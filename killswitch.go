package warden

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
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

// Covers reports whether the lockdown denies a call to tool: with MinRisk, a tool whose
// riskiest call (Tool.MaxRisk) is of that risk or more.
func (l Lockdown) Covers(tool *Tool) bool {
	if !l.Active {
		return false
	}
	if l.MinRisk == "" || tool == nil {
		return true
	}
	return tool.MaxRisk().Level() >= l.MinRisk.Level()
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

// MaxReason is the longest reason an admin may give, in bytes.
const MaxReason = 1024

// CheckReason is the one rule for the reason an admin gives a change: it is required for every
// change that imposes or lifts a containment (containment true: kill, restore, suspend, resume,
// lockdown and its lift, quarantine and its lift, tool disable and enable, a manifest accepted
// after a change), so that the audit log says why an agent or a tool was stopped or let go; it is
// optional elsewhere (a policy rollback). It returns the reason trimmed.
func CheckReason(reason string, containment bool) (string, error) {
	reason = strings.TrimSpace(reason)
	if containment && reason == "" {
		return "", Errorf(EInvalid, "a reason is required: this stops or lets go an agent or a tool, and the audit log says why (--reason 'leaked credentials, INC-123')")
	}
	if len(reason) > MaxReason || !utf8.ValidString(reason) {
		return "", Errorf(EInvalid, "reason must be valid text of at most %d bytes", MaxReason)
	}
	return reason, nil
}
