package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/server"
)

// killEnv is a server with an HTTP tool "api" in front of an upstream whose /slow route holds a
// request until it is cancelled, and an agent granted all of it.
type killEnv struct {
	in       *instance
	token    string
	cred     admin.AgentCredentials
	canceled chan struct{}
	received chan struct{}
}

func newKillEnv(t *testing.T, dir string) *killEnv {
	t.Helper()
	return newKillEnvWith(t, dir, nil, nil)
}

// newKillEnvWith is newKillEnv on a server whose configuration edit changes and whose parts
// prepare replaces before it serves.
func newKillEnvWith(t *testing.T, dir string, edit func(*config.Config), prepare func(*server.Server)) *killEnv {
	t.Helper()
	env := &killEnv{canceled: make(chan struct{}, 64), received: make(chan struct{}, 64)}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			env.received <- struct{}{}
			select {
			case <-r.Context().Done():
				env.canceled <- struct{}{}
			case <-time.After(20 * time.Second):
			}
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(up.Close)
	env.in = startPrepared(t, "127.0.0.1:0", dir, clock.Real{}, edit, prepare)
	doc := `
agents:
  - name: canary
    owner: sec@example.com
    purpose: Kill switch tests
tools:
  - name: api
    http: ` + up.URL + `
    risk: low
    routes:
      - "GET /fast -> fast"
      - "GET /slow -> slow"
  - name: vault
    http: ` + up.URL + `
    risk: medium
    routes:
      - "GET /fast -> read"
grants:
  - agent: canary
    tool: api
  - agent: canary
    tool: vault
`
	var plan admin.Plan
	env.in.cliJSON(env.in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	env.cred = plan.Credentials["canary"]
	env.token = env.in.mustToken(env.cred.ClientID, env.cred.ClientSecret)
	return env
}

// TestKillIsStrict runs many concurrent calls through a kill and proves that no call of the agent
// is decided allowed, nor succeeds when sent, after kill returns.
func TestKillIsStrict(t *testing.T) {
	t.Parallel()
	env := newKillEnv(t, t.TempDir())
	in := env.in
	var killReturned atomic.Int64 // unix nanos; 0 until kill returns
	var succeededAfter, calls atomic.Int64
	stop := make(chan struct{})
	progress := make(chan struct{}, 1) // told (without blocking) after each call
	// waitCalls waits until n calls have run, on the calls themselves rather than a sleep.
	waitCalls := func(n int64) {
		t.Helper()
		giveUp := time.After(30 * time.Second)
		for calls.Load() < n {
			select {
			case <-progress:
			case <-giveUp:
				t.Fatalf("only %d calls ran in 30s, want %d", calls.Load(), n)
			}
		}
	}
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now().UnixNano()
				req, _ := http.NewRequest("GET", in.url+"/http/api/fast", nil)
				req.Header.Set("Authorization", "Bearer "+env.token)
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				calls.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
				if k := killReturned.Load(); resp.StatusCode == 200 && k != 0 && sent > k {
					succeededAfter.Add(1)
				}
			}
		}()
	}
	waitCalls(100) // calls in flight before and during the kill
	var r killswitch.Report
	in.cliJSON(in.admin, &r, "kill", "canary", "--reason", "strictness test")
	killReturned.Store(time.Now().UnixNano())
	waitCalls(calls.Load() + 100) // and after it
	close(stop)
	wg.Wait()

	if calls.Load() < 50 {
		t.Fatalf("only %d calls ran; the test proves nothing", calls.Load())
	}
	if n := succeededAfter.Load(); n != 0 {
		t.Fatalf("%d calls sent after kill returned succeeded", n)
	}
	allowedAfter, allowedBefore := 0, 0
	for _, ev := range in.events("type=tool.call&agent=canary&limit=1000&decision=allow") {
		if ev.Time.UnixNano() > killReturned.Load() {
			allowedAfter++
		} else {
			allowedBefore++
		}
	}
	if allowedBefore == 0 {
		t.Fatal("no call was allowed before the kill; the test proves nothing")
	}
	if allowedAfter != 0 {
		t.Fatalf("%d calls were decided allowed after kill returned", allowedAfter)
	}
	if r.Status != warden.AgentKilled || r.SessionsInvalidated < 1 {
		t.Fatalf("kill report: %+v", r)
	}
}

// TestKillIsComplete: a long call in flight is aborted at the upstream, an open MCP session is
// closed, the client secret stops working.
func TestKillIsComplete(t *testing.T) {
	t.Parallel()
	env := newKillEnv(t, t.TempDir())
	in := env.in
	mup := newMCPUpstream(t)
	if _, err := in.cli(in.admin, "tool", "add", "notes", "--mcp", mup.url, "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "notes.cedar", `permit(principal == Agent::"canary", action in Action::"notes", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	cs := mcpConnect(t, in.url+"/mcp", env.token)
	mcpDone := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "notes.slow", Arguments: map[string]any{}})
		mcpDone <- err
	}()
	httpDone := make(chan int, 1)
	go func() {
		r := in.gw("GET", "/http/api/slow", env.token, "", nil)
		httpDone <- r.status
	}()
	select {
	case <-env.received:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow HTTP call never reached the upstream")
	}
	select {
	case <-mup.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow MCP call never reached the upstream")
	}

	var r killswitch.Report
	in.cliJSON(in.admin, &r, "kill", "canary", "--reason", "completeness test")
	if r.CallsCancelled < 2 || r.StreamsClosed < 1 {
		t.Errorf("kill report: %+v; want both calls cancelled and the MCP session closed", r)
	}
	for name, ch := range map[string]chan struct{}{"HTTP": env.canceled, "MCP": mup.canceled} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Errorf("the %s upstream never saw its call cancelled", name)
		}
	}
	select {
	case status := <-httpDone:
		if status == 200 {
			t.Error("the cancelled HTTP call reported success")
		}
	case <-time.After(5 * time.Second):
		t.Error("the HTTP call did not end")
	}
	select {
	case <-mcpDone:
	case <-time.After(5 * time.Second):
		t.Error("the MCP call did not end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cs.ListTools(ctx, nil); err == nil {
		t.Error("the MCP session still works after the kill")
	}
	if r := in.tokenFor(env.cred.ClientID, env.cred.ClientSecret); r.status != 401 {
		t.Errorf("the client secret still works after the kill: %d", r.status)
	}
}

// TestKillIsDurable: after a restart the agent is still killed, a token minted before the kill
// is still refused, a lockdown is still on; restore gives a new secret and old tokens stay dead.
func TestKillIsDurable(t *testing.T) {
	t.Parallel()
	env := newKillEnv(t, t.TempDir())
	in := env.in
	if _, err := in.cli(in.admin, "kill", "canary", "--reason", "durability test"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(in.admin, "lockdown", "--reason", "durability test"); err != nil {
		t.Fatal(err)
	}
	in2 := in.restart(nil)
	var a warden.Agent
	in2.cliJSON(in2.admin, &a, "agent", "show", "canary")
	if a.Status != warden.AgentKilled {
		t.Fatalf("after restart: %s", a.Status)
	}
	if r := in2.self(env.token); r.status != 401 {
		t.Fatalf("a token from before the kill works after restart: %d", r.status)
	}
	var l warden.Lockdown
	in2.cliJSON(in2.admin, &l, "lockdown", "status")
	if !l.Active || l.Reason != "durability test" {
		t.Fatalf("lockdown after restart: %+v", l)
	}
	var restored struct {
		ClientSecret string `json:"client_secret"`
	}
	in2.cliJSON(in2.admin, &restored, "agent", "restore", "canary", "--reason", "investigated")
	if restored.ClientSecret == "" || restored.ClientSecret == env.cred.ClientSecret {
		t.Fatal("restore must issue a new client secret")
	}
	fresh := in2.mustToken(env.cred.ClientID, restored.ClientSecret)
	if r := in2.gw("GET", "/http/api/fast", fresh, "", nil); r.status != 403 || !strings.Contains(string(r.body), "lockdown") {
		t.Fatalf("a call during the lockdown: %d %s", r.status, r.body)
	}
	if _, err := in2.cli(in2.admin, "lockdown", "lift", "--reason", "over"); err != nil {
		t.Fatal(err)
	}
	if r := in2.gw("GET", "/http/api/fast", fresh, "", nil); r.status != 200 {
		t.Fatalf("after restore and lift: %d %s", r.status, r.body)
	}
	if r := in2.self(env.token); r.status != 401 {
		t.Fatal("a token from before the kill came back with the restore")
	}
}

func TestKillIsIdempotentAndClear(t *testing.T) {
	t.Parallel()
	env := newKillEnv(t, t.TempDir())
	in := env.in
	var op struct {
		Token string `json:"token"`
	}
	in.cliJSON(in.admin, &op, "admin", "token", "create", "oncall", "--role", "operator")
	var aud struct {
		Token string `json:"token"`
	}
	in.cliJSON(in.admin, &aud, "admin", "token", "create", "reader", "--role", "auditor")

	if _, err := in.cli(aud.Token, "kill", "canary", "--reason", "x"); cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Fatalf("an auditor killed: %v", err)
	}
	var first, second killswitch.Report
	in.cliJSON(op.Token, &first, "kill", "canary", "--reason", "first", "--disable-tools", "vault")
	in.cliJSON(op.Token, &second, "kill", "canary", "--reason", "second")
	if !second.AlreadyKilled || second.Epoch != first.Epoch || second.Status != first.Status || len(first.ToolsDisabled) != 1 {
		t.Fatalf("kill twice: %+v then %+v", first, second)
	}
	if _, err := in.cli(op.Token, "kill", "nobody", "--reason", "x"); cli.ExitCode(err) != cli.ExitNotFound || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("kill an unknown agent: %v", err)
	}
	if _, err := in.cli(op.Token, "kill", "canary"); cli.ExitCode(err) != cli.ExitUsage {
		t.Fatalf("kill without a reason: %v", err)
	}
	if _, err := in.cli(op.Token, "agent", "restore", "canary", "--reason", "x"); cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Fatalf("an operator restored: %v", err)
	}
	var tool warden.Tool
	in.cliJSON(in.admin, &tool, "tool", "show", "vault")
	if !tool.Disabled {
		t.Fatal("--disable-tools did not disable the tool")
	}
	if !hasEvent(in.events("type=kill.agent"), warden.EventKillAgent, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "oncall" && ev.Actor.Role == "operator" && strings.HasPrefix(ev.Decision.Message, "first")
	}) {
		t.Fatal("the kill is not an audit event naming the person and the reason")
	}
}

func TestLockdownByRisk(t *testing.T) {
	t.Parallel()
	env := newKillEnv(t, t.TempDir())
	in := env.in
	if _, err := in.cli(in.admin, "lockdown", "--reason", "medium risk and more", "--min-risk", "medium"); err != nil {
		t.Fatal(err)
	}
	if r := in.gw("GET", "/http/vault/fast", env.token, "", nil); r.status != 403 || !strings.Contains(string(r.body), "lockdown") {
		t.Fatalf("a medium-risk call during the lockdown: %d %s", r.status, r.body)
	}
	if r := in.gw("GET", "/http/api/fast", env.token, "", nil); r.status != 200 {
		t.Fatalf("a low-risk call during a medium-risk lockdown: %d %s", r.status, r.body)
	}
	if _, err := in.cli(in.admin, "lockdown", "--reason", "bad", "--min-risk", "extreme"); cli.ExitCode(err) != cli.ExitUsage {
		t.Fatalf("unknown risk: %v", err)
	}
	if _, err := in.cli(in.admin, "lockdown", "lift", "--reason", "done"); err != nil {
		t.Fatal(err)
	}
	if r := in.gw("GET", "/http/vault/fast", env.token, "", nil); r.status != 200 {
		t.Fatalf("after lift: %d %s", r.status, r.body)
	}
}

// TestReasonRuleAtTheAPI: the server holds the --reason rule too, for clients other than the CLI:
// lifting a suspension or enabling a tool without a reason is refused and changes nothing.
func TestReasonRuleAtTheAPI(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	if _, err := in.cli(in.admin, "agent", "create", "bot", "--owner", "a@example.com", "--purpose", "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(in.admin, "agent", "suspend", "bot", "--reason", "drill"); err != nil {
		t.Fatal(err)
	}
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	for _, body := range []string{`{}`, `{"reason":"   "}`} {
		if r := in.do("POST", "/v1/agents/bot/resume", auth, body); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "a reason is required") {
			t.Fatalf("resume with %s: %d %s", body, r.status, r.body)
		}
	}
	var agent struct{ Status string }
	in.cliJSON(in.admin, &agent, "agent", "show", "bot")
	if agent.Status != "suspended" {
		t.Fatalf("a refused resume changed the agent: %s", agent.Status)
	}
	if r := in.do("POST", "/v1/agents/bot/resume", auth, `{"reason":"drill over"}`); r.status != http.StatusOK {
		t.Fatalf("resume with a reason: %d %s", r.status, r.body)
	}
}
