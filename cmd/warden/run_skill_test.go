package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSkills runs `warden run --skill` against a real server: a granted skill is mounted
// read-only at $HOME/.claude/skills/NAME and listed in WARDEN_SKILLS; an agent without the grant,
// or a digest that is not the skill's, gets no sandbox; quarantining the skill while a sandbox
// that mounted it runs stops that sandbox (exit 125), the quarantine's report says
// sandboxes_stopped 1, and the skill cannot be mounted again.
func TestRunSkills(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("warden run's tests run as root, like CI")
	}
	dir := t.TempDir()
	addr := freePort(t)
	serve(t, dir, addr)
	env := []string{"WARDEN_ADDR=http://" + addr}
	agentEnv := func(name string) []string {
		out, errOut, code := run(t, dir, env, "agent", "create", name, "--owner", "a@example.com", "--purpose", "e2e", "--json")
		if code != 0 {
			t.Fatalf("agent create: %s", errOut)
		}
		var created struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(out), &created); err != nil {
			t.Fatal(err)
		}
		return append(slicesClone(env), "WARDEN_CLIENT_ID="+created.ClientID, "WARDEN_CLIENT_SECRET="+created.ClientSecret)
	}
	bot, other := agentEnv("bot"), agentEnv("other")

	src := filepath.Join(t.TempDir(), "notes")
	for p, content := range map[string]string{
		"SKILL.md":       "---\nname: notes\ndescription: Take notes of a meeting.\nallowed-tools: Bash(rm:*) WebFetch\n---\n\n# Notes\n\nRun scripts/run.sh.\n",
		"scripts/run.sh": "#!/bin/sh\necho ran the skill\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := run(t, dir, env, "skill", "add", src, "--allow-unsigned", "--reason", "written for this test", "--json")
	if code != 0 {
		t.Fatalf("skill add: %s", errOut)
	}
	var added struct {
		Skill struct{ Digest string } `json:"skill"`
	}
	if err := json.Unmarshal([]byte(out), &added); err != nil || added.Skill.Digest == "" {
		t.Fatalf("skill add: %v %s", err, out)
	}
	digest := added.Skill.Digest
	if _, errOut, code := run(t, dir, env, "skill", "grant", "notes", "--agent", "bot"); code != 0 {
		t.Fatalf("skill grant: %s", errOut)
	}
	ws := t.TempDir()
	script := `cat "$HOME/.claude/skills/notes/SKILL.md"; echo "skills=$WARDEN_SKILLS"; "$HOME/.claude/skills/notes/scripts/run.sh"
if echo x > "$HOME/.claude/skills/notes/SKILL.md" || touch "$HOME/.claude/skills/notes/new"; then echo WROTE; exit 9; fi`

	out, errOut, code = run(t, dir, bot, "run", "--agent", "bot", "--workspace", ws, "--skill", "notes@"+digest, "--", "/bin/sh", "-c", script)
	if code != 0 || !strings.Contains(out, "name: notes") || !strings.Contains(out, "skills=notes@"+digest+"\n") || !strings.Contains(out, "ran the skill") {
		t.Fatalf("run --skill: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	// Not granted, a digest that is not the skill's, a skill that does not exist: no sandbox.
	for name, c := range map[string]struct {
		env   []string
		skill string
		exit  int
	}{
		"not granted":  {other, "notes", 3},
		"wrong digest": {bot, "notes@sha256:" + strings.Repeat("0", 64), 4},
		"no such":      {bot, "minutes", 3},
	} {
		agent := "bot"
		if name == "not granted" {
			agent = "other"
		}
		out, errOut, code := run(t, dir, c.env, "run", "--agent", agent, "--workspace", ws, "--skill", c.skill, "--", "/bin/sh", "-c", "echo RAN")
		if code != c.exit || strings.Contains(out, "RAN") || !strings.Contains(errOut, "skill") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a refusal before the sandbox", name, code, out, errOut)
		} else {
			t.Logf("%s: exit %d: %s", name, code, strings.TrimSpace(errOut))
		}
	}

	// Quarantine while a sandbox that mounted the skill runs: it is stopped.
	cmd := exec.Command(binary, "run", "--agent", "bot", "--workspace", ws, "--skill", "notes", "--", "/bin/sh", "-c", "sleep 60 & sleep 60")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "WARDEN_TOKEN=", "WARDEN_DATA="), bot...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Registered once GET /v1/runners lists it with its skill.
	token, err := os.ReadFile(filepath.Join(dir, "warden-data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/runners", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		var out []byte
		if resp, err := http.DefaultClient.Do(req); err == nil {
			out, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if strings.Contains(string(out), digest) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the sandbox never registered with its skill: %s; stderr %q", out, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	out, errOut, code = run(t, dir, env, "quarantine", digest, "--reason", "exfiltrates notes, INC-9", "--json")
	if code != 0 {
		t.Fatalf("quarantine: %s", errOut)
	}
	var rep struct {
		SandboxesStopped int `json:"sandboxes_stopped"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.SandboxesStopped != 1 {
		t.Errorf("quarantine report %s (%v); want sandboxes_stopped 1", out, err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(stderr.String(), "quarantined") {
			t.Fatalf("after the quarantine: %v, stderr %q", err, stderr.String())
		}
		t.Logf("quarantine to sandbox gone: %s; %s", time.Since(start), strings.TrimSpace(stderr.String()))
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the sandbox outlived the quarantine of its skill; stderr %q", stderr.String())
	}

	// Quarantined: not mounted again, by digest (409) or by name (no version left, 404).
	for skill, exit := range map[string]int{"notes@" + digest: 5, "notes": 4} {
		out, errOut, code = run(t, dir, bot, "run", "--agent", "bot", "--workspace", ws, "--skill", skill, "--", "/bin/sh", "-c", "echo RAN")
		if code != exit || strings.Contains(out, "RAN") || !strings.Contains(errOut, "quarantined") {
			t.Errorf("a quarantined skill as %s: exit %d, stdout %q, stderr %q; want exit %d", skill, code, out, errOut, exit)
		}
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
