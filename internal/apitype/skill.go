package apitype

import "github.com/wardenhq/warden"

// SkillAddRequest is the body of POST /v1/admin/skills.
type SkillAddRequest struct {
	// Archive is the skill as a .tar, .tar.gz or .zip (base64 in JSON). The CLI packs a folder
	// as a canonical .tar.gz.
	Archive []byte `json:"archive"`
	// Name registers the skill under another name than SKILL.md's; empty: SKILL.md's name.
	Name string `json:"name,omitempty"`
	// Digest is the digest the client computed; the server refuses the archive when its files
	// give another ("" skips the comparison).
	Digest string `json:"digest,omitempty"`
	// Signature is the text of a minisign signature, or the JSON of a Sigstore bundle, over the
	// digest string; the server tells them apart by content.
	Signature string `json:"signature,omitempty"`
	// AllowUnsigned accepts a skill without a signature; UnsignedReason is required with it.
	AllowUnsigned  bool   `json:"allow_unsigned,omitempty"`
	UnsignedReason string `json:"unsigned_reason,omitempty"`
	// OverrideFindings accepts a skill despite high findings; OverrideReason is required with it.
	OverrideFindings bool   `json:"override_findings,omitempty"`
	OverrideReason   string `json:"override_reason,omitempty"`
}

// SkillAdded answers POST /v1/admin/skills.
type SkillAdded struct {
	Skill *warden.Skill `json:"skill"`
	// Added is false when the name already had this digest: nothing changed.
	Added bool `json:"added"`
}

// SkillInfo answers GET /v1/admin/skills/{name}: one version and its state.
type SkillInfo struct {
	Skill            *warden.Skill `json:"skill"`
	Quarantined      bool          `json:"quarantined"`
	QuarantineReason string        `json:"quarantine_reason,omitempty"`
	GrantedTo        []string      `json:"granted_to"`
}

// SkillRemoved answers DELETE /v1/admin/skills/{name}.
type SkillRemoved struct {
	Name     string `json:"name"`
	Digest   string `json:"digest,omitempty"` // "" when every version was removed
	Versions int    `json:"versions"`
}

// SkillGrantRequest is the body of POST /v1/admin/skills/{name}/grants and of
// POST /v1/admin/skills/{name}/revoke.
type SkillGrantRequest struct {
	Agent string `json:"agent"`
}

// QuarantineLiftRequest is the body of POST /v1/quarantine/{digest}/lift.
type QuarantineLiftRequest struct {
	Reason string `json:"reason"`
}

// AgentSkill is one entry of GET /v1/skills for an agent: the newest version of a granted skill
// that is not quarantined.
type AgentSkill struct {
	Name        string `json:"name"`
	Digest      string `json:"digest"`
	Description string `json:"description"`
	Size        int64  `json:"size"`
	Files       int    `json:"files"`
	// Archive is the path to download it from, digest included.
	Archive string `json:"archive"`
}
