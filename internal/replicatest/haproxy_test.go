package replicatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

// shippedHAProxy is the load balancer configuration deploy/ ships.
const shippedHAProxy = "../../deploy/haproxy.cfg"

func haproxyBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed (apt-get install haproxy; .ci/run installs it): the load balancer tests need it")
	}
	return bin
}

// TestShippedHAProxyConfigParses: haproxy itself accepts deploy/haproxy.cfg, with no warning
// but the addresses of the compose services, which resolve only inside compose.
func TestShippedHAProxyConfigParses(t *testing.T) {
	bin := haproxyBinary(t)
	out, err := exec.Command(bin, "-c", "-f", shippedHAProxy).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c -f deploy/haproxy.cfg: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if (strings.Contains(line, "WARNING") || strings.Contains(line, "ALERT")) && !strings.Contains(line, "could not resolve address") {
			t.Errorf("haproxy warns about deploy/haproxy.cfg: %s", line)
		}
	}
}

var (
	bindRE   = regexp.MustCompile(`(?m)^(\s*bind\s+)\S+`)
	serverRE = regexp.MustCompile(`(?m)^(\s*server\s+r(\d+)\s+)\S+`)
)

// haproxyConfig is deploy/haproxy.cfg with only its addresses changed: it listens on listen and
// its servers r1, r2, … are the fleet's replicas.
func haproxyConfig(t *testing.T, f *Fleet, listen string) string {
	t.Helper()
	data, err := os.ReadFile(shippedHAProxy)
	if err != nil {
		t.Fatal(err)
	}
	cfg := bindRE.ReplaceAllString(string(data), "${1}"+listen)
	servers := 0
	cfg = serverRE.ReplaceAllStringFunc(cfg, func(line string) string {
		m := serverRE.FindStringSubmatch(line)
		var n int
		fmt.Sscan(m[2], &n)
		if n < 1 || n > len(f.Replicas) {
			t.Fatalf("deploy/haproxy.cfg names server r%d; the fleet has %d replicas", n, len(f.Replicas))
		}
		servers++
		return m[1] + f.Replicas[n-1].Listen
	})
	if servers != len(f.Replicas) {
		t.Fatalf("deploy/haproxy.cfg has %d servers; the fleet has %d replicas", servers, len(f.Replicas))
	}
	return cfg
}

// startHAProxy runs haproxy in front of the fleet until t ends and returns its URL once it
// answers /readyz.
func startHAProxy(t *testing.T, f *Fleet) string {
	t.Helper()
	bin := haproxyBinary(t)
	listen := freeAddr(t)
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(haproxyConfig(t, f, listen)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &logs}, lockedWriter{&mu, &logs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			mu.Lock()
			t.Logf("haproxy log:\n%s", logs.String())
			mu.Unlock()
		}
	})
	base := "http://" + listen
	deadline := time.Now().Add(15 * time.Second)
	for !ready(base) {
		select {
		case <-done:
			t.Fatalf("haproxy exited: %s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("haproxy did not pass /readyz through within 15 s")
		}
	}
	return base
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSessionsBehindHAProxy runs deploy/haproxy.cfg in front of three replicas: many MCP
// sessions of the official Go SDK client through it all succeed, every request of a session
// lands on the replica that opened it, and the sessions spread over the replicas. A replica
// asked for a session it does not hold answers 404, and a client whose replica went away opens
// a new session through the load balancer.
func TestSessionsBehindHAProxy(t *testing.T) {
	f := Start(t, Options{})
	lb := startHAProxy(t, f)
	ctx := t.Context()
	up := StartUpstream(t)
	a := f.Setup(ctx, up, "balanced")[0]
	token := f.AgentToken(ctx, 0, a)
	for i := range f.Replicas {
		if err := f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("sticky", func(t *testing.T) {
		const sessions, calls = 30, 4
		errs := make(chan error, sessions)
		sem := make(chan struct{}, 6)
		var wg sync.WaitGroup
		for s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				errs <- session(ctx, lb+"/mcp", token, s, calls)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		where := sessionReplicas(t, f, a.Name)
		used := map[string]bool{}
		for s := range sessions {
			reps := where[fmt.Sprintf("s%d", s)]
			if len(reps) != 1 {
				t.Errorf("session s%d's calls landed on %v, want exactly one replica", s, reps)
			}
			for r := range reps {
				used[r] = true
			}
		}
		if len(used) < 2 {
			t.Errorf("%d sessions all landed on %v: the load balancer did not spread them", sessions, used)
		}
	})

	t.Run("unknown session is 404", func(t *testing.T) {
		cs, err := MCPConnect(ctx, f.Replicas[0].URL+"/mcp", token)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		status := postWithSession(t, f.Replicas[1].URL+"/mcp", token, cs.ID())
		if status != http.StatusNotFound {
			t.Errorf("r2 asked for r1's session answered %d, want 404 (MCP: the client must start a new session)", status)
		}
	})

	t.Run("client reinitialises after its replica is gone", func(t *testing.T) {
		cs, err := MCPConnect(ctx, lb+"/mcp", token)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		if err := call(ctx, cs, "failover-1"); err != nil {
			t.Fatal(err)
		}
		var holder int = -1
		for r := range sessionReplicas(t, f, a.Name)["failover"] {
			for i, rep := range f.Replicas {
				if rep.ID == r {
					holder = i
				}
			}
		}
		if holder < 0 {
			t.Fatal("no audit event names the replica of the session")
		}
		f.Stop(holder)
		err = call(ctx, cs, "failover-2")
		if err == nil {
			t.Fatalf("a call in a session whose replica (%s) stopped succeeded", f.Replicas[holder].ID)
		}
		// What the Go SDK client does with the 404: it ends the call with an error and the
		// session with it; the agent opens a new one, which the load balancer sends elsewhere.
		t.Logf("the SDK client's call after its replica stopped: %v", err)
		cs2, err := MCPConnect(ctx, lb+"/mcp", token)
		if err != nil {
			t.Fatalf("a new session through the load balancer after %s stopped: %v", f.Replicas[holder].ID, err)
		}
		defer cs2.Close()
		if err := call(ctx, cs2, "failover-3"); err != nil {
			t.Errorf("a call in the new session: %v", err)
		}
	})
}

// session opens an MCP session at endpoint and calls echo calls times with the text s<n>-<i>.
func session(ctx context.Context, endpoint, token string, n, calls int) error {
	cs, err := MCPConnect(ctx, endpoint, token)
	if err != nil {
		return fmt.Errorf("session s%d: %w", n, err)
	}
	defer cs.Close()
	for i := range calls {
		if err := call(ctx, cs, fmt.Sprintf("s%d-%d", n, i)); err != nil {
			return fmt.Errorf("session s%d: %w", n, err)
		}
	}
	return nil
}

func call(ctx context.Context, cs *mcp.ClientSession, text string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: MCPTool + ".echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		return fmt.Errorf("call %s: %w", text, err)
	}
	if res.IsError {
		var msg []string
		for _, c := range res.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				msg = append(msg, tc.Text)
			}
		}
		return fmt.Errorf("call %s: the tool answered an error: %s", text, strings.Join(msg, "; "))
	}
	return nil
}

// sessionReplicas maps the session named in each allowed echo call's text (the part before the
// last '-') to the replicas that recorded the call.
func sessionReplicas(t *testing.T, f *Fleet, agent string) map[string]map[string]bool {
	t.Helper()
	evs, _, err := f.Client(0).AuditEvents(t.Context(), url.Values{"type": {warden.EventToolCall}, "agent": {agent}, "tool": {MCPTool}, "decision": {warden.EffectAllow}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, ev := range evs {
		var args struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(ev.Target.Arguments, &args) != nil || args.Text == "" {
			continue
		}
		s := args.Text[:max(strings.LastIndexByte(args.Text, '-'), 0)]
		if out[s] == nil {
			out[s] = map[string]bool{}
		}
		out[s][ev.Actor.Replica] = true
	}
	return out
}

// postWithSession sends tools/list in the session id to endpoint and returns the status.
func postWithSession(t *testing.T, endpoint, token, id string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", id)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
