package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// recorder is an HTTP upstream that records what it received.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
	srv  *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(r.Context()))
		rec.body = append(rec.body, string(b))
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"path": r.URL.EscapedPath(), "method": r.Method})
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return rec.reqs[len(rec.reqs)-1], rec.body[len(rec.body)-1]
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func writeFile(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// setupGitHub registers an HTTP tool "github" in front of rec, with a brokered secret, and an
// agent granted two of its actions on one repository.
func setupGitHub(t *testing.T, in *instance, rec *recorder) (agentToken string, secretValue string) {
	t.Helper()
	secretValue = "ghp_" + strings.Repeat("S", 36)
	env := func(stdin string, args ...string) {
		t.Helper()
		if _, err := in.cliStdin(in.admin, stdin, args...); err != nil {
			t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
		}
	}
	env(secretValue+"\n", "secret", "set", "github-token")
	env("", "tool", "add", "github", "--http", rec.srv.URL+"/api", "--risk", "medium",
		"--secret", "github-token", "--inject", "Authorization: Bearer {{secret}}",
		"--route", "GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}",
		"--route", "POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}",
		"--route", "DELETE /repos/{owner}/{repo} -> repos.delete repo:{owner}/{repo}",
		"--route", "POST /payments -> payments.send")
	c := createAgent(t, in, "triage-bot")
	dir := t.TempDir()
	writeFile(t, dir, "triage.cedar", `
@id("triage-read")
permit(principal == Agent::"triage-bot", action in [Action::"github:issues.list", Action::"github:issues.create"], resource)
when { resource == Resource::"repo:acme/web" };

@id("small-payments")
permit(principal == Agent::"triage-bot", action == Action::"github:payments.send", resource)
when { context.args has body && context.args.body has amount && context.args.body.amount <= 100 };
`)
	env("", "policy", "apply", dir, "--comment", "triage bot")
	return in.mustToken(c.ClientID, c.ClientSecret), secretValue
}

func (in *instance) cliStdin(token, stdin string, args ...string) (string, error) {
	in.t.Helper()
	return in.runCLI(token, strings.NewReader(stdin), args...)
}

func (in *instance) gw(method, path, token, body string, header map[string]string) response {
	in.t.Helper()
	h := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range header {
		h[k] = v
	}
	return in.do(method, path, h, body)
}

func TestHTTPGateway(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	token, secret := setupGitHub(t, in, rec)

	// Allowed: the upstream gets the brokered secret, who acted, a traceparent — and not the
	// agent's token or cookies.
	r := in.gw("GET", "/http/github/repos/acme/web/issues?state=open", token, "", map[string]string{
		"Cookie": "session=agent-cookie", "Warden-Agent": "spoofed", "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})
	if r.status != 200 {
		t.Fatalf("allowed call: %d %s", r.status, r.body)
	}
	up, _ := rec.last(t)
	if got := up.Header.Get("Authorization"); got != "Bearer "+secret {
		t.Errorf("upstream Authorization = %q; want the brokered secret", got)
	}
	for k, vs := range up.Header {
		for _, v := range vs {
			if strings.Contains(v, token) {
				t.Errorf("the agent's token reached the upstream in %s", k)
			}
		}
	}
	if up.Header.Get("Cookie") != "" || up.Header.Get("Warden-Agent") != "triage-bot" || up.Header.Get("Warden-Session") == "" {
		t.Errorf("upstream headers: %v", up.Header)
	}
	if tp := up.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("traceparent %q: want the caller's trace with warden's own span", tp)
	}
	if up.URL.Path != "/api/repos/acme/web/issues" || up.URL.RawQuery != "state=open" {
		t.Errorf("upstream URL %s", up.URL)
	}

	// Denied: other resource, other action, no route, path tricks; the upstream sees none of it.
	before := rec.count()
	for _, c := range []struct {
		method, path string
		status       int
		reason       string
	}{
		{"GET", "/http/github/repos/acme/api/issues", 403, "no_matching_policy"},
		{"DELETE", "/http/github/repos/acme/web", 403, "no_matching_policy"},
		{"GET", "/http/github/admin/users", 403, "no_route"},
		{"GET", "/http/github/repos/acme/web/../api/issues", 400, "invalid_path"},
		{"GET", "/http/github/repos/acme/web%2f..%2fapi/issues", 400, "invalid_path"},
		{"GET", "/http/github/repos/acme//web/issues", 400, "invalid_path"},
		{"GET", "/http/nosuch/x", 403, "unknown_tool"},
	} {
		r := in.gw(c.method, c.path, token, "", nil)
		var body gateway.GatewayError
		_ = json.Unmarshal(r.body, &body)
		if r.status != c.status || body.Error.Code != c.reason || (c.status == 403 && body.Error.DecisionID == "") {
			t.Errorf("%s %s: %d %s; want %d %s with a decision id", c.method, c.path, r.status, r.body, c.status, c.reason)
		}
	}
	if rec.count() != before {
		t.Fatalf("denied calls reached the upstream")
	}

	// Arguments: the JSON body is judged by policy.
	if r := in.gw("POST", "/http/github/payments", token, `{"amount": 50}`, map[string]string{"Content-Type": "application/json"}); r.status != 200 {
		t.Errorf("small payment: %d %s", r.status, r.body)
	}
	if _, body := rec.last(t); body != `{"amount": 50}` {
		t.Errorf("upstream body %q", body)
	}
	if r := in.gw("POST", "/http/github/payments", token, `{"amount": 5000}`, map[string]string{"Content-Type": "application/json"}); r.status != 403 {
		t.Errorf("large payment: %d %s", r.status, r.body)
	}

	// No token: 401.
	if r := in.do("GET", "/http/github/repos/acme/web/issues", nil, ""); r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("no token: %d", r.status)
	}

	// Every decision is in the audit log, with the reason and the policies; no secret there.
	evs := in.events("type=tool.call&limit=1000")
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Decision.Effect == "allow" && ev.Target.Resource == "repo:acme/web" && len(ev.Decision.Policies) == 1 && ev.Decision.Policies[0] == "triage-read" && ev.Decision.PolicyVersion == 1 && ev.Actor.Name == "triage-bot"
	}) {
		t.Error("no allow event naming the policy")
	}
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Decision.Effect == "deny" && ev.Decision.Reason == "no_matching_policy" && ev.Target.Resource == "repo:acme/api"
	}) {
		t.Error("no deny event")
	}
	if !hasEvent(in.events("type=tool.result"), warden.EventToolResult, func(ev *warden.AuditEvent) bool {
		return ev.Outcome.Status == "ok" && ev.Outcome.UpstreamStatus == 200 && ev.Outcome.BytesOut > 0
	}) {
		t.Error("no outcome event")
	}
	raw, _ := json.Marshal(in.events("limit=1000"))
	if strings.Contains(string(raw), secret) || strings.Contains(in.log.String(), secret) {
		t.Error("the brokered secret is in the audit log or the server log")
	}

	// Disabling the tool denies at once.
	if _, err := in.cli(in.admin, "tool", "disable", "github", "--reason", "test"); err != nil {
		t.Fatal(err)
	}
	if r := in.gw("GET", "/http/github/repos/acme/web/issues", token, "", nil); r.status != 403 || !strings.Contains(string(r.body), "tool_disabled") {
		t.Errorf("disabled tool: %d %s", r.status, r.body)
	}
}

// TestHTTPGatewayStripsOverrideHeaders: a route granted for POST must not become DELETE, nor a
// granted path another path, on an upstream framework that honours method or URL override
// headers (issue 12, finding 5). The upstream receives none of them.
func TestHTTPGatewayStripsOverrideHeaders(t *testing.T) {
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	token, _ := setupGitHub(t, in, rec)
	overrides := []string{
		"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method", "X-Forwarded-Method",
		"X-Original-URL", "X-Original-URI", "X-Rewrite-URL", "X-Override-URL", "X-Forwarded-Uri", "X-Forwarded-Path",
		"X-Forwarded-Prefix", "X-Envoy-Original-Path", "X-Envoy-Original-Method",
	}
	h := map[string]string{"Content-Type": "application/json", "X-Request-Id": "kept"}
	for _, name := range overrides {
		h[name] = "DELETE /repos/acme/web"
	}
	if r := in.gw("POST", "/http/github/repos/acme/web/issues", token, `{"title":"t"}`, h); r.status != 200 {
		t.Fatalf("allowed call: %d %s", r.status, r.body)
	}
	up, _ := rec.last(t)
	for _, name := range overrides {
		if v := up.Header.Values(name); len(v) > 0 {
			t.Errorf("the upstream received %s: %q", name, v)
		}
	}
	if up.Method != "POST" || up.Header.Get("X-Request-Id") != "kept" {
		t.Errorf("upstream request: %s, headers %v", up.Method, up.Header)
	}
}

func TestDecisionAPI(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	token, _ := setupGitHub(t, in, rec)
	ask := func(body string) map[string]any {
		t.Helper()
		r := in.gw("POST", "/v1/authorize", token, body, map[string]string{"Content-Type": "application/json"})
		if r.status != 200 {
			t.Fatalf("authorize: %d %s", r.status, r.body)
		}
		return r.json(t)
	}
	allow := ask(`{"tool":"github","action":"issues.list","resource":"repo:acme/web"}`)
	if allow["effect"] != "allow" || allow["decision_id"] == "" {
		t.Fatalf("allow: %v", allow)
	}
	deny := ask(`{"tool":"github","action":"issues.list","resource":"repo:acme/other"}`)
	if deny["effect"] != "deny" || deny["reason"] != "no_matching_policy" {
		t.Fatalf("deny: %v", deny)
	}
	id := allow["decision_id"].(string)
	outcome := func(id, body string) int {
		return in.gw("POST", "/v1/decisions/"+id+"/outcome", token, body, map[string]string{"Content-Type": "application/json"}).status
	}
	if s := outcome(id, `{"status":"ok","remote_addr":"10.0.0.1"}`); s != 400 {
		t.Fatalf("remote_addr without a port: %d", s)
	}
	if s := outcome(id, `{"status":"ok","latency_ms":12.5,"bytes_out":300,"remote_addr":"[2001:db8::1]:443"}`); s != 204 {
		t.Fatalf("outcome: %d", s)
	}
	if s := outcome(id, `{"status":"ok"}`); s != 404 {
		t.Fatalf("a second outcome: %d", s)
	}
	if s := outcome(deny["decision_id"].(string), `{"status":"ok"}`); s != 404 {
		t.Fatalf("outcome of a denied decision: %d", s)
	}
	if s := outcome(id, `{"status":"maybe"}`); s != 400 {
		t.Fatalf("bad outcome: %d", s)
	}
	if r := in.gw("POST", "/v1/authorize", token, `{"tool":"github","action":"issues.list","extra":1}`, nil); r.status != 400 {
		t.Fatalf("unknown field: %d", r.status)
	}
	if !hasEvent(in.events("type=tool.result"), warden.EventToolResult, func(ev *warden.AuditEvent) bool {
		return ev.Decision.ID == id && ev.Outcome.LatencyMS == 12.5 && ev.Outcome.RemoteAddr == "[2001:db8::1]:443"
	}) {
		t.Error("the outcome is not in the audit log")
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
