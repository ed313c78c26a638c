package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRun runs `warden run` against a real server: the command's exit code passes through,
// a suspension kills the sandbox at once (exit 125), and a suspended agent cannot start one.
func TestRun(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("warden run's tests run as root, like CI")
	}
	dir := t.TempDir()
	addr := freePort(t)
	serve(t, dir, addr)
	env := []string{"WARDEN_ADDR=http://" + addr}
	out, errOut, code := run(t, dir, env, "agent", "create", "bot", "--owner", "a@example.com", "--purpose", "e2e", "--json")
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
	agentEnv := append(env, "WARDEN_CLIENT_ID="+created.ClientID, "WARDEN_CLIENT_SECRET="+created.ClientSecret)
	ws := t.TempDir()

	out, errOut, code = run(t, dir, agentEnv, "run", "--agent", "bot", "--workspace", ws, "--",
		"/bin/sh", "-c", `echo "in $PWD as $(id -u), WARDEN_URL=$WARDEN_URL, secret=${WARDEN_CLIENT_SECRET:-none}"; exit 7`)
	if code != 7 || !strings.Contains(out, "in "+ws) || !strings.Contains(out, "WARDEN_URL=http://127.0.0.1:") || !strings.Contains(out, "secret=none") {
		t.Fatalf("warden run: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if strings.TrimSpace(errOut) != "" {
		t.Errorf("warden run said something of its own for a command that exited 7: %q", errOut)
	}

	// A command that does not exist: 127, as a shell would say, and said once.
	for cmd, want := range map[string]string{
		"no-such-command": "warden: command not found in the sandbox: no-such-command\n",
		"/no/such/path":   "warden: command not found in the sandbox: /no/such/path: no such file or directory\n",
	} {
		_, errOut, code = run(t, dir, agentEnv, "run", "--agent", "bot", "--workspace", ws, "--", cmd)
		if code != 127 || errOut != want {
			t.Fatalf("missing command: exit %d, stderr %q, want %q", code, errOut, want)
		}
	}
	_, errOut, code = run(t, dir, agentEnv, "run", "--agent", "bot", "--workspace", "/no/such/dir", "--", "true")
	if want := "warden: /no/such/dir: no such file or directory\n"; code != 2 || errOut != want {
		t.Fatalf("missing workspace: exit %d, stderr %q, want %q", code, errOut, want)
	}

	// Suspending the agent kills its sandbox.
	cmd := exec.Command(binary, "run", "--agent", "bot", "--workspace", ws, "--", "/bin/sh", "-c", "sleep 60 & sleep 60")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "WARDEN_TOKEN=", "WARDEN_DATA="), agentEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	start := time.Now()
	if _, errOut, code := run(t, dir, env, "agent", "suspend", "bot", "--reason", "e2e"); code != 0 {
		t.Fatalf("suspend: %s", errOut)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(stderr.String(), "killed") {
			t.Fatalf("after suspension: %v, stderr %q", err, stderr.String())
		}
		t.Logf("suspension to sandbox gone: %s; %s", time.Since(start), strings.TrimSpace(stderr.String()))
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the sandbox outlived the agent's suspension; stderr %q", stderr.String())
	}

	// The runner reported the sandbox's end and deregistered, although the agent's tokens died
	// with the suspension: both carry the runner's own secret.
	out, errOut, code = run(t, dir, env, "audit", "search", "--type", "sandbox.terminated", "--json")
	if code != 0 || !strings.Contains(out, `"sandbox.terminated"`) || !strings.Contains(out, created.ClientID) {
		t.Errorf("no sandbox.terminated event of the agent after the suspension: exit %d, %s %s", code, out, errOut)
	}
	if strings.Contains(out, "wrun_") {
		t.Error("the runner's secret is in the audit log")
	}
	out, errOut, code = run(t, dir, env, "audit", "search", "--type", "token.refuse", "--json")
	if code != 0 || strings.Contains(out, "/v1/runners/") {
		t.Errorf("the runner's report or deregistration was refused: exit %d, %s %s", code, out, errOut)
	}

	// A suspended agent cannot start a sandbox.
	_, errOut, code = run(t, dir, agentEnv, "run", "--agent", "bot", "--workspace", ws, "--", "/bin/true")
	if code != 3 {
		t.Fatalf("suspended agent: exit %d, stderr %q", code, errOut)
	}
}
