package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
)

// TestBrokeredSecretNeverInTheEvent: an agent that sends a tool's brokered secret back to warden
// — in a URL path, an unrouted path, a tool's name, a query or argument key, the resource or
// action of the decision API, an MCP tool name — finds it redacted in every audit event, not
// only in argument values (issue 12, finding 10). The secret looks like no known credential, so
// only the gateway's knowledge of it can keep it out of the log.
func TestBrokeredSecretNeverInTheEvent(t *testing.T) {
	const secret = "plainvalue7c1d2e9f4b"
	in := start(t, t.TempDir(), func(c *config.Config) { c.Approvals.Hold = config.Duration(time.Second) })
	rec := newRecorder(t)
	bank := newBankUpstream(t)
	if _, err := in.cliStdin(in.admin, secret+"\n", "secret", "set", "files-key"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"tool", "add", "files", "--http", rec.srv.URL, "--risk", "low", "--secret", "files-key", "--inject", "X-Api-Key: {{secret}}",
			"--route", "GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}"},
		{"tool", "add", "vault", "--http", rec.srv.URL, "--risk", "high", "--secret", "files-key", "--inject", "X-Api-Key: {{secret}}",
			"--route", "POST /accounts/{id} -> move account:{id}"},
		{"tool", "add", "bank", "--mcp", bank.url, "--risk", "low", "--secret", "files-key", "--inject", "X-Api-Key: {{secret}}"},
	} {
		if _, err := in.cli(in.admin, args...); err != nil {
			t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
		}
	}
	c := createAgent(t, in, "echo-bot")
	dir := t.TempDir()
	writeFile(t, dir, "all.cedar", `
@id("files") permit(principal == Agent::"echo-bot", action in Action::"files", resource);
@id("bank") permit(principal == Agent::"echo-bot", action in Action::"bank", resource);
@id("vault") permit(principal == Agent::"echo-bot", action in Action::"vault", resource);
`)
	if _, err := in.cli(in.admin, "policy", "apply", dir, "--comment", "echo"); err != nil {
		t.Fatal(err)
	}
	token := in.mustToken(c.ClientID, c.ClientSecret)
	cs := mcpConnect(t, in.url+"/mcp", token)
	authorize := func(body string) {
		t.Helper()
		if r := in.gw("POST", "/v1/authorize", token, body, map[string]string{"Content-Type": "application/json"}); r.status != 200 {
			t.Fatalf("authorize: %d %s", r.status, r.body)
		}
	}
	s := url.PathEscape(secret)
	for _, c := range []struct {
		place string
		send  func()
	}{
		{"a routed URL path (the resource)", func() { in.gw("GET", "/http/files/repos/"+s+"/web/issues", token, "", nil) }},
		{"an unrouted path (the action)", func() { in.gw("GET", "/http/files/"+s, token, "", nil) }},
		{"the path of a request with no valid token", func() { in.gw("GET", "/http/files/repos/"+s+"/web/issues", "expired", "", nil) }},
		{"an unknown tool's name", func() { in.gw("GET", "/http/"+s+"/x", token, "", nil) }},
		{"a query key", func() { in.gw("GET", "/http/files/repos/acme/web/issues?"+s+"=1", token, "", nil) }},
		{"a JSON body key", func() {
			in.gw("GET", "/http/files/repos/acme/web/issues", token, `{"`+secret+`":1}`, map[string]string{"Content-Type": "application/json"})
		}},
		{"the decision API's resource", func() { authorize(`{"tool":"files","action":"issues.list","resource":"repo:` + secret + `"}`) }},
		{"the decision API's action", func() { authorize(`{"tool":"files","action":"` + secret + `"}`) }},
		{"the decision API's tool", func() { authorize(`{"tool":"` + secret + `","action":"x"}`) }},
		{"the decision API's argument key", func() {
			authorize(`{"tool":"files","action":"issues.list","arguments":{"` + secret + `":{"` + secret + `":1}}}`)
		}},
		{"the arguments of a call to no tool", func() {
			authorize(`{"tool":"nosuch","action":"x","arguments":{"` + secret + `":"` + secret + `"}}`)
		}},
		{"the resource of a call held for approval", func() {
			if r := in.gw("POST", "/http/vault/accounts/"+s, token, "", nil); r.status != 403 || !strings.Contains(string(r.body), "approval_pending") {
				t.Fatalf("want a held call: %d %s", r.status, r.body)
			}
			if out, err := in.cli(in.admin, "approvals", "list", "--json"); err != nil || strings.Contains(out, secret) || !strings.Contains(out, "vault") {
				t.Errorf("approvals list: %v\n%s", err, out)
			}
		}},
		{"an MCP argument key", func() {
			_, _ = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "bank.transfer", Arguments: map[string]any{secret: 1, "to": "x", "amount": 1}})
		}},
		{"an MCP tool name", func() { _, _ = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "bank." + secret}) }},
	} {
		t.Run(c.place, func(t *testing.T) {
			before := map[string]bool{}
			for _, ev := range in.events("limit=1000") {
				before[ev.ID] = true
			}
			c.send()
			n := 0
			for _, ev := range in.events("limit=1000") {
				if before[ev.ID] {
					continue
				}
				n++
				if b, _ := json.Marshal(ev); strings.Contains(string(b), secret) {
					t.Errorf("the secret is in a %s event: %s", ev.Type, b)
				}
			}
			if n == 0 {
				t.Fatal("no event was recorded")
			}
		})
	}
	// The outcome of the last call may be recorded after its subtest looked.
	waitUntil(t, 5*time.Second, "the last outcome", func() bool {
		return hasEvent(in.events("type=tool.result&limit=1000"), "tool.result", func(ev *warden.AuditEvent) bool { return ev.Target.Tool == "bank" && ev.Target.Action == "transfer" })
	})
	if b, _ := json.Marshal(in.events("limit=1000")); strings.Contains(string(b), secret) {
		t.Error("the secret is in the audit log")
	}
}
