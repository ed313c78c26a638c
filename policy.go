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
