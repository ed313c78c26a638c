package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/server"
)

// switchableFleet is the fleet of one replica whose feed the test can declare down and stale:
// the real feed is engineer A's fleet.Postgres, tested there; here only Stale matters.
type switchableFleet struct {
	*fleet.Local
	stale atomic.Bool
}

func (f *switchableFleet) Stale(time.Time) bool { return f.stale.Load() }

// addNotes registers the MCP upstream as tool "notes", granted to the canary.
func addNotes(t *testing.T, env *killEnv, mup *mcpUpstream) {
	t.Helper()
	in := env.in
	if _, err := in.cli(in.admin, "tool", "add", "notes", "--mcp", mup.url, "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "notes.cedar", `permit(principal == Agent::"canary", action in Action::"notes", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
}

// callText is what a tools/call answered, error or result, as text.
func callText(cs *mcp.ClientSession, name string, args map[string]any) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		return "error: " + b.String()
	}
	return b.String()
}

// TestStaleStateRefusesEveryEntryPoint: while the fleet says this replica's kill state is stale,
// every entry point refuses every call with stale_state and /readyz is not ready; once fresh
// again, calls go through.
func TestStaleStateRefusesEveryEntryPoint(t *testing.T) {
	t.Parallel()
	f := &switchableFleet{Local: fleet.NewLocal("replica-a", "", "test", time.Now())}
	env := newKillEnvWith(t, t.TempDir(), nil, func(s *server.Server) {
		s.Pipeline.Fresh = f
		s.API.Fleet = f
	})
	in := env.in
	mup := newMCPUpstream(t)
	addNotes(t, env, mup)
	aggregate := mcpConnect(t, in.url+"/mcp", env.token)
	direct := mcpConnect(t, in.url+"/mcp/notes", env.token)

	hi := map[string]any{"message": "hi"}
	f.stale.Store(true)
	if r := in.gw("GET", "/http/api/fast", env.token, "", nil); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), warden.ReasonStaleState) {
		t.Errorf("/http while stale: %d %s", r.status, r.body)
	}
	r := in.gw("POST", "/v1/authorize", env.token, `{"tool":"api","action":"fast"}`, map[string]string{"Content-Type": "application/json"})
	if d := r.json(t); r.status != 200 || d["reason"] != warden.ReasonStaleState || d["effect"] != warden.EffectError {
		t.Errorf("/v1/authorize while stale: %d %s", r.status, r.body)
	}
	for name, got := range map[string]string{"/mcp": callText(aggregate, "notes.echo", hi), "/mcp/notes": callText(direct, "echo", hi)} {
		if !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "cannot confirm its kill state is current") {
			t.Errorf("%s while stale answered %q", name, got)
		}
	}
	ready := in.do("GET", "/readyz", nil, "")
	checks, _ := ready.json(t)["checks"].(map[string]any)
	if ready.status != http.StatusServiceUnavailable || !strings.HasPrefix(fmt.Sprint(checks["kill_state"]), "stale") {
		t.Errorf("/readyz while stale: %d %s", ready.status, ready.body)
	}
	stale := 0
	for _, ev := range in.events("type=tool.call&agent=canary&limit=100") {
		if ev.Decision.Reason == warden.ReasonStaleState {
			stale++
		}
	}
	if stale != 4 {
		t.Errorf("%d refusals recorded with stale_state, want 4", stale)
	}

	f.stale.Store(false)
	if r := in.gw("GET", "/http/api/fast", env.token, "", nil); r.status != 200 {
		t.Errorf("/http once fresh: %d %s", r.status, r.body)
	}
	if got := callText(aggregate, "notes.echo", hi); got != "echo: hi" {
		t.Errorf("/mcp once fresh answered %q", got)
	}
	if ready := in.do("GET", "/readyz", nil, ""); ready.status != 200 {
		t.Errorf("/readyz once fresh: %d %s", ready.status, ready.body)
	}
}

// TestRemoteKillEndsWorkHere: another replica kills the agent — it writes the store and
// announces the change — and this replica's Handler (which the fleet calls on the
// announcement) aborts the agent's long call at the upstream, closes its MCP session, stops
// its sandbox, and refuses its next call. The poll is slowed down so that only the Handler can
// have done it.
func TestRemoteKillEndsWorkHere(t *testing.T) {
	t.Parallel()
	env := newKillEnvWith(t, t.TempDir(), func(c *config.Config) {
		c.Tokens.RefreshInterval = config.Duration(time.Hour)
		c.KillSwitch.MaxStaleness = config.Duration(time.Minute)
	}, nil)
	in := env.in
	mup := newMCPUpstream(t)
	addNotes(t, env, mup)
	cs := mcpConnect(t, in.url+"/mcp", env.token)
	mcpDone := make(chan string, 1)
	go func() { mcpDone <- callText(cs, "notes.slow", map[string]any{}) }()
	httpDone := make(chan int, 1)
	go func() { httpDone <- in.gw("GET", "/http/api/slow", env.token, "", nil).status }()
	for name, ch := range map[string]chan struct{}{"HTTP": env.received, "MCP": mup.started} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("the slow %s call never reached the upstream", name)
		}
	}
	terminated := connectRunner(t, in, env.token)

	ctx := context.Background()
	killed, err := in.srv.Store.UpdateAgent(ctx, "canary", func(a *warden.Agent) error {
		a.Status, a.StatusReason, a.Epoch, a.SecretHash = warden.AgentKilled, "killed on replica b", a.Epoch+1, nil
		a.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	handle := in.srv.Kill.Handler(in.srv.Identity, nil)
	applied, err := handle(ctx, fleet.Change{Topic: fleet.TopicAgent, Name: killed.ID, Version: 1, Replica: "replica-b"})
	if err != nil {
		t.Fatal(err)
	}
	if applied.CallsCancelled < 2 || applied.SessionsClosed != 1 || applied.SandboxesStopped != 1 {
		t.Errorf("applied %+v; want both calls, the session and the sandbox", applied)
	}
	for name, ch := range map[string]chan struct{}{"HTTP": env.canceled, "MCP": mup.canceled} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Errorf("the %s upstream never saw its call aborted", name)
		}
	}
	select {
	case reason := <-terminated:
		if !strings.Contains(reason, "killed on replica b") {
			t.Errorf("the runner was told %q", reason)
		}
	case <-time.After(5 * time.Second):
		t.Error("the runner was never told to stop")
	}
	if status := <-httpDone; status == 200 {
		t.Error("the aborted HTTP call reported success")
	}
	<-mcpDone
	if r := in.gw("GET", "/http/api/fast", env.token, "", nil); r.status == 200 || !strings.Contains(string(r.body), "killed") {
		t.Errorf("a call after the remote kill: %d %s", r.status, r.body)
	}
}

// connectRunner registers a sandbox of the agent and opens its control channel; the channel
// returned receives the reason of the terminate event.
func connectRunner(t *testing.T, in *instance, token string) <-chan string {
	t.Helper()
	return connectRunnerBody(t, in, token, `{"hostname":"h","pid":1,"command":"sh"}`)
}

// connectRunnerBody is connectRunner with the registration's body.
func connectRunnerBody(t *testing.T, in *instance, token, body string) <-chan string {
	t.Helper()
	r := in.gw("POST", "/v1/runners", token, body, map[string]string{"Content-Type": "application/json"})
	if r.status != http.StatusCreated {
		t.Fatalf("registering a runner: %d %s", r.status, r.body)
	}
	var reg apitype.RunnerRegistered
	if err := json.Unmarshal(r.body, &reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", in.url+"/v1/runners/"+reg.ID+"/control", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("control channel: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	// The first lease says the channel is connected, so a terminate cannot come before it.
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data:") {
	}
	out := make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if e, ok := strings.CutPrefix(line, "event: "); ok {
				event = e
			}
			if d, ok := strings.CutPrefix(line, "data: "); ok && event == "terminate" {
				var c apitype.RunnerControl
				_ = json.Unmarshal([]byte(d), &c)
				out <- c.Reason
				return
			}
		}
	}()
	return out
}

// TestReplicasCommand: `warden replicas` lists the fleet (here, the one replica), for every
// role that reads; --json gives apitype.Replicas.
func TestReplicasCommand(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), func(c *config.Config) { c.ReplicaID = "replica-one" })
	out, err := in.cli(in.admin, "replicas")
	if err != nil {
		t.Fatalf("replicas: %v\n%s", err, out)
	}
	for _, want := range []string{"ID", "HEARTBEAT", "APPLIED", "LAG", "FRESH", "replica-one *"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	var rs apitype.Replicas
	in.cliJSON(in.admin, &rs, "replicas")
	if len(rs.Replicas) != 1 || rs.Replicas[0].ID != "replica-one" || !rs.Replicas[0].Self || !rs.Replicas[0].Live || !rs.Replicas[0].Fresh {
		t.Errorf("replicas %+v", rs)
	}
	// A kill prints what each replica did, this one first; --json carries them.
	createAgent(t, in, "bot")
	out, err = in.cli(in.admin, "kill", "bot", "--reason", "test")
	if err != nil || !strings.Contains(out, "REPLICA") || !strings.Contains(out, "replica-one") || !strings.Contains(out, "acknowledged") {
		t.Errorf("kill output lacks the replicas: %v\n%s", err, out)
	}
	var r apitype.KillReport
	in.cliJSON(in.admin, &r, "lockdown", "--reason", "test")
	if r.Version == 0 || len(r.Replicas) != 1 || r.Replicas[0].ID != "replica-one" || !r.Replicas[0].Acked {
		t.Errorf("lockdown report: version %d, replicas %+v", r.Version, r.Replicas)
	}
	if _, err := in.cli(in.admin, "tool", "add", "notes", "--mcp", "http://127.0.0.1:1/mcp", "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	var disabled apitype.ToolDisabled
	in.cliJSON(in.admin, &disabled, "tool", "disable", "notes", "--reason", "broken")
	if len(disabled.Replicas) != 1 || disabled.Replicas[0].ID != "replica-one" || !disabled.Replicas[0].Acked {
		t.Errorf("tool disable: replicas %+v", disabled.Replicas)
	}
	var created struct{ Token string }
	in.cliJSON(in.admin, &created, "admin", "token", "create", "audrey", "--role", "auditor")
	if out, err := in.cli(created.Token, "replicas"); err != nil {
		t.Errorf("an auditor may list the replicas: %v\n%s", err, out)
	}
}
