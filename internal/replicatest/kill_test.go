package replicatest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/apitype"
)

// cancelBound is how long after a command returns a remote replica's upstream may take to see
// its call aborted: the target is 100 ms at p99; the bound leaves room for a loaded
// machine, the figure is logged.
const cancelBound = time.Second

// scene is an agent at work on every replica but the first: a call blocked at the upstream
// through r2 and r3 each, and an MCP session on r2 with a call blocked in it. The command under
// test is sent to r1.
type scene struct {
	t     *testing.T
	f     *Fleet
	up    *Upstream
	agent *Agent
	token string

	session *mcp.ClientSession // on r2
	mcpDone chan error         // the MCP call's end
	sandbox *Sandbox           // `warden run -- sleep 600` through r2; nil when not root
	calls   sync.WaitGroup
	stop    context.CancelFunc
}

func newScene(t *testing.T) *scene {
	f := Start(t, Options{})
	ctx := t.Context()
	s := &scene{t: t, f: f, up: StartUpstream(t), mcpDone: make(chan error, 1)}
	s.agent = f.Setup(ctx, s.up, "victim")[0]
	s.token = f.AgentToken(ctx, 0, s.agent)
	for i := range f.Replicas {
		if err := f.WaitEcho(ctx, i, s.token, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	}
	callCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = stop
	t.Cleanup(func() {
		stop()
		if s.session != nil {
			s.session.Close()
		}
		s.calls.Wait()
	})
	for _, i := range []int{1, 2} {
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			_, _, _ = Get(callCtx, &http.Client{}, f.Replicas[i].URL+"/http/"+HTTPTool+"/block?id="+blockID(f, i), s.token)
		}()
	}
	var err error
	if s.session, err = MCPConnect(ctx, f.Replicas[1].URL+"/mcp", s.token); err != nil {
		t.Fatalf("MCP session on r2: %v", err)
	}
	s.calls.Add(1)
	go func() {
		defer s.calls.Done()
		_, err := s.session.CallTool(callCtx, &mcp.CallToolParams{Name: MCPTool + ".block", Arguments: map[string]any{"id": "mcp-r2"}})
		s.mcpDone <- err
	}()
	if os.Geteuid() == 0 {
		s.sandbox = f.RunSandbox(1, s.agent, "sleep", "600")
		if err := waitRunner(ctx, f, 1, s.agent.Name, s.sandbox); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: no sandbox (warden run needs root here)")
	}
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, id := range []string{blockID(f, 1), blockID(f, 2), "mcp-r2"} {
		if err := s.up.WaitStarted(waitCtx, id); err != nil {
			t.Fatalf("the blocking call %s never reached the upstream: %v", id, err)
		}
	}
	return s
}

func blockID(f *Fleet, i int) string { return "http-" + f.Replicas[i].ID }

// waitRunner waits up to 20 s until replica i lists the agent's sandbox as connected.
func waitRunner(ctx context.Context, f *Fleet, i int, agent string, sb *Sandbox) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		runners, err := f.Client(i).Runners(ctx)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(runners, func(r apitype.RunnerInfo) bool { return r.Agent == agent && r.Connected }) {
			return nil
		}
		select {
		case <-sb.Done:
			log, _ := os.ReadFile(sb.Log)
			return fmt.Errorf("warden run for %s through %s exited before it registered:\n%s", agent, f.Replicas[i].ID, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warden run for %s did not register with %s within 20 s", agent, f.Replicas[i].ID)
		}
	}
}

// checkSandboxStopped checks that r2 reports it told the sandbox through it to stop before it
// acknowledged, and that the sandbox ended.
func (s *scene) checkSandboxStopped(what string, acks []apitype.ReplicaAck) {
	s.t.Helper()
	if s.sandbox == nil {
		return
	}
	if i := slices.IndexFunc(acks, func(a apitype.ReplicaAck) bool { return a.ID == s.f.Replicas[1].ID }); i < 0 || acks[i].SandboxesStopped < 1 {
		s.t.Errorf("%s: the report does not say r2 stopped the sandbox through it: %+v", what, acks)
	}
	select {
	case <-s.sandbox.Done:
	case <-time.After(5 * time.Second):
		s.t.Errorf("%s: the sandbox through r2 still runs 5 s after the command returned", what)
	}
}

// checkAcks checks that the report names every other replica as having acknowledged the
// change, and this one if it names itself.
func (s *scene) checkAcks(what string, acks []apitype.ReplicaAck) {
	s.t.Helper()
	for _, r := range s.f.Replicas[1:] {
		i := slices.IndexFunc(acks, func(a apitype.ReplicaAck) bool { return a.ID == r.ID })
		switch {
		case i < 0:
			s.t.Errorf("%s: the report's replicas do not name %s: %+v", what, r.ID, acks)
		case !acks[i].Acked:
			s.t.Errorf("%s: %s did not acknowledge: %+v", what, r.ID, acks[i])
		default:
			s.t.Logf("%s: %s acknowledged in %.1f ms (calls cancelled %d, sessions closed %d)", what, r.ID, acks[i].AckedMS, acks[i].CallsCancelled, acks[i].SessionsClosed)
		}
	}
	for _, a := range acks {
		if a.ID == s.f.Replicas[0].ID && !a.Acked {
			s.t.Errorf("%s: the replica that heard it reports itself not acknowledged: %+v", what, a)
		}
	}
}

// checkAborted checks that the upstream saw the blocked calls through r2 and r3 aborted, and
// the MCP one too when mcp.
func (s *scene) checkAborted(what string, sent time.Time, mcp bool) {
	s.t.Helper()
	ids := []string{blockID(s.f, 1), blockID(s.f, 2)}
	if mcp {
		ids = append(ids, "mcp-r2")
	}
	ctx, cancel := context.WithTimeout(s.t.Context(), cancelBound)
	defer cancel()
	for _, id := range ids {
		at, err := s.up.WaitCancelled(ctx, id)
		if err != nil {
			s.t.Errorf("%s: the upstream did not see the call %s aborted within %s of the command returning", what, id, cancelBound)
			continue
		}
		s.t.Logf("%s: %s aborted at the upstream %.1f ms after the command was sent", what, id, float64(at.Sub(sent).Microseconds())/1000)
	}
}

// checkRefusedEverywhere checks that a call of the agent is refused on every replica at once,
// with no waiting: the command has returned.
func (s *scene) checkRefusedEverywhere(what, token string) {
	s.t.Helper()
	for i, r := range s.f.Replicas {
		status, body, err := s.f.Echo(s.t.Context(), i, token)
		if err != nil || status == http.StatusOK {
			s.t.Errorf("%s: a call through %s right after the command returned: %d %s %v (want it refused)", what, r.ID, status, body, err)
		}
	}
}

// checkSessionClosed checks that r2's MCP session ended: its blocked call returned and the
// session no longer answers.
func (s *scene) checkSessionClosed(what string) {
	s.t.Helper()
	select {
	case <-s.mcpDone:
	case <-time.After(cancelBound):
		s.t.Errorf("%s: the MCP call on r2 did not end within %s", what, cancelBound)
		return
	}
	ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.session.ListTools(ctx, nil); err == nil {
		s.t.Errorf("%s: r2's MCP session still answers", what)
	}
}

// checkNoNewSession checks that no replica opens an MCP session for the agent.
func (s *scene) checkNoNewSession(what, token string) {
	s.t.Helper()
	for _, r := range s.f.Replicas {
		cs, err := MCPConnect(s.t.Context(), r.URL+"/mcp", token)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(s.t.Context(), 5*time.Second)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: MCPTool + ".echo", Arguments: map[string]any{"text": "after"}})
		cancel()
		cs.Close()
		if err == nil && !res.IsError {
			s.t.Errorf("%s: a new MCP session on %s called a tool", what, r.ID)
		}
	}
}

// TestKillHoldsOnEveryReplica: the kill is sent to r1; the agent's calls in flight on r2 and r3
// are aborted at the upstream, its MCP session and its sandbox (as root) on r2 are closed and
// stopped, every replica has acknowledged when the command returns, and no replica allows the
// agent anything after. Restore gives it
// back, with a new credential, on every replica.
func TestKillHoldsOnEveryReplica(t *testing.T) {
	s := newScene(t)
	ctx := t.Context()
	// Through the CLI, as a person would: `warden kill` sent to r1.
	sent := time.Now()
	out, err := s.f.CLI(0, "kill", "--reason", "replicatest: kill across replicas", "--json", s.agent.Name)
	if err != nil {
		t.Fatalf("warden kill through r1: %v", err)
	}
	t.Logf("warden kill returned in %.1f ms (a process start included)", float64(time.Since(sent).Microseconds())/1000)
	var rep apitype.KillReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("warden kill --json: %v\n%s", err, out)
	}
	s.checkRefusedEverywhere("kill", s.token)
	s.checkAcks("kill", rep.Replicas)
	s.checkAborted("kill", sent, true)
	s.checkSessionClosed("kill")
	s.checkSandboxStopped("kill", rep.Replicas)
	s.checkNoNewSession("kill", s.token)

	restored, err := s.f.Client(0).RestoreAgent(ctx, s.agent.Name, "replicatest: restore")
	if err != nil {
		t.Fatalf("restore through r1: %v", err)
	}
	a := &Agent{Name: s.agent.Name, ClientID: restored.ClientID, Secret: restored.ClientSecret}
	token := s.f.AgentToken(ctx, 1, a)
	for i := range s.f.Replicas {
		if err := s.f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			t.Errorf("after restore: %v", err)
		}
	}
	s.checkRefusedEverywhere("restore (the token from before the kill)", s.token)
}

// TestLockdownHoldsOnEveryReplica: a lockdown sent to r1 holds on every replica when it returns,
// aborts the calls in flight on r2 and r3, closes r2's MCP session and stops its sandbox; its
// lift lets calls
// through again everywhere.
func TestLockdownHoldsOnEveryReplica(t *testing.T) {
	s := newScene(t)
	ctx := t.Context()
	sent := time.Now()
	rep, err := s.f.Client(0).Lockdown(ctx, apitype.LockdownRequest{Reason: "replicatest: lockdown across replicas"})
	if err != nil {
		t.Fatalf("lockdown through r1: %v", err)
	}
	s.checkRefusedEverywhere("lockdown", s.token)
	s.checkAcks("lockdown", rep.Replicas)
	s.checkAborted("lockdown", sent, true)
	s.checkSessionClosed("lockdown")
	s.checkSandboxStopped("lockdown", rep.Replicas)

	if _, err := s.f.Client(0).LiftLockdown(ctx, "replicatest: lift"); err != nil {
		t.Fatalf("lift through r1: %v", err)
	}
	for i := range s.f.Replicas {
		if err := s.f.WaitEcho(ctx, i, s.token, http.StatusOK); err != nil {
			t.Errorf("after the lift: %v", err)
		}
	}
}

// TestToolDisableHoldsOnEveryReplica: disabling the HTTP tool through r1 refuses it on every
// replica when the command returns and aborts its calls in flight on r2 and r3; enabling it
// lets it through again everywhere.
func TestToolDisableHoldsOnEveryReplica(t *testing.T) {
	s := newScene(t)
	ctx := t.Context()
	sent := time.Now()
	if _, err := s.f.Client(0).DisableTool(ctx, HTTPTool, "replicatest: disable across replicas"); err != nil {
		t.Fatalf("tool disable through r1: %v", err)
	}
	s.checkRefusedEverywhere("tool disable", s.token)
	s.checkAborted("tool disable", sent, false)

	if _, err := s.f.Client(0).EnableTool(ctx, HTTPTool, "replicatest: enable"); err != nil {
		t.Fatalf("tool enable through r1: %v", err)
	}
	for i := range s.f.Replicas {
		if err := s.f.WaitEcho(ctx, i, s.token, http.StatusOK); err != nil {
			t.Errorf("after enable: %v", err)
		}
	}
}

// TestStaleReplicaFailsClosed: r2 reaches PostgreSQL through a proxy the test cuts. With its
// feed and its polls down, r2 refuses every call with stale_state once its view is older than
// killswitch.max_staleness, and /readyz says it is not ready; when the proxy is restored it
// serves again. r1 is untouched throughout.
func TestStaleReplicaFailsClosed(t *testing.T) {
	server := Postgres(t)
	proxy := StartProxy(t, hostOf(t, server))
	f := Start(t, Options{
		Replicas: 2,
		Config:   "killswitch:\n  max_staleness: 300ms\ntokens:\n  refresh_interval: 200ms\n",
		Store: func(i int, db string) string {
			if i == 1 {
				return proxy.Through(db)
			}
			return db
		},
	})
	ctx := t.Context()
	up := StartUpstream(t)
	a := f.Setup(ctx, up, "steady")[0]
	token := f.AgentToken(ctx, 0, a)
	for i := range f.Replicas {
		if err := f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			t.Fatal(err)
		}
	}

	proxy.Cut()
	if err := waitStatus(ctx, f, 1, token, func(status int, body string) bool { return strings.Contains(body, "stale_state") }); err != nil {
		t.Errorf("r2 cut off from PostgreSQL: %v", err)
	}
	if ready(f.Replicas[1].URL) {
		t.Errorf("r2's /readyz says ready while it is cut off from PostgreSQL")
	}
	if status, body, err := f.Echo(ctx, 0, token); err != nil || status != http.StatusOK {
		t.Errorf("r1, which still reaches PostgreSQL, refused a call: %d %s %v", status, body, err)
	}

	proxy.Restore()
	if err := f.WaitEcho(ctx, 1, token, http.StatusOK); err != nil {
		t.Errorf("r2 did not recover after PostgreSQL came back: %v", err)
	}
	if !ready(f.Replicas[1].URL) {
		t.Errorf("r2's /readyz is not ready after it recovered")
	}
}

// waitStatus waits up to 10 s for a call through replica i whose answer satisfies ok.
func waitStatus(ctx context.Context, f *Fleet, i int, token string, ok func(int, string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		callCtx, cancelCall := context.WithTimeout(ctx, 2*time.Second)
		status, body, err := f.Echo(callCtx, i, token)
		cancelCall()
		if err == nil && ok(status, body) {
			return nil
		}
		if ctx.Err() == nil { // not the attempt the overall bound cut short
			last = fmt.Sprintf("%d %s %v", status, body, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer as expected within 10 s; last: %s", last)
		case <-tick.C:
		}
	}
}

func ready(base string) bool {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
