package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/wardenhq/warden"
)

var _ warden.SkillStore = (*Store)(nil)

const skillColumns = `name, digest, description, license, allowed_tools, size, files, signer, unsigned_reason,
	findings, override_reason, added_by, added_at`

func scanSkill(row scanner) (*warden.Skill, error) {
	var s warden.Skill
	var findings string
	err := row.Scan(&s.Name, &s.Digest, &s.Description, &s.License, jsonColumn{&s.AllowedTools}, &s.Size, &s.Files,
		&s.Signer, &s.UnsignedReason, &findings, &s.OverrideReason, &s.AddedBy, timeColumn{&s.AddedAt})
	if err != nil {
		return nil, err
	}
	if findings != "" {
		s.Findings = []byte(findings)
	}
	return &s, nil
}

// AddSkill stores a version and its archive; the same name and digest again changes nothing.
func (s *Store) AddSkill(ctx context.Context, sk *warden.Skill, archive []byte) (bool, error) {
	if sk.Name == "" || sk.Digest == "" || len(archive) == 0 {
		return false, warden.Errorf(warden.EInvalid, "a skill needs a name, a digest and an archive")
	}
	tools, err := jsonText(sk.AllowedTools)
	if err != nil {
		return false, storeError(err)
	}
	findings := string(sk.Findings) // "" for none
	n, err := s.exec(ctx, s.write, `INSERT INTO skills (`+skillColumns+`, archive)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, digest) DO NOTHING`,
		sk.Name, sk.Digest, sk.Description, sk.License, tools, sk.Size, sk.Files, sk.Signer, sk.UnsignedReason,
		findings, sk.OverrideReason, sk.AddedBy, unixNanos(sk.AddedAt), archive)
	if err != nil {
		return false, storeError(err)
	}
	return n == 1, nil
}

// Skill returns a version, or the newest version of the name when digest is "".
func (s *Store) Skill(ctx context.Context, name, digest string) (*warden.Skill, error) {
	q, args := `SELECT `+skillColumns+` FROM skills WHERE name = ? ORDER BY seq DESC LIMIT 1`, []any{name}
	if digest != "" {
		q, args = `SELECT `+skillColumns+` FROM skills WHERE name = ? AND digest = ?`, []any{name, digest}
	}
	sk, err := scanSkill(s.read.QueryRowContext(ctx, s.dialect.rebind(q), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, skillNotFound(name, digest)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return sk, nil
}

func skillNotFound(name, digest string) error {
	if digest != "" {
		return warden.Errorf(warden.ENotFound, "skill %s@%s not found", name, digest)
	}
	return warden.Errorf(warden.ENotFound, "skill %s not found", name)
}

// Skills lists the versions of one skill, or of every skill, by name then oldest first.
func (s *Store) Skills(ctx context.Context, name string) ([]*warden.Skill, error) {
	q, args := `SELECT `+skillColumns+` FROM skills ORDER BY name, seq`, []any(nil)
	if name != "" {
		q, args = `SELECT `+skillColumns+` FROM skills WHERE name = ? ORDER BY seq`, []any{name}
	}
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanSkill)
}

// SkillArchive returns a version's archive as it was stored.
func (s *Store) SkillArchive(ctx context.Context, name, digest string) ([]byte, error) {
	var archive []byte
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT archive FROM skills WHERE name = ? AND digest = ?`), name, digest).Scan(&archive)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, skillNotFound(name, digest)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return archive, nil
}

// RemoveSkill removes a version, or every version of the name when digest is "".
func (s *Store) RemoveSkill(ctx context.Context, name, digest string) (int, error) {
	q, args := `DELETE FROM skills WHERE name = ?`, []any{name}
	if digest != "" {
		q, args = `DELETE FROM skills WHERE name = ? AND digest = ?`, []any{name, digest}
	}
	n, err := s.exec(ctx, s.write, q, args...)
	if err != nil {
		return 0, storeError(err)
	}
	if n == 0 {
		return 0, skillNotFound(name, digest)
	}
	return n, nil
}

// GrantSkill lets an agent load a skill; a grant that exists is kept.
func (s *Store) GrantSkill(ctx context.Context, agent, skill string) error {
	if agent == "" || skill == "" {
		return warden.Errorf(warden.EInvalid, "a skill grant needs an agent and a skill")
	}
	if _, err := s.exec(ctx, s.write, `INSERT INTO skill_grants (agent, skill) VALUES (?, ?) ON CONFLICT (agent, skill) DO NOTHING`, agent, skill); err != nil {
		return storeError(err)
	}
	return nil
}

// RevokeSkill removes a grant.
func (s *Store) RevokeSkill(ctx context.Context, agent, skill string) error {
	n, err := s.exec(ctx, s.write, `DELETE FROM skill_grants WHERE agent = ? AND skill = ?`, agent, skill)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "agent %s has no grant of skill %s", agent, skill)
	}
	return nil
}

// SkillGrants lists every grant by agent.
func (s *Store) SkillGrants(ctx context.Context) (map[string][]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT agent, skill FROM skill_grants ORDER BY agent, skill`)
	if err != nil {
		return nil, storeError(err)
	}
	type grant struct{ agent, skill string }
	gs, err := collect(rows, func(row scanner) (grant, error) {
		var g grant
		err := row.Scan(&g.agent, &g.skill)
		return g, err
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, g := range gs {
		if !slices.Contains(out[g.agent], g.skill) {
			out[g.agent] = append(out[g.agent], g.skill)
		}
	}
	return out, nil
}

// LiftQuarantine removes a quarantined digest and returns its record.
func (s *Store) LiftQuarantine(ctx context.Context, digest string) (*warden.Quarantine, error) {
	var q warden.Quarantine
	err := s.write.QueryRowContext(ctx, s.dialect.rebind(`DELETE FROM quarantine WHERE digest = ? RETURNING digest, reason, by, at`), digest).
		Scan(&q.Digest, &q.Reason, &q.By, timeColumn{&q.At})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "digest %s is not quarantined", digest)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &q, nil
}
