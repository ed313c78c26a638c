package storetest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden"
)

var skillTests = []storeTest{
	{"Versions", testSkillVersions},
	{"Grants", testSkillGrants},
	{"LiftQuarantine", testLiftQuarantine},
	{"GrantsGoWithTheAgent", testSkillGrantsGoWithTheAgent},
}

// testSkillGrantsGoWithTheAgent: deleting an agent deletes the skill grants made to its name,
// so an agent created later under the name does not inherit them; other agents keep theirs.
func testSkillGrantsGoWithTheAgent(t *testing.T, s warden.Store) {
	ctx := t.Context()
	bot := newAgent("bot")
	createAgent(t, s, bot)
	for _, g := range [][2]string{{"bot", "pdf"}, {"alice", "pdf"}} {
		if err := s.GrantSkill(ctx, g[0], g[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteAgent(ctx, "bot"); err != nil {
		t.Fatal(err)
	}
	createAgent(t, s, newAgent("bot"))
	got, err := s.SkillGrants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got["bot"]) != 0 || len(got["alice"]) != 1 {
		t.Fatalf("grants after bot was deleted and created again: %v; want alice's only", got)
	}
}

func skillVersion(digest string) *warden.Skill {
	return &warden.Skill{Name: "pdf-tools", Digest: digest, Description: "Fill PDF forms.", License: "MIT",
		AllowedTools: []string{"Bash(python:*)"}, Size: 1234, Files: 3, Signer: "acme (minisign 0123456789ABCDEF)",
		Findings: json.RawMessage(`[{"rule":"zero-width","severity":"medium"}]`), OverrideReason: "reviewed, INC-1",
		AddedBy: "alice", AddedAt: base.UTC()}
}

func testSkillVersions(t *testing.T, s warden.Store) {
	ctx := t.Context()
	v1, v2 := skillVersion("sha256:01"), skillVersion("sha256:02")
	v2.Signer, v2.UnsignedReason, v2.Findings, v2.OverrideReason = warden.SignerUnsigned, "internal tool", nil, ""
	for _, c := range []struct {
		s       *warden.Skill
		archive string
		added   bool
	}{{v1, "one", true}, {v2, "two", true}, {v1, "other bytes", false}} {
		added, err := s.AddSkill(ctx, c.s, []byte(c.archive))
		if err != nil || added != c.added {
			t.Fatalf("AddSkill(%s) = %v, %v; want %v", c.s.Digest, added, err, c.added)
		}
	}
	got, err := s.Skill(ctx, "pdf-tools", "sha256:01")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Skill v1", got, v1)
	if newest, err := s.Skill(ctx, "pdf-tools", ""); err != nil || newest.Digest != "sha256:02" || newest.Findings != nil {
		t.Fatalf("newest = %+v, %v; want v2 without findings", newest, err)
	}
	if a, err := s.SkillArchive(ctx, "pdf-tools", "sha256:01"); err != nil || !bytes.Equal(a, []byte("one")) {
		t.Fatalf("archive of v1 = %q, %v; want the first bytes stored (a version is immutable)", a, err)
	}
	other := skillVersion("sha256:01")
	other.Name = "another"
	if added, err := s.AddSkill(ctx, other, []byte("x")); err != nil || !added {
		t.Fatalf("the same digest under another name: %v, %v", added, err)
	}
	all, err := s.Skills(ctx, "")
	if err != nil || len(all) != 3 || all[0].Name != "another" || all[1].Digest != "sha256:01" || all[2].Digest != "sha256:02" {
		t.Fatalf("Skills = %v, %v", all, err)
	}
	if vs, err := s.Skills(ctx, "pdf-tools"); err != nil || len(vs) != 2 {
		t.Fatalf("Skills(pdf-tools) = %v, %v", vs, err)
	}
	_, err = s.Skill(ctx, "pdf-tools", "sha256:03")
	wantCode(t, err, warden.ENotFound)
	_, err = s.SkillArchive(ctx, "nope", "sha256:01")
	wantCode(t, err, warden.ENotFound)
	_, err = s.AddSkill(ctx, &warden.Skill{Name: "x"}, nil)
	wantCode(t, err, warden.EInvalid)

	if n, err := s.RemoveSkill(ctx, "pdf-tools", "sha256:01"); err != nil || n != 1 {
		t.Fatalf("RemoveSkill(v1) = %d, %v", n, err)
	}
	if n, err := s.RemoveSkill(ctx, "pdf-tools", ""); err != nil || n != 1 {
		t.Fatalf("RemoveSkill(all) = %d, %v", n, err)
	}
	_, err = s.RemoveSkill(ctx, "pdf-tools", "")
	wantCode(t, err, warden.ENotFound)
}

func testSkillGrants(t *testing.T, s warden.Store) {
	ctx := t.Context()
	for _, g := range [][2]string{{"bot", "pdf"}, {"bot", "docx"}, {"bot", "pdf"}, {"alice", "pdf"}} {
		if err := s.GrantSkill(ctx, g[0], g[1]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.SkillGrants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "SkillGrants", got, map[string][]string{"alice": {"pdf"}, "bot": {"docx", "pdf"}})
	if err := s.RevokeSkill(ctx, "bot", "pdf"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RevokeSkill(ctx, "bot", "pdf"), warden.ENotFound)
	wantCode(t, s.GrantSkill(ctx, "", "pdf"), warden.EInvalid)
	got, _ = s.SkillGrants(ctx)
	wantEqual(t, "SkillGrants after revoke", got, map[string][]string{"alice": {"pdf"}, "bot": {"docx"}})
}

func testLiftQuarantine(t *testing.T, s warden.Store) {
	ctx := t.Context()
	q := &warden.Quarantine{Digest: "sha256:cc", Reason: "malicious", By: "alice", At: base.UTC()}
	if err := s.Quarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.LiftQuarantine(ctx, "sha256:cc")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "lifted", got, q)
	if qs, err := s.Quarantined(ctx); err != nil || len(qs) != 0 {
		t.Fatalf("Quarantined after lift = %v, %v", qs, err)
	}
	_, err = s.LiftQuarantine(ctx, "sha256:cc")
	wantCode(t, err, warden.ENotFound)
}
