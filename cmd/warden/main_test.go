package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "warden")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		panic("go build: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer is written by the process's output copier while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serve starts `warden serve` in dir and waits until it is ready.
func serve(t *testing.T, dir, addr string, extra ...string) (*exec.Cmd, *lockedBuffer, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", addr}, extra...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WARDEN_DATA=", "WARDEN_STORE=", "WARDEN_MASTER_KEY=")
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd, stdout, stderr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server not ready; stderr:\n%s", stderr.String())
	return nil, nil, nil
}

func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("warden serve exited with %v after SIGTERM", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("warden serve did not stop on SIGTERM")
	}
}

func run(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "WARDEN_TOKEN=", "WARDEN_DATA=", "WARDEN_ADDR="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

// TestServeDefaults runs the binary as the README does: data in ./warden-data, SQLite there,
// the first admin token printed once and saved 0600, JSON logs when not on a terminal, a clean
// exit on SIGTERM, and nothing created again on the second start.
func TestServeDefaults(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	cmd, stdout, stderr := serve(t, dir, addr)
	data := filepath.Join(dir, "warden-data")
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), strings.TrimSpace(string(token))) {
		t.Fatalf("the first start must print the admin token; stdout:\n%s", stdout)
	}
	for _, f := range []string{"warden.db", "master.key", "admin.token"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f != "warden.db" && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	env := []string{"WARDEN_ADDR=http://" + addr}
	out, errOut, code := run(t, dir, env, "agent", "create", "bot", "--owner", "a@example.com", "--purpose", "e2e", "--json")
	if code != 0 {
		t.Fatalf("agent create: exit %d: %s", code, errOut)
	}
	var created struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ClientSecret == "" {
		t.Fatalf("agent create --json: %v: %s", err, out)
	}
	out, _, code = run(t, dir, env, "agent", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "bot") || !strings.Contains(out, "active") {
		t.Fatalf("agent list: exit %d:\n%s", code, out)
	}
	// Errors: one line on stderr, a documented exit code.
	_, errOut, code = run(t, dir, env, "agent", "show", "ghost")
	if code != 4 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "not found") {
		t.Fatalf("show unknown: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, dir, env, "agent", "create", "Bad Name", "--owner", "a@example.com", "--purpose", "x")
	if code != 2 || !strings.Contains(errOut, "invalid agent name") {
		t.Fatalf("bad name: exit %d, stderr %q", code, errOut)
	}
	_, _, code = run(t, dir, []string{"WARDEN_ADDR=http://" + addr, "WARDEN_TOKEN=wadm_nope"}, "agent", "list")
	if code != 3 {
		t.Fatalf("bad token: exit %d", code)
	}
	_, errOut, code = run(t, dir, []string{"WARDEN_ADDR=http://" + freePort(t)}, "agent", "list")
	if code != 6 || !strings.Contains(errOut, "cannot reach warden") {
		t.Fatalf("no server: exit %d, stderr %q", code, errOut)
	}

	stop(t, cmd)
	// Logs are JSON lines (stderr is not a terminal) and hold no secret.
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	lines := 0
	for sc.Scan() {
		lines++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("log line is not JSON: %s", sc.Text())
		}
	}
	if lines == 0 {
		t.Error("no log lines")
	}
	for _, secret := range []string{strings.TrimSpace(string(token)), created.ClientSecret} {
		if strings.Contains(stderr.String(), secret) {
			t.Error("a secret is in the log")
		}
	}

	cmd, stdout, _ = serve(t, dir, addr)
	if strings.Contains(stdout.String(), "wadm_") {
		t.Fatal("the second start printed a new admin token")
	}
	again, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	if !bytes.Equal(again, token) {
		t.Fatal("admin.token changed on the second start")
	}
	stop(t, cmd)
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ntokens:\n  ttl: 5m\n  colour: blue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, dir, nil, "serve", "--config", cfg)
	if code != 2 || !strings.Contains(errOut, `unknown key "colour"`) || !strings.Contains(errOut, "line 4") {
		t.Fatalf("unknown key: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, dir, nil, "serve", "--store", "mysql://x")
	if code != 2 || !strings.Contains(errOut, "sqlite:PATH or a postgres:// URL") {
		t.Fatalf("bad store: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, dir, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut)
	}
	out, _, code := run(t, dir, nil, "help")
	if code != 0 || !strings.Contains(out, "agent create") {
		t.Fatalf("help: exit %d\n%s", code, out)
	}
}
