package runner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/sandbox"
	"github.com/wardenhq/warden/internal/skill"
)

// probeSkill runs inside the sandbox: the skill at $HOME/.claude/skills/NAME must be readable
// and its script executable, every way of changing it must fail, and the rest of ~/.claude must
// stay the command's to write. It prints what it found and exits 0 only when all of it holds.
func probeSkill(name string) int {
	home := os.Getenv("HOME")
	dir := home + "/.claude/skills/" + name
	fmt.Println("WARDEN_SKILLS=" + os.Getenv("WARDEN_SKILLS"))
	failed := false
	fail := func(format string, a ...any) {
		failed = true
		fmt.Printf("FAIL "+format+"\n", a...)
	}
	if b, err := os.ReadFile(dir + "/SKILL.md"); err != nil || !strings.Contains(string(b), "name: "+name) {
		fail("reading SKILL.md: %v %q", err, b)
	}
	if out, err := exec.Command(dir + "/scripts/run.sh").Output(); err != nil || string(out) != "ran\n" {
		fail("running the skill's script: %v %q", err, out)
	}
	for what, change := range map[string]func() error{
		"create a file":       func() error { return os.WriteFile(dir+"/new.txt", []byte("x"), 0o644) },
		"make a directory":    func() error { return os.Mkdir(dir+"/sub", 0o755) },
		"rewrite SKILL.md":    func() error { return os.WriteFile(dir+"/SKILL.md", []byte("pwned"), 0o644) },
		"append to SKILL.md":  func() error { return appendTo(dir + "/SKILL.md") },
		"chmod SKILL.md":      func() error { return os.Chmod(dir+"/SKILL.md", 0o666) },
		"remove SKILL.md":     func() error { return os.Remove(dir + "/SKILL.md") },
		"rename the skill":    func() error { return os.Rename(dir, home+"/.claude/skills/moved") },
		"remove the skill":    func() error { return os.RemoveAll(dir) },
		"truncate the script": func() error { return os.Truncate(dir+"/scripts/run.sh", 0) },
	} {
		if err := change(); err == nil {
			fail("%s: allowed", what)
		} else {
			fmt.Printf("%s: refused: %v\n", what, err)
		}
	}
	if b, err := os.ReadFile(dir + "/SKILL.md"); err != nil || !strings.Contains(string(b), "name: "+name) {
		fail("SKILL.md after the attempts: %v %q", err, b)
	}
	if err := os.WriteFile(home+"/.claude/settings.json", []byte("{}"), 0o600); err != nil {
		fail("~/.claude is not the command's to write: %v", err)
	}
	if failed {
		return 1
	}
	return 0
}

func appendTo(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString("more")
	return err
}

// skillArchive is a skill's canonical archive and digest: SKILL.md naming it, and an executable
// script.
func skillArchive(t *testing.T, name, body string) ([]byte, string) {
	t.Helper()
	tree := &skill.Tree{Files: []skill.File{
		{Path: "SKILL.md", Data: []byte("---\nname: " + name + "\ndescription: A test skill. " + body + "\nallowed-tools: Bash\n---\n\n# " + name + "\n")},
		{Path: "scripts/run.sh", Exec: true, Data: []byte("#!/bin/sh\necho ran\n")},
	}}
	var buf bytes.Buffer
	if err := tree.Archive(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), tree.Digest()
}

// skillDirs lists the runner's private skill directories now present.
func skillDirs(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "warden-skills-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// TestRunSkills: a granted skill is fetched, verified, mounted read-only at
// $HOME/.claude/skills/NAME (readable, its script executable, every write refused from inside)
// and listed in WARDEN_SKILLS; the registration names its digest; the runner's copy is removed
// when the run ends.
func TestRunSkills(t *testing.T) {
	f := newFakeServer(t)
	notes, notesDigest := skillArchive(t, "notes", "Take notes.")
	pdf, pdfDigest := skillArchive(t, "pdf-tools", "Fill PDFs.")
	f.skills["notes"], f.skills["pdf-tools"] = notes, pdf
	before := skillDirs(t)
	var during []string
	r := f.run(t, func(o *Options) {
		o.Skills = []Skill{{Name: "notes"}, {Name: "pdf-tools", Digest: pdfDigest}}
		o.Spec.Env = append(o.Spec.Env, "HOME="+sandbox.HomeDir)
		o.Started = func(*sandbox.Sandbox) { during = skillDirs(t) }
	}, "skills", "notes")
	if r.err != nil || r.res.Exit.Code != 0 {
		t.Fatalf("run with skills: %v %+v\n%s", r.err, r.res, r.out)
	}
	t.Logf("inside:\n%s", r.out)
	if want := "WARDEN_SKILLS=notes@" + notesDigest + ",pdf-tools@" + pdfDigest + "\n"; !strings.Contains(r.out, want) {
		t.Errorf("WARDEN_SKILLS: want %q in\n%s", want, r.out)
	}
	f.mu.Lock()
	asked, registered := slices.Clone(f.asked), slices.Clone(f.registered)
	f.mu.Unlock()
	if !slices.Equal(asked, []string{"notes", "pdf-tools@" + pdfDigest}) {
		t.Errorf("archives asked for: %v", asked)
	}
	want := []apitype.RunnerSkill{{Name: "notes", Digest: notesDigest}, {Name: "pdf-tools", Digest: pdfDigest}}
	if len(registered) != 1 || !slices.Equal(registered[0].Skills, want) {
		t.Errorf("registration %+v; want skills %+v", registered, want)
	}
	if len(during) != len(before)+1 {
		t.Errorf("skill directories while running: %v (before %v)", during, before)
	}
	for _, d := range during {
		if !slices.Contains(before, d) {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("%s is left after the run: %v", d, err)
			}
		}
	}

	// The other skill is mounted too; and for a command that is not root (a workspace owned by
	// another user, whom the runner gives the skill's files), everything holds the same.
	r = f.run(t, func(o *Options) {
		o.Skills = []Skill{{Name: "notes"}, {Name: "pdf-tools"}}
		o.Spec.Env = append(o.Spec.Env, "HOME="+sandbox.HomeDir)
	}, "skills", "pdf-tools")
	if r.err != nil || r.res.Exit.Code != 0 {
		t.Fatalf("the second skill: %v %+v\n%s", r.err, r.res, r.out)
	}
	r = f.run(t, func(o *Options) {
		o.Skills = []Skill{{Name: "notes"}}
		o.Spec.Env = append(o.Spec.Env, "HOME="+sandbox.HomeDir)
		if err := os.Chmod(o.Spec.Workspace, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(o.Spec.Workspace, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}, "skills", "notes")
	if r.err != nil || r.res.Exit.Code != 0 {
		t.Fatalf("a command of uid 1000: %v %+v\n%s", r.err, r.res, r.out)
	}
	t.Logf("inside, as uid 1000:\n%s", r.out)
}

// TestRunSkillRefused: a skill not granted, a digest other than the one asked for or the one the
// server named, an archive that is not a safe skill, or a registration the server refuses (a
// quarantined digest) — the run refuses to start, says why, starts no sandbox and leaves nothing.
func TestRunSkillRefused(t *testing.T) {
	notes, notesDigest := skillArchive(t, "notes", "Take notes.")
	other, otherDigest := skillArchive(t, "notes", "Other notes.")
	var evil bytes.Buffer
	zw := gzip.NewWriter(&evil)
	tw := tar.NewWriter(zw)
	for _, p := range []string{"SKILL.md", "../../.bashrc"} {
		_ = tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x\n"))
	}
	tw.Close()
	zw.Close()
	cases := []struct {
		name     string
		setup    func(f *fakeServer)
		skills   []Skill
		want     string
		register bool // the registration was sent (and refused)
	}{
		{"not granted", func(f *fakeServer) {}, []Skill{{Name: "notes"}}, "no_matching_policy", false},
		{"a digest other than the one asked for", func(f *fakeServer) { f.skills["notes"] = notes },
			[]Skill{{Name: "notes", Digest: otherDigest}}, "digest mismatch: the archive served is " + notesDigest + ", not the " + otherDigest + " asked for", false},
		{"served bytes that are not the digest the server named", func(f *fakeServer) {
			f.skills["notes"], f.served["notes"] = other, notesDigest
		}, []Skill{{Name: "notes"}}, "digest mismatch: the archive served is " + otherDigest, false},
		{"served bytes that are not the digest asked for, named as it", func(f *fakeServer) {
			f.skills["notes"], f.served["notes"] = other, notesDigest
		}, []Skill{{Name: "notes", Digest: notesDigest}}, "digest mismatch", false},
		{"an archive escaping its root", func(f *fakeServer) { f.skills["notes"] = evil.Bytes() }, []Skill{{Name: "notes"}}, "refused", false},
		{"not an archive", func(f *fakeServer) { f.skills["notes"] = []byte("<html>hello</html>") }, []Skill{{Name: "notes"}}, "refused", false},
		{"a registration refused: quarantined", func(f *fakeServer) { f.skills["notes"], f.conflict = notes, true }, []Skill{{Name: "notes"}}, "quarantined", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeServer(t)
			c.setup(f)
			before := skillDirs(t)
			started := false
			r := f.run(t, func(o *Options) {
				o.Skills = c.skills
				o.Started = func(*sandbox.Sandbox) { started = true }
			}, "exit", "0")
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) {
				t.Fatalf("run: %v %+v; want a refusal saying %q", r.err, r.res, c.want)
			}
			if started {
				t.Error("the sandbox started")
			}
			f.mu.Lock()
			registered := len(f.registered)
			f.mu.Unlock()
			if (registered > 0) != c.register {
				t.Errorf("%d registrations sent", registered)
			}
			if after := skillDirs(t); len(after) != len(before) {
				t.Errorf("skill directories left: %v (before %v)", after, before)
			}
		})
	}
}

// TestRunSkillsReRegistered: when the server forgets the runner (it restarted), the runner
// registers again with the same skills, so that a quarantine still finds the sandbox.
func TestRunSkillsReRegistered(t *testing.T) {
	f := newFakeServer(t)
	notes, notesDigest := skillArchive(t, "notes", "Take notes.")
	f.skills["notes"] = notes
	go func() {
		time.Sleep(700 * time.Millisecond)
		f.mu.Lock()
		f.forget = true
		f.mu.Unlock()
	}()
	r := f.run(t, func(o *Options) { o.Skills = []Skill{{Name: "notes"}} }, "sleep", "3s")
	if r.err != nil || r.res.Exit.Code != 0 {
		t.Fatalf("run: %v %+v\n%s", r.err, r.res, r.out)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := []apitype.RunnerSkill{{Name: "notes", Digest: notesDigest}}
	if len(f.registered) != 2 || !slices.Equal(f.registered[1].Skills, want) || f.registered[1].Command != f.registered[0].Command {
		t.Fatalf("registrations %+v; want the second to name %+v again", f.registered, want)
	}
}

// TestRunSkillsReRegistrationRefused: a re-registration the server refuses because a skill is
// quarantined ends the sandbox at once.
func TestRunSkillsReRegistrationRefused(t *testing.T) {
	f := newFakeServer(t)
	notes, _ := skillArchive(t, "notes", "Take notes.")
	f.skills["notes"] = notes
	go func() {
		time.Sleep(700 * time.Millisecond)
		f.mu.Lock()
		f.forget, f.conflict = true, true
		f.mu.Unlock()
	}()
	start := time.Now()
	r := f.run(t, func(o *Options) { o.Skills = []Skill{{Name: "notes"}} }, "sleep", "30s")
	if r.err != nil || r.res.Exit.Kind != sandbox.ExitedKilled || !strings.Contains(r.res.Ended, "quarantined") {
		t.Fatalf("run: %v %+v", r.err, r.res)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the sandbox ran %s after its re-registration was refused", d)
	}
}

// FuzzParseSkill: whatever --skill is given, ParseSkill either refuses it or returns a valid
// skill name and, when pinned, a well-formed digest, which print back as the input.
func FuzzParseSkill(f *testing.F) {
	for _, s := range []string{"notes", "pdf-tools@sha256:" + strings.Repeat("ab", 32), "notes@", "@sha256:", "Notes", "a--b",
		"notes@sha256:" + strings.Repeat("AB", 32), "notes@md5:00", "notes@sha256:" + strings.Repeat("a", 65), "../x", "x@y@z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sk, err := ParseSkill(s)
		if err != nil {
			return
		}
		if skill.ValidateName(sk.Name) != nil {
			t.Fatalf("%q: name %q accepted", s, sk.Name)
		}
		back := sk.Name
		if sk.Digest != "" {
			if !warden.ValidDigest(sk.Digest) {
				t.Fatalf("%q: digest %q accepted", s, sk.Digest)
			}
			back += "@" + sk.Digest
		}
		if back != s {
			t.Fatalf("%q parsed as %+v", s, sk)
		}
	})
}
