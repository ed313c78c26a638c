package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/gateway"
)

// bodyEnv is a server with an HTTP tool "bank" (risk high: every transfer waits for a person)
// and "ledger" (risk low, judged by policy on the body's amount) in front of one recorder, and
// an agent pay-bot granted both.
type bodyEnv struct {
	in    *instance
	rec   *recorder
	token string
	carol string // an approver
}

func newBodyEnv(t *testing.T) *bodyEnv {
	t.Helper()
	env := &bodyEnv{rec: newRecorder(t)}
	env.in = start(t, t.TempDir(), func(c *config.Config) { c.Approvals.Hold = config.Duration(time.Second) })
	in := env.in
	for _, args := range [][]string{
		{"tool", "add", "bank", "--http", env.rec.srv.URL, "--risk", "high", "--route", "POST /transfer -> transfer"},
		{"tool", "add", "ledger", "--http", env.rec.srv.URL, "--risk", "low", "--route", "POST /transfer -> transfer"},
	} {
		if _, err := in.cli(in.admin, args...); err != nil {
			t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
		}
	}
	c := createAgent(t, in, "pay-bot")
	dir := t.TempDir()
	writeFile(t, dir, "pay.cedar", `
@id("bank")
permit(principal == Agent::"pay-bot", action == Action::"bank:transfer", resource);

@id("ledger")
permit(principal == Agent::"pay-bot", action == Action::"ledger:transfer", resource);

@id("ledger-limit")
forbid(principal, action == Action::"ledger:transfer", resource)
when { context.args has body && context.args.body has amount && context.args.body.amount > 1000 };
`)
	if _, err := in.cli(in.admin, "policy", "apply", dir, "--comment", "payments"); err != nil {
		t.Fatal(err)
	}
	env.token = in.mustToken(c.ClientID, c.ClientSecret)
	var out struct {
		Token string `json:"token"`
	}
	in.cliJSON(in.admin, &out, "admin", "token", "create", "carol", "--role", "approver", "--email", "carol@example.com")
	env.carol = out.Token
	return env
}

// send posts body to the tool's /transfer with the Content-Type given ("" sends none).
func (env *bodyEnv) send(tool, contentType, body string) response {
	h := map[string]string{}
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return env.in.gw("POST", "/http/"+tool+"/transfer", env.token, body, h)
}

// pendingRequestID returns the id of the approval request a held answer names.
func pendingRequestID(t *testing.T, r response) string {
	t.Helper()
	var e gateway.GatewayError
	_ = json.Unmarshal(r.body, &e)
	_, after, ok := strings.Cut(e.Error.Message, "request apr_")
	if r.status != 403 || e.Error.Code != "approval_pending" || !ok || len(after) < 26 {
		t.Fatalf("want a held call, got %d %s", r.status, r.body)
	}
	return "apr_" + after[:26]
}

func (env *bodyEnv) received(body string) int {
	env.rec.mu.Lock()
	defer env.rec.mu.Unlock()
	n := 0
	for _, b := range env.rec.body {
		if b == body {
			n++
		}
	}
	return n
}

// TestHTTPApprovalCoversTheBody: an approver approves a held call for a transfer to bob; the
// agent sends the call again with a body for mallory. Whatever the body's label — none,
// text/plain, text/json, application/x-json, a form — and whether warden can read the body or
// not, the swapped body is another call waiting for its own approval, and never reaches the
// upstream (issue 12, finding 1).
func TestHTTPApprovalCoversTheBody(t *testing.T) {
	env := newBodyEnv(t)
	in := env.in
	for _, c := range []struct {
		contentType, approved, swapped string
		inspected                      bool
	}{
		{"text/plain", `{"to":"bob","amount":1}`, `{"to":"mallory","amount":99999}`, true},
		{"", `{"to":"bob","amount":2}`, `{"to":"mallory","amount":99999}`, true},
		{"text/json", `{"to":"bob","amount":3}`, `{"to":"mallory","amount":99999}`, true},
		{"application/x-json", `{"to":"bob","amount":4}`, `{"to":"mallory","amount":99999}`, true},
		{"application/x-www-form-urlencoded", `to=bob&amount=5`, `to=mallory&amount=99999`, false},
		{"application/octet-stream", "\x00bob 6", "\x00mallory 99999", false},
	} {
		id := pendingRequestID(t, env.send("bank", c.contentType, c.approved))
		var req struct {
			Arguments json.RawMessage `json:"arguments"`
		}
		in.cliJSON(env.carol, &req, "approvals", "show", id)
		sum := sha256.Sum256([]byte(c.approved))
		shown := string(req.Arguments)
		if !strings.Contains(shown, hex.EncodeToString(sum[:])) || c.inspected != strings.Contains(shown, `"bob"`) {
			t.Errorf("%q: the approver is shown %s", c.contentType, shown)
		}
		if _, err := in.cli(env.carol, "approve", id); err != nil {
			t.Fatal(err)
		}
		if other := pendingRequestID(t, env.send("bank", c.contentType, c.swapped)); other == id {
			t.Errorf("%q: the approval of %q was used for %q", c.contentType, c.approved, c.swapped)
		}
		if n := env.received(c.swapped); n != 0 {
			t.Fatalf("%q: the swapped body reached the upstream %d times", c.contentType, n)
		}
		if r := env.send("bank", c.contentType, c.approved); r.status != 200 || env.received(c.approved) != 1 {
			t.Errorf("%q: the approved call sent again: %d %s", c.contentType, r.status, r.body)
		}
	}
}

// TestHTTPPolicySeesTheBody: a forbid on the body's amount fires whatever the body's label, a
// JSON body too large to judge is refused, and a policy can refuse what warden could not read
// (issue 12, finding 1).
func TestHTTPPolicySeesTheBody(t *testing.T) {
	env := newBodyEnv(t)
	in := env.in
	for _, ct := range []string{"text/plain", "", "text/json", "application/x-json", "application/json; charset=utf-8", "text/plain; charset=utf-8"} {
		r := env.send("ledger", ct, `{"to":"mallory","amount":99999}`)
		var e gateway.GatewayError
		_ = json.Unmarshal(r.body, &e)
		if r.status != 403 || e.Error.Code != "forbidden_by_policy" {
			t.Errorf("%q: a transfer of 99999: %d %s; want forbidden_by_policy", ct, r.status, r.body)
		}
		if r := env.send("ledger", ct, `{"to":"bob","amount":10}`); r.status != 200 {
			t.Errorf("%q: a transfer of 10: %d %s", ct, r.status, r.body)
		}
	}
	if env.received(`{"to":"mallory","amount":99999}`) != 0 {
		t.Fatal("a forbidden body reached the upstream")
	}

	// JSON padded past the inspection limit, behind or ahead of the object, labelled or not:
	// refused with 413, not forwarded unjudged.
	pad := strings.Repeat(" ", 1<<20)
	for _, c := range []struct{ ct, body string }{
		{"text/plain", `{"to":"mallory","amount":99999}` + pad},
		{"text/plain", pad + `{"to":"mallory","amount":99999}`},
		{"application/json", `{"to":"mallory","amount":99999}` + pad},
		{"", "\xef\xbb\xbf" + `[{"to":"mallory","amount":99999}]` + pad},
	} {
		r := env.send("ledger", c.ct, c.body)
		var e gateway.GatewayError
		_ = json.Unmarshal(r.body, &e)
		if r.status != 413 || e.Error.Code != "invalid_request" || !strings.Contains(e.Error.Message, "JSON request body is over") {
			t.Errorf("%q, %d bytes: %d %s; want 413", c.ct, len(c.body), r.status, r.body)
		}
	}
	// Labelled JSON that is not JSON is refused; unlabelled text that merely starts with "[" is not JSON.
	if r := env.send("ledger", "application/json", `{"to":`); r.status != 400 {
		t.Errorf("broken JSON: %d %s", r.status, r.body)
	}
	if r := env.send("ledger", "text/plain", `[INFO] to=mallory amount=99999`); r.status != 200 {
		t.Errorf("text: %d %s", r.status, r.body)
	}
	// A large body that is not JSON goes through, bound by its digest.
	blob := "\x00" + strings.Repeat("b", 2<<20)
	if r := env.send("ledger", "application/octet-stream", blob); r.status != 200 || env.received(blob) != 1 {
		t.Errorf("a 2 MiB file: %d %s", r.status, r.body)
	}
	sum := sha256.Sum256([]byte(blob))
	if !hasEvent(in.events("type=tool.call&limit=1000"), warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		var args map[string]any
		_ = json.Unmarshal(ev.Target.Arguments, &args)
		_, body := args["body"]
		return ev.Decision.Effect == warden.EffectAllow && args["body_sha256"] == hex.EncodeToString(sum[:]) && !body
	}) {
		t.Error("the uninspected body's digest is not in its audit event")
	}

	// context.body_inspected: a policy that will not let through what warden could not read.
	dir := t.TempDir()
	writeFile(t, dir, "pay.cedar", `
@id("ledger")
permit(principal == Agent::"pay-bot", action == Action::"ledger:transfer", resource);

@id("ledger-inspected")
forbid(principal, action == Action::"ledger:transfer", resource) unless { context.body_inspected };
`)
	if _, err := in.cli(in.admin, "policy", "apply", dir, "--comment", "inspected bodies only"); err != nil {
		t.Fatal(err)
	}
	if r := env.send("ledger", "application/x-www-form-urlencoded", "to=mallory&amount=99999"); r.status != 403 || !strings.Contains(string(r.body), "forbidden_by_policy") {
		t.Errorf("an uninspected form: %d %s", r.status, r.body)
	}
	for _, body := range []string{`{"to":"bob","amount":10}`, ""} {
		if r := env.send("ledger", "text/plain", body); r.status != 200 {
			t.Errorf("inspected body %q: %d %s", body, r.status, r.body)
		}
	}
}
