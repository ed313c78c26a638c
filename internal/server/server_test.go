package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/server"
)

// syncBuffer collects the server's log so tests can search it for secrets.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// instance is one warden server running in this process on 127.0.0.1.
type instance struct {
	t      testing.TB
	dir    string
	url    string
	admin  string // the bootstrap admin token
	srv    *server.Server
	log    *syncBuffer
	stdout string
	stop   func()
}

// start runs a server on dir (reusing its data when it exists) until the test ends or stop is called.
func start(t testing.TB, dir string, edit func(*config.Config)) *instance {
	t.Helper()
	return startOn(t, "127.0.0.1:0", dir, edit)
}

// restart stops the instance and starts another on the same data and address, so tokens
// issued before (whose issuer is the address) are judged by the same rules.
func (in *instance) restart(edit func(*config.Config)) *instance {
	in.t.Helper()
	in.stop()
	return startOn(in.t, strings.TrimPrefix(in.url, "http://"), in.dir, edit)
}

func startOn(t testing.TB, addr, dir string, edit func(*config.Config)) *instance {
	t.Helper()
	return startClock(t, addr, dir, clock.Real{}, edit)
}

// startClock is startOn with the server on clk: a test that passes a clock.Fake moves the
// server's time (token lifetimes, approvals, budgets, refusal summaries, checkpoints) itself.
func startClock(t testing.TB, addr, dir string, clk clock.Clock, edit func(*config.Config)) *instance {
	t.Helper()
	return startPrepared(t, addr, dir, clk, edit, nil)
}

// startPrepared is startClock with prepare called on the server before it serves, to replace
// a part (the fleet) with a test double.
func startPrepared(t testing.TB, addr, dir string, clk clock.Clock, edit func(*config.Config), prepare func(*server.Server)) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Listen = ln.Addr().String()
	cfg.Data = dir
	cfg.Log.Format = "json"
	cfg.Log.Level = "debug"
	cfg.Tokens.RefreshInterval = config.Duration(200 * time.Millisecond)
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.OpenClock(ctx, cfg, log, func(string) string { return "" }, clk)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := srv.Bootstrap(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(srv)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	in := &instance{t: t, dir: dir, url: cfg.PublicURL, srv: srv, log: logs, stdout: out.String()}
	var once sync.Once
	in.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
			srv.Close()
		})
	}
	t.Cleanup(in.stop)
	tok, err := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	in.admin = strings.TrimSpace(string(tok))
	return in
}

// cli runs a warden CLI command against the instance with the given admin token.
func (in *instance) cli(token string, args ...string) (string, error) {
	in.t.Helper()
	return in.runCLI(token, strings.NewReader(""), args...)
}

func (in *instance) runCLI(token string, stdin io.Reader, args ...string) (string, error) {
	in.t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.Env{Stdin: stdin, Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		switch k {
		case "WARDEN_ADDR":
			return in.url
		case "WARDEN_TOKEN":
			return token
		}
		return ""
	}}
	err := cli.Run(context.Background(), args, env)
	return stdout.String(), err
}

// apply applies doc (warden.yaml) with warden apply and returns the plan: the agents'
// credentials among it.
func (in *instance) apply(doc string) admin.Plan {
	in.t.Helper()
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(in.t, in.t.TempDir(), "warden.yaml", doc))
	return plan
}

// cliJSON runs a command with --json and decodes its output into out.
func (in *instance) cliJSON(token string, out any, args ...string) {
	in.t.Helper()
	s, err := in.cli(token, append(args, "--json")...)
	if err != nil {
		in.t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		in.t.Fatalf("warden %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, s)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (in *instance) do(method, path string, header map[string]string, body string) response {
	in.t.Helper()
	req, err := http.NewRequest(method, in.url+path, strings.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func form(vals ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(vals); i += 2 {
		v.Set(vals[i], vals[i+1])
	}
	return v.Encode()
}

var formCT = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

func withHeader(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for hk, hv := range h {
		out[hk] = hv
	}
	return out
}

// tokenFor gets an access token with client_secret_post.
func (in *instance) tokenFor(id, secret string, extra ...string) response {
	in.t.Helper()
	return in.do("POST", "/oauth2/token", formCT, form(append([]string{"grant_type", "client_credentials", "client_id", id, "client_secret", secret}, extra...)...))
}

func (in *instance) mustToken(id, secret string) string {
	in.t.Helper()
	r := in.tokenFor(id, secret)
	if r.status != 200 {
		in.t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r.json(in.t)["access_token"].(string)
}

func (in *instance) introspect(token string) map[string]any {
	in.t.Helper()
	r := in.do("POST", "/oauth2/introspect", withHeader(formCT, "Authorization", "Bearer "+in.admin), form("token", token))
	if r.status != 200 {
		in.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json(in.t)
}

func (in *instance) self(token string) response {
	return in.do("GET", "/v1/agent/self", map[string]string{"Authorization": "Bearer " + token}, "")
}

func (in *instance) events(filter string) []*warden.AuditEvent {
	in.t.Helper()
	r := in.do("GET", "/v1/audit/events?"+filter, map[string]string{"Authorization": "Bearer " + in.admin}, "")
	if r.status != 200 {
		in.t.Fatalf("audit: %d %s", r.status, r.body)
	}
	var evs []*warden.AuditEvent
	if err := json.Unmarshal(r.body, &evs); err != nil {
		in.t.Fatal(err)
	}
	return evs
}

func hasEvent(evs []*warden.AuditEvent, typ string, pred func(*warden.AuditEvent) bool) bool {
	for _, ev := range evs {
		if ev.Type == typ && (pred == nil || pred(ev)) {
			return true
		}
	}
	return false
}

// TestWalkthrough follows the README: create an agent, get and introspect a token, suspend the
// agent, watch the token die, restart, and find the agent still suspended.
func TestWalkthrough(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, nil)

	fi, err := os.Stat(filepath.Join(dir, server.AdminTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v; want 0600", err, fi.Mode())
	}
	if !strings.Contains(in.stdout, in.admin) {
		t.Fatalf("first start must print the admin token once; printed:\n%s", in.stdout)
	}

	var created httpapi.CreatedAgent
	in.cliJSON(in.admin, &created, "agent", "create", "triage-bot", "--owner", "alice@example.com",
		"--purpose", "Triage new issues in acme/web", "--label", "team=web")
	if !strings.HasPrefix(created.ClientSecret, "wsec_") || created.ClientID == "" || created.Labels["team"] != "web" {
		t.Fatalf("created: %+v", created)
	}

	// client_secret_basic
	r := in.do("POST", "/oauth2/token", withHeader(formCT, "Authorization", "Basic "+basic(created.ClientID, created.ClientSecret)), form("grant_type", "client_credentials", "scope", "issues:read"))
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token (basic): %d %v %s", r.status, r.header, r.body)
	}
	tr := r.json(t)
	token := tr["access_token"].(string)
	if tr["token_type"] != "Bearer" || tr["expires_in"].(float64) != 600 || tr["scope"] != "issues:read" {
		t.Fatalf("token response: %v", tr)
	}

	ti := in.introspect(token)
	if ti["active"] != true || ti["client_id"] != created.ClientID || ti["username"] != "triage-bot" || ti["scope"] != "issues:read" {
		t.Fatalf("introspection: %v", ti)
	}
	if r := in.self(token); r.status != 200 {
		t.Fatalf("self: %d %s", r.status, r.body)
	}

	if _, err := in.cli(in.admin, "agent", "suspend", "triage-bot", "--reason", "walkthrough"); err != nil {
		t.Fatal(err)
	}
	if ti := in.introspect(token); ti["active"] != false || len(ti) != 1 {
		t.Fatalf("introspection after suspend: %v", ti)
	}
	if r := in.self(token); r.status != 401 || !strings.Contains(string(r.body), "suspended") {
		t.Fatalf("self after suspend: %d %s", r.status, r.body)
	}
	if r := in.tokenFor(created.ClientID, created.ClientSecret); r.status != 401 || r.json(t)["error"] != "invalid_client" {
		t.Fatalf("token for a suspended agent: %d %s", r.status, r.body)
	}

	evs := in.events("limit=1000")
	for _, typ := range []string{warden.EventAgentCreate, warden.EventTokenIssue, warden.EventAgentSuspend, warden.EventTokenRefuse} {
		if !hasEvent(evs, typ, nil) {
			t.Errorf("no %s event in the audit log", typ)
		}
	}
	if !hasEvent(evs, warden.EventAgentSuspend, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Kind == warden.ActorHuman && ev.Actor.Name == "admin" && ev.Actor.Role == "admin" && ev.Decision.Message == "walkthrough"
	}) {
		t.Errorf("the suspend event must name the person, role and reason")
	}

	// No secret or token in the server's log.
	logs := in.log.String()
	for _, secret := range []string{created.ClientSecret, in.admin, token} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log contains a secret")
		}
	}

	// Restart on the same data: still suspended, the old token still dead, no second admin token.
	in2 := in.restart(nil)
	if in2.admin != in.admin || strings.Contains(in2.stdout, "wadm_") {
		t.Fatalf("a later start must not create another admin token")
	}
	var a warden.Agent
	in2.cliJSON(in2.admin, &a, "agent", "show", "triage-bot")
	if a.Status != warden.AgentSuspended || a.StatusReason != "walkthrough" {
		t.Fatalf("after restart: %+v", a)
	}
	if ti := in2.introspect(token); ti["active"] != false {
		t.Fatalf("token alive after restart: %v", ti)
	}
	if r := in2.self(token); r.status != 401 || !strings.Contains(string(r.body), "suspended") {
		t.Fatalf("token of a suspended agent after restart: %d %s", r.status, r.body)
	}
	// Resume: new tokens work; the one from before the suspension stays dead.
	if _, err := in2.cli(in2.admin, "agent", "resume", "triage-bot", "--reason", "back"); err != nil {
		t.Fatal(err)
	}
	if r := in2.self(token); r.status != 401 || !strings.Contains(string(r.body), "epoch") {
		t.Fatalf("a token from before the suspension came back: %d %s", r.status, r.body)
	}
	fresh := in2.mustToken(created.ClientID, created.ClientSecret)
	if ti := in2.introspect(fresh); ti["active"] != true {
		t.Fatalf("new token after resume: %v", ti)
	}
}

func basic(id, secret string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func createAgent(t *testing.T, in *instance, name string, extra ...string) httpapi.CreatedAgent {
	t.Helper()
	var c httpapi.CreatedAgent
	in.cliJSON(in.admin, &c, append([]string{"agent", "create", name, "--owner", "owner@example.com", "--purpose", "testing"}, extra...)...)
	return c
}

func TestRoles(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	createAgent(t, in, "bot")
	tokens := map[string]string{}
	for _, role := range []string{"operator", "approver", "auditor"} {
		var c httpapi.CreatedAdminToken
		in.cliJSON(in.admin, &c, "admin", "token", "create", role+"-1", "--role", role)
		tokens[role] = c.Token
	}
	cases := []struct {
		role    string
		args    []string
		allowed bool
	}{
		{"auditor", []string{"agent", "list"}, true},
		{"auditor", []string{"audit", "search"}, true},
		{"auditor", []string{"agent", "create", "x", "--owner", "a@b.c", "--purpose", "p"}, false},
		{"auditor", []string{"agent", "suspend", "bot", "--reason", "r"}, false},
		{"approver", []string{"agent", "list"}, false},
		{"approver", []string{"admin", "token", "list"}, false},
		{"operator", []string{"admin", "token", "create", "y", "--role", "admin"}, false},
		{"operator", []string{"agent", "suspend", "bot", "--reason", "incident"}, true},
		{"operator", []string{"agent", "resume", "bot", "--reason", "r"}, false},
		{"operator", []string{"keys", "rotate"}, false},
		{"auditor", []string{"keys", "list"}, true},
	}
	for _, c := range cases {
		_, err := in.cli(tokens[c.role], c.args...)
		if c.allowed && err != nil {
			t.Errorf("%s: %v: %v", c.role, c.args, err)
		}
		if !c.allowed {
			if cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(err.Error(), "needs role admin") || !strings.Contains(err.Error(), "has role "+c.role) {
				t.Errorf("%s: %v: want a 403 naming the role needed, got %v", c.role, c.args, err)
			}
		}
	}
	if !hasEvent(in.events("type=admin.denied"), warden.EventAdminDenied, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "auditor-1" && ev.Decision.Effect == warden.EffectDeny
	}) {
		t.Error("a refused admin action must be audited")
	}

	// A revoked token stops working; the last admin token cannot be revoked.
	if _, err := in.cli(in.admin, "admin", "token", "revoke", "auditor-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(tokens["auditor"], "agent", "list"); cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := in.cli(in.admin, "admin", "token", "revoke", "admin"); cli.ExitCode(err) != cli.ExitConflict {
		t.Errorf("revoking the last admin token: %v", err)
	}
	var list []*warden.AdminToken
	in.cliJSON(in.admin, &list, "admin", "token", "list")
	if len(list) != 4 {
		t.Fatalf("tokens: %d", len(list))
	}
	raw, _ := json.Marshal(list)
	for _, tok := range tokens {
		if strings.Contains(string(raw), tok) {
			t.Error("token list shows a token value")
		}
	}
}

func TestAgentLifecycle(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	c := createAgent(t, in, "rotator", "--ttl", "2s")
	old := in.mustToken(c.ClientID, c.ClientSecret)

	// Rotation: the old secret and every token before it die.
	var rotated httpapi.CreatedAgent
	in.cliJSON(in.admin, &rotated, "agent", "rotate-secret", "rotator")
	if rotated.ClientSecret == c.ClientSecret || rotated.Epoch != c.Epoch+1 {
		t.Fatalf("rotate: %+v", rotated)
	}
	if r := in.tokenFor(c.ClientID, c.ClientSecret); r.status != 401 {
		t.Fatalf("old secret after rotation: %d", r.status)
	}
	if in.introspect(old)["active"] != false {
		t.Fatal("token from before rotation still active")
	}
	fresh := in.mustToken(c.ClientID, rotated.ClientSecret)

	// Expiry: once the identity's lifetime is over it gets no tokens and its tokens die.
	time.Sleep(2100 * time.Millisecond)
	if r := in.tokenFor(c.ClientID, rotated.ClientSecret); r.status != 401 || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("token for an expired identity: %d %s", r.status, r.body)
	}
	if in.introspect(fresh)["active"] != false {
		t.Fatal("token of an expired identity still active")
	}
	var renewed warden.Agent
	in.cliJSON(in.admin, &renewed, "agent", "renew", "rotator", "--ttl", "30d")
	if time.Until(renewed.ExpiresAt) < 29*24*time.Hour {
		t.Fatalf("renew: %v", renewed.ExpiresAt)
	}
	in.mustToken(c.ClientID, rotated.ClientSecret)

	// Delete: tokens die, the name is free again, and a new agent of that name is another identity.
	tok := in.mustToken(c.ClientID, rotated.ClientSecret)
	if _, err := in.cli(in.admin, "agent", "delete", "rotator"); err != nil {
		t.Fatal(err)
	}
	if in.introspect(tok)["active"] != false {
		t.Fatal("token of a deleted agent still active")
	}
	again := createAgent(t, in, "rotator")
	if again.ClientID == c.ClientID {
		t.Fatal("a re-created agent must get a new client id")
	}
	if _, err := in.cli(in.admin, "agent", "show", "nobody"); cli.ExitCode(err) != cli.ExitNotFound {
		t.Fatalf("show unknown: %v", err)
	}
	if _, err := in.cli(in.admin, "agent", "create", "rotator", "--owner", "a@b.co", "--purpose", "x"); cli.ExitCode(err) != cli.ExitConflict {
		t.Fatalf("duplicate name: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	c := createAgent(t, in, "bot")
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	big := `{"name":"x","owner":"a@b.co","purpose":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               string
		status             int
		code               string
	}{
		{"unknown field", "POST", "/v1/agents", auth, `{"name":"x","owner":"a@b.co","purpose":"p","admin":true}`, 400, "invalid"},
		{"trailing data", "POST", "/v1/agents", auth, `{"name":"x","owner":"a@b.co","purpose":"p"} {}`, 400, "invalid"},
		{"malformed", "POST", "/v1/agents", auth, `{"name":`, 400, "invalid"},
		{"wrong type", "POST", "/v1/agents", auth, `{"name":5}`, 400, "invalid"},
		{"too large", "POST", "/v1/agents", auth, big, 413, "too_large"},
		{"bad name", "POST", "/v1/agents", auth, `{"name":"Bad_Name","owner":"a@b.co","purpose":"p"}`, 400, "invalid"},
		{"no purpose", "POST", "/v1/agents", auth, `{"name":"x","owner":"a@b.co","purpose":"  "}`, 400, "invalid"},
		{"bad owner", "POST", "/v1/agents", auth, `{"name":"x","owner":"not an email","purpose":"p"}`, 400, "invalid"},
		{"bad ttl", "POST", "/v1/agents", auth, `{"name":"x","owner":"a@b.co","purpose":"p","ttl":"forever"}`, 400, "invalid"},
		{"no reason", "POST", "/v1/agents/bot/suspend", auth, `{}`, 400, "invalid"},
		{"no token", "GET", "/v1/agents", nil, "", 401, "unauthenticated"},
		{"agent token on admin API", "GET", "/v1/agents", map[string]string{"Authorization": "Bearer " + c.ClientSecret}, "", 401, "unauthenticated"},
		{"unknown route", "GET", "/v1/nothing", auth, "", 404, "not_found"},
		{"unknown agent", "GET", "/v1/agents/ghost", auth, "", 404, "not_found"},
		{"bad audit filter", "GET", "/v1/audit/events?since=yesterday", auth, "", 400, "invalid"},
		{"unknown audit filter", "GET", "/v1/audit/events?colour=red", auth, "", 400, "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := in.do(tc.method, tc.path, tc.header, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var body httpapi.ErrorBody
			if err := json.Unmarshal(r.body, &body); err != nil || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("body %s: want error code %s", r.body, tc.code)
			}
		})
	}
	var agents []*warden.Agent
	in.cliJSON(in.admin, &agents, "agent", "list")
	if len(agents) != 1 {
		t.Fatalf("bad requests changed state: %d agents", len(agents))
	}

	oauth := []struct {
		name   string
		header map[string]string
		body   string
		status int
		code   string
	}{
		{"no grant type", formCT, form("client_id", c.ClientID, "client_secret", c.ClientSecret), 400, "invalid_request"},
		{"unsupported grant", formCT, form("grant_type", "password", "client_id", c.ClientID, "client_secret", c.ClientSecret), 400, "unsupported_grant_type"},
		{"wrong secret", formCT, form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", "wsec_wrong"), 401, "invalid_client"},
		{"unknown client", formCT, form("grant_type", "client_credentials", "client_id", "agt_nobody", "client_secret", "x"), 401, "invalid_client"},
		{"no client auth", formCT, form("grant_type", "client_credentials"), 401, "invalid_client"},
		{"two auth methods", withHeader(formCT, "Authorization", "Basic "+basic(c.ClientID, c.ClientSecret)), form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", c.ClientSecret), 400, "invalid_request"},
		{"json body", map[string]string{"Content-Type": "application/json"}, `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		{"repeated parameter", formCT, form("client_id", c.ClientID, "client_secret", c.ClientSecret) + "&grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request"},
		{"bad scope", formCT, form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", c.ClientSecret, "scope", "a\"b"), 400, "invalid_scope"},
		{"bad session", formCT, form("grant_type", "client_credentials", "client_id", c.ClientID, "client_secret", c.ClientSecret, "session_id", "a b"), 400, "invalid_request"},
		{"too large", formCT, form("grant_type", "client_credentials", "pad", strings.Repeat("x", 70<<10)), 413, "invalid_request"},
	}
	for _, tc := range oauth {
		t.Run("oauth/"+tc.name, func(t *testing.T) {
			r := in.do("POST", "/oauth2/token", tc.header, tc.body)
			if r.status != tc.status || r.json(t)["error"] != tc.code {
				t.Fatalf("got %d %s; want %d %s", r.status, r.body, tc.status, tc.code)
			}
			if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if r := in.do("POST", "/oauth2/token?grant_type=client_credentials", formCT, form("client_id", c.ClientID, "client_secret", c.ClientSecret)); r.status != 400 {
		t.Fatalf("credentials in the query: %d", r.status)
	}
	refused := in.events("type=token.refuse")
	if !hasEvent(refused, warden.EventTokenRefuse, func(ev *warden.AuditEvent) bool {
		return ev.Actor.ID == c.ClientID && ev.Decision.Reason == "invalid_client"
	}) {
		t.Error("a wrong client secret must be an audit event")
	}
	if strings.Contains(in.log.String(), c.ClientSecret) {
		t.Error("secret in the server log")
	}
}

// TestRefusedTokens: tokens that must not pass an enforcement point each get 401 and an audit event.
func TestRefusedTokens(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	c := createAgent(t, in, "bot")
	good := in.mustToken(c.ClientID, c.ClientSecret)
	parts := strings.Split(good, ".")
	otherAud := start(t, t.TempDir(), func(cfg *config.Config) { cfg.Tokens.Audience = "https://elsewhere.example" })
	oc := createAgent(t, otherAud, "bot")
	foreign := otherAud.mustToken(oc.ClientID, oc.ClientSecret)
	cases := map[string]string{
		"alg none":         b64(`{"alg":"none","typ":"at+jwt"}`) + "." + parts[1] + ".",
		"tampered payload": parts[0] + "." + b64(`{"sub":"x"}`) + "." + parts[2],
		"unknown key":      foreign,
		"garbage":          "not-a-token",
	}
	for name, tok := range cases {
		r := in.self(tok)
		if r.status != 401 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
		if in.introspect(tok)["active"] != false {
			t.Errorf("%s: introspection says active", name)
		}
	}
	if n := len(in.events("type=token.refuse")); n < len(cases) {
		t.Errorf("%d refusal events for %d refused tokens", n, len(cases))
	}
	if r := in.self(good); r.status != 200 {
		t.Fatalf("good token refused: %d %s", r.status, r.body)
	}
	// Revocation (RFC 7009) by the agent itself.
	r := in.do("POST", "/oauth2/revoke", withHeader(formCT, "Authorization", "Basic "+basic(c.ClientID, c.ClientSecret)), form("token", good))
	if r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := in.self(good); r.status != 401 {
		t.Fatalf("revoked token accepted: %d", r.status)
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, nil)
	c := createAgent(t, in, "bot")
	before := in.mustToken(c.ClientID, c.ClientSecret)
	var k warden.SigningKey
	in.cliJSON(in.admin, &k, "keys", "rotate")
	after := in.mustToken(c.ClientID, c.ClientSecret)
	if kid(t, after) != k.ID || kid(t, before) == k.ID {
		t.Fatalf("new tokens must be signed by the new key %s", k.ID)
	}
	for _, tok := range []string{before, after} {
		if in.introspect(tok)["active"] != true {
			t.Fatal("a token stopped verifying after rotation")
		}
	}
	var jwks struct{ Keys []map[string]any }
	if err := json.Unmarshal(in.do("GET", "/.well-known/jwks.json", nil, "").body, &jwks); err != nil || len(jwks.Keys) != 2 {
		t.Fatalf("jwks: %v %v", err, jwks)
	}
	for _, key := range jwks.Keys {
		if _, private := key["d"]; private || key["kty"] != "OKP" || key["alg"] != "EdDSA" {
			t.Fatalf("jwks key: %v", key)
		}
	}
	// Both keys survive a restart (they are stored sealed under the master key).
	in2 := in.restart(nil)
	for _, tok := range []string{before, after} {
		if r := in2.self(tok); r.status != 200 {
			t.Fatalf("a token stopped verifying after restart: %d %s", r.status, r.body)
		}
	}
	meta := in2.do("GET", "/.well-known/oauth-authorization-server", nil, "").json(t)
	if meta["issuer"] != in2.url || meta["token_endpoint"] != in2.url+"/oauth2/token" || meta["jwks_uri"] != in2.url+"/.well-known/jwks.json" {
		t.Fatalf("metadata: %v", meta)
	}
}

func kid(t *testing.T, token string) string {
	t.Helper()
	sig, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return sig.Signatures[0].Header.KeyID
}

// TestTokenExchange: an agent acting for a person gets a token naming the person as subject and
// itself as actor (RFC 8693); bad subject tokens get invalid_grant.
func TestTokenExchange(t *testing.T) {
	t.Parallel()
	idpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwksPath := filepath.Join(dir, "idp-jwks.json")
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idpKey.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}}
	b, _ := json.Marshal(set)
	if err := os.WriteFile(jwksPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, filepath.Join(dir, "data"), func(cfg *config.Config) {
		cfg.TokenExchange.Issuers = []config.TrustedIssuer{{Issuer: "https://idp.example.com", JWKSFile: jwksPath}}
	})
	c := createAgent(t, in, "assistant")
	subject := func(iss string, exp time.Time, key *ecdsa.PrivateKey) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "idp-1"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: iss, Subject: "alice@example.com", Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	exchange := func(subjectToken string) response {
		return in.do("POST", "/oauth2/token", withHeader(formCT, "Authorization", "Basic "+basic(c.ClientID, c.ClientSecret)), form(
			"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange",
			"subject_token", subjectToken,
			"subject_token_type", "urn:ietf:params:oauth:token-type:jwt"))
	}
	r := exchange(subject("https://idp.example.com", time.Now().Add(time.Hour), idpKey))
	if r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	tr := r.json(t)
	if tr["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" {
		t.Fatalf("exchange response: %v", tr)
	}
	ti := in.introspect(tr["access_token"].(string))
	act, _ := ti["act"].(map[string]any)
	if ti["active"] != true || ti["sub"] != "alice@example.com" || act["sub"] != c.ClientID || ti["on_behalf_of"] != "alice@example.com" || ti["client_id"] != c.ClientID {
		t.Fatalf("exchanged token: %v", ti)
	}
	if !hasEvent(in.events("type=token.issue"), warden.EventTokenIssue, func(ev *warden.AuditEvent) bool {
		return ev.Actor.OnBehalfOf == "alice@example.com" && ev.Actor.ID == c.ClientID
	}) {
		t.Error("the token.issue event must name the person the agent acts for")
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tok := range map[string]string{
		"unknown issuer": subject("https://evil.example.com", time.Now().Add(time.Hour), idpKey),
		"expired":        subject("https://idp.example.com", time.Now().Add(-time.Hour), idpKey),
		"bad signature":  subject("https://idp.example.com", time.Now().Add(time.Hour), other),
		"not a jwt":      "abc",
	} {
		if r := exchange(tok); r.status != 400 || r.json(t)["error"] != "invalid_grant" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	if r := in.do("GET", "/healthz", nil, ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	r := in.do("GET", "/readyz", nil, "")
	if r.status != 200 || r.json(t)["ready"] != true {
		t.Fatalf("readyz: %d %s", r.status, r.body)
	}
	in.srv.Store.Close()
	if r := in.do("GET", "/readyz", nil, ""); r.status != 503 {
		t.Fatalf("readyz with the store closed: %d %s", r.status, r.body)
	}
}
