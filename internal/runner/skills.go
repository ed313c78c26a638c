package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/sandbox"
	"github.com/wardenhq/warden/internal/skill"
)

// SkillsDir is where the sandbox finds its skills, one directory per skill, each read-only.
const SkillsDir = sandbox.HomeDir + "/.claude/skills"

// Skill names a skill to mount into the sandbox: a version by Digest, or ("") the newest the
// agent may load.
type Skill struct {
	Name   string
	Digest string
}

// ParseSkill reads a --skill value, NAME or NAME@sha256:<64 hex digits>.
func ParseSkill(s string) (Skill, error) {
	name, digest, pinned := strings.Cut(s, "@")
	if err := skill.ValidateName(name); err != nil {
		return Skill{}, warden.Errorf(warden.EInvalid, "skill %v", err)
	}
	if pinned && !warden.ValidDigest(digest) {
		return Skill{}, warden.Errorf(warden.EInvalid, "skill %s: digest %q: want sha256:<64 lowercase hex digits>", name, digest)
	}
	return Skill{Name: name, Digest: digest}, nil
}

// mountedSkills are the skills of a run, verified and written out for the sandbox.
type mountedSkills struct {
	dir    string // the runner's private directory holding them; "" when there are none
	skills []apitype.RunnerSkill
	binds  []sandbox.Bind
}

// env is WARDEN_SKILLS, what the command is told it has: name@digest, comma-separated.
func (m *mountedSkills) env() string {
	parts := make([]string, len(m.skills))
	for i, s := range m.skills {
		parts[i] = s.Name + "@" + s.Digest
	}
	return "WARDEN_SKILLS=" + strings.Join(parts, ",")
}

func (m *mountedSkills) remove() {
	if m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
}

// fetchSkills gets each skill's archive from the server as the agent (the server decides,
// against the agent's skill.load grants and the quarantine, and audits the download), reads it
// with the skill package's archive checks and limits, and requires its canonical digest to be
// the one the server named and, when given, the one asked for. Each verified tree is written to
// a directory of its own in a directory private to the runner, owned by the sandbox's command
// user (skill.Tree.WriteDir, which writes exactly the verified tree), and bound read-only at
// SkillsDir/NAME. Any failure
// refuses the run; nothing is left on disk. Bytes that do not verify are the server's failure
// (or an attacker's between it and the runner), not the caller's: EInternal.
func fetchSkills(ctx context.Context, api *apiclient.Client, want []Skill, workspace string) (_ *mountedSkills, err error) {
	m := &mountedSkills{}
	if len(want) == 0 {
		return m, nil
	}
	if len(want) > apitype.MaxRunnerSkills {
		return nil, warden.Errorf(warden.EInvalid, "a sandbox mounts at most %d skills", apitype.MaxRunnerSkills)
	}
	seen := map[string]bool{}
	for _, s := range want {
		if seen[s.Name] {
			return nil, warden.Errorf(warden.EInvalid, "skill %s is named twice", s.Name)
		}
		seen[s.Name] = true
	}
	uid, gid, err := sandbox.CommandUser(workspace)
	if err != nil {
		return nil, warden.WrapError(warden.EInvalid, "finding the sandbox's user", err)
	}
	if m.dir, err = os.MkdirTemp("", "warden-skills-"); err != nil {
		return nil, warden.WrapError(warden.EInternal, "making the skills' directory", err)
	}
	defer func() {
		if err != nil {
			m.remove()
		}
	}()
	for _, s := range want {
		archive, served, err := api.SkillArchive(ctx, s.Name, s.Digest)
		if err != nil {
			return nil, warden.WrapError(warden.ErrorCode(err), "skill "+s.Name+": "+warden.ErrorMessage(err), err)
		}
		tree, err := skill.ReadArchive(archive, skill.DefaultLimits)
		if err != nil {
			return nil, warden.Errorf(warden.EInternal, "skill %s: the archive warden served is refused: %s", s.Name, warden.ErrorMessage(err))
		}
		got := tree.Digest()
		switch {
		case got != served:
			return nil, warden.Errorf(warden.EInternal, "skill %s: digest mismatch: the archive served is %s, not the %q warden named", s.Name, got, served)
		case s.Digest != "" && got != s.Digest:
			return nil, warden.Errorf(warden.EInternal, "skill %s: digest mismatch: the archive served is %s, not the %s asked for", s.Name, got, s.Digest)
		}
		if _, err := tree.Manifest(); err != nil {
			return nil, warden.Errorf(warden.EInternal, "skill %s: the archive warden served has no valid %s: %s", s.Name, skill.ManifestFile, warden.ErrorMessage(err))
		}
		dir := filepath.Join(m.dir, s.Name)
		if err := tree.WriteDir(dir, uid, gid); err != nil {
			return nil, warden.WrapError(warden.EInternal, "skill "+s.Name+": writing its files", err)
		}
		m.skills = append(m.skills, apitype.RunnerSkill{Name: s.Name, Digest: got})
		m.binds = append(m.binds, sandbox.Bind{Src: dir, Dst: SkillsDir + "/" + s.Name})
	}
	return m, nil
}
