package warden

import (
	"context"
	"encoding/json"
	"time"
)

// Skill is one version of an Agent Skill registered with warden: a folder with a SKILL.md,
// scripts and references, named by the canonical digest of its files. A version never
// changes: the same name with other content is another version.
type Skill struct {
	Name         string   `json:"name"`
	Digest       string   `json:"digest"` // "sha256:<hex>", the version
	Description  string   `json:"description"`
	License      string   `json:"license,omitempty"`
	AllowedTools []string `json:"allowed_tools,omitempty"` // informational, never a grant
	Size         int64    `json:"size"`                    // bytes in all files
	Files        int      `json:"files"`
	// Signer names the trusted publisher whose key signed the digest, as "NAME (minisign KEYID)",
	// or SignerUnsigned when an admin accepted it unsigned with UnsignedReason.
	Signer         string `json:"signer"`
	UnsignedReason string `json:"unsigned_reason,omitempty"`
	// Findings are the scanner's findings when the skill was added, as JSON (scan.Finding).
	Findings json.RawMessage `json:"findings,omitempty"`
	// OverrideReason is why an admin accepted high findings; empty when there were none.
	OverrideReason string    `json:"override_reason,omitempty"`
	AddedBy        string    `json:"added_by"`
	AddedAt        time.Time `json:"added_at"`
}

// SignerUnsigned is the Signer of a skill accepted without a signature.
const SignerUnsigned = "unsigned"

// SkillStore keeps skill versions, their canonical archives, and which agent may load which
// skill. The archive is kept in the store (not a file under the data folder) so that every
// replica on one PostgreSQL can serve it.
type SkillStore interface {
	// AddSkill stores a version with its canonical archive. It reports false, and changes
	// nothing, when the name already has that digest.
	AddSkill(ctx context.Context, s *Skill, archive []byte) (added bool, err error)
	// Skill returns a version; digest "" means the newest version of the name. ENotFound if none.
	Skill(ctx context.Context, name, digest string) (*Skill, error)
	// Skills lists versions, of one name or ("") of every skill, by name then oldest first.
	Skills(ctx context.Context, name string) ([]*Skill, error)
	// SkillArchive returns a version's canonical archive as stored. ENotFound if none.
	SkillArchive(ctx context.Context, name, digest string) ([]byte, error)
	// RemoveSkill removes a version, or every version when digest is "", and reports how many.
	// ENotFound when nothing matched.
	RemoveSkill(ctx context.Context, name, digest string) (int, error)
	// GrantSkill lets an agent load a skill (every version); granting twice is one grant.
	GrantSkill(ctx context.Context, agent, skill string) error
	// RevokeSkill takes a grant back; ENotFound when there was none.
	RevokeSkill(ctx context.Context, agent, skill string) error
	// SkillGrants lists every grant as agent name → skill names, sorted.
	SkillGrants(ctx context.Context) (map[string][]string, error)
}

// Skill events.
const (
	EventSkillAdd       = "admin.skill.add"
	EventSkillRemove    = "admin.skill.remove"
	EventSkillGrant     = "admin.skill.grant"
	EventSkillRevoke    = "admin.skill.revoke"
	EventSkillRefuse    = "admin.skill.refuse" // an add refused: signature, findings or quarantine
	EventSkillList      = "skill.list"         // an agent listed the skills it may load
	EventSkillLoaded    = "skill.loaded"       // an agent downloaded a skill it may load
	EventSkillDenied    = "skill.denied"       // an agent was refused a skill
	EventQuarantineLift = "kill.quarantine.lift"
)
