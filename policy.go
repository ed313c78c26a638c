package warden

import (
	"context"
	"time"
)

// PolicySet is one version of the Cedar policies in force: named files of Cedar text. Versions
// only grow; a rollback stores an old version's files as a new version.
type PolicySet struct {
	Version   int64             `json:"version"`
	Files     map[string]string `json:"files,omitempty"`
	CreatedBy string            `json:"created_by"`
	CreatedAt time.Time         `json:"created_at"`
	Comment   string            `json:"comment,omitempty"` // "apply policies/", "rollback to 3", "warden apply"
}

// PolicyStore keeps policy set versions.
type PolicyStore interface {
	// CreatePolicySet stores ps as the next version (assigned here: the latest plus one) and sets
	// ps.Version. If ifLatest is not -1 and the latest version is not ifLatest, nothing is stored
	// and the error is EConflict: two people applying at once never silently overwrite each other.
	CreatePolicySet(ctx context.Context, ps *PolicySet, ifLatest int64) error
	// PolicySet returns one version with its files; version 0 means the latest (ENotFound if none).
	PolicySet(ctx context.Context, version int64) (*PolicySet, error)
	// PolicySets lists every version, newest first, without files.
	PolicySets(ctx context.Context) ([]*PolicySet, error)
}

// Shadow mode (docs/cli.md, "Shadow mode"): a candidate policy set evaluated beside the live
// one on every call, its differences recorded and never enforced.
const (
	EventPolicyShadowApply   = "policy.shadow_apply"   // a candidate set stored; the actor is the person
	EventPolicyShadowPromote = "policy.shadow_promote" // the candidate became the live set's next version
	EventPolicyShadowDrop    = "policy.shadow_drop"    // the candidate removed unpromoted
	// EventPolicyShadowDiff is a call the candidate decides otherwise than the live set: the
	// decision is the live one, target.arguments the candidate's (docs/audit.md). The actor is
	// the calling agent.
	EventPolicyShadowDiff = "policy.shadow_diff"
	// EventPolicyShadowDropped counts the differences a replica could not record because its
	// queue was full; the actor is the system.
	EventPolicyShadowDropped = "policy.shadow_dropped"
)

// PolicyShadow is the candidate policy set of shadow mode. There is at most one; Version only
// grows, over every candidate ever stored, so that a difference names the candidate that made it.
type PolicyShadow struct {
	Version int64             `json:"version"`
	Files   map[string]string `json:"files,omitempty"`
	// Base is the live version the candidate was applied beside: promoting it stores it as the
	// next version only while that is still the latest, so that no later apply is overwritten.
	Base      int64     `json:"base"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	Comment   string    `json:"comment,omitempty"`
}

// PolicyShadowStore keeps the candidate policy set.
type PolicyShadowStore interface {
	// PutPolicyShadow makes ps the candidate, replacing any, and sets ps.Version: one more than
	// any candidate stored before.
	PutPolicyShadow(ctx context.Context, ps *PolicyShadow) error
	// PolicyShadow returns the candidate with its files (ENotFound when there is none).
	PolicyShadow(ctx context.Context) (*PolicyShadow, error)
	// EndPolicyShadow removes the candidate if it is still version (ENotFound when there is no
	// candidate, EConflict when another version is the candidate now).
	EndPolicyShadow(ctx context.Context, version int64) error
}

// PolicyShadowDecision is what the candidate decided for a call it decides otherwise than the
// live set: the target.arguments of a policy.shadow_diff event.
type PolicyShadowDecision struct {
	Effect   string   `json:"effect"`
	Reason   string   `json:"reason"`
	Message  string   `json:"message,omitempty"`
	Policies []string `json:"policies,omitempty"`
	// ShadowVersion is the candidate's version (PolicyShadow.Version).
	ShadowVersion int64 `json:"shadow_version"`
}
