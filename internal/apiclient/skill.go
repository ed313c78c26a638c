package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

func skillPath(name string) string { return "/v1/admin/skills/" + url.PathEscape(name) }

func withDigest(path, digest string) string {
	if digest == "" {
		return path
	}
	return path + "?digest=" + url.QueryEscape(digest)
}

// AddSkill registers a skill version.
func (c *Client) AddSkill(ctx context.Context, req apitype.SkillAddRequest) (*apitype.SkillAdded, error) {
	return call[*apitype.SkillAdded](ctx, c, http.MethodPost, "/v1/admin/skills", req)
}

// Skills lists skill versions, of one skill when name is not "".
func (c *Client) Skills(ctx context.Context, name string) ([]*warden.Skill, error) {
	path := "/v1/admin/skills"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	return call[[]*warden.Skill](ctx, c, http.MethodGet, path, nil)
}

// Skill shows a version (the newest when digest is "").
func (c *Client) Skill(ctx context.Context, name, digest string) (*apitype.SkillInfo, error) {
	return call[*apitype.SkillInfo](ctx, c, http.MethodGet, withDigest(skillPath(name), digest), nil)
}

// RemoveSkill removes a version, or every version when digest is "".
func (c *Client) RemoveSkill(ctx context.Context, name, digest string) (*apitype.SkillRemoved, error) {
	return call[*apitype.SkillRemoved](ctx, c, http.MethodDelete, withDigest(skillPath(name), digest), nil)
}

// GrantSkill lets an agent load a skill.
func (c *Client) GrantSkill(ctx context.Context, name, agent string) error {
	return c.Do(ctx, http.MethodPost, skillPath(name)+"/grants", apitype.SkillGrantRequest{Agent: agent}, nil)
}

// RevokeSkill takes a grant back.
func (c *Client) RevokeSkill(ctx context.Context, name, agent string) error {
	return c.Do(ctx, http.MethodPost, skillPath(name)+"/revoke", apitype.SkillGrantRequest{Agent: agent}, nil)
}

// Quarantines lists the quarantined digests.
func (c *Client) Quarantines(ctx context.Context) ([]*warden.Quarantine, error) {
	return call[[]*warden.Quarantine](ctx, c, http.MethodGet, "/v1/quarantine", nil)
}

// LiftQuarantine puts a digest back into use.
func (c *Client) LiftQuarantine(ctx context.Context, digest, reason string) (*warden.Quarantine, error) {
	return call[*warden.Quarantine](ctx, c, http.MethodPost, "/v1/quarantine/"+url.PathEscape(digest)+"/lift", apitype.QuarantineLiftRequest{Reason: reason})
}

// AgentSkills lists the skills the calling agent may load.
func (c *Client) AgentSkills(ctx context.Context) ([]apitype.AgentSkill, error) {
	return call[[]apitype.AgentSkill](ctx, c, http.MethodGet, "/v1/skills", nil)
}

// MaxSkillArchive bounds a skill archive read from the server: the skill limits' 64 MiB of
// files, compressed, with room for the archive's own overhead.
const MaxSkillArchive = 96 << 20

// SkillArchive downloads a skill's canonical archive as the calling agent; digest "" is the
// newest usable version. It returns the archive and the digest the server says it is
// (Warden-Skill-Digest); the caller verifies both (skill.ReadArchive, Digest).
func (c *Client) SkillArchive(ctx context.Context, name, digest string) (archive []byte, served string, err error) {
	path := "/v1/skills/" + url.PathEscape(name) + "/archive"
	resp, err := c.Send(ctx, http.MethodGet, withDigest(path, digest), nil, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	archive, err = readAtMost(resp.Body, MaxSkillArchive, http.MethodGet, path)
	if err != nil {
		return nil, "", err
	}
	return archive, resp.Header.Get("Warden-Skill-Digest"), nil
}
