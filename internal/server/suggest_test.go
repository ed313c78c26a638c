package server_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/httpapi"
)

// suggestDoc declares the agent bot and two MCP tools (their upstream a closed local port: the
// decision API needs none), with the grants given.
func suggestDoc(grants string) string {
	return `
agents:
  - name: bot
    owner: bob@example.com
    purpose: Triage issues
tools:
  - name: github
    mcp: http://127.0.0.1:9/github
    risk: low
  - name: mail
    mcp: http://127.0.0.1:9/mail
    risk: low
  - name: vault
    mcp: http://127.0.0.1:9/vault
    risk: high
` + grants
}

// TestPolicySuggest records real decisions allowed by broad grants, asks for a suggestion, puts
// it in place of the broad grants (as warden.yaml grants, and as a Cedar file), and decides the
// same calls again: every one allowed, and calls outside what the agent did denied. The grant
// it never used is listed, and only it.
func TestPolicySuggest(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	var plan admin.Plan
	broad := "grants:\n  - {agent: bot, tool: github}\n  - {agent: bot, tool: mail}\n  - {agent: bot, tool: vault, approval: waived}\n"
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", suggestDoc(broad)))
	cred := plan.Credentials["bot"]
	auth := map[string]string{"Authorization": "Bearer " + in.mustToken(cred.ClientID, cred.ClientSecret), "Content-Type": "application/json"}
	decide := func(tool, action, resource string) string {
		t.Helper()
		r := in.do("POST", "/v1/authorize", auth, `{"tool":"`+tool+`","action":"`+action+`","resource":"`+resource+`"}`)
		if r.status != 200 {
			t.Fatalf("authorize %s:%s %s: %d %s", tool, action, resource, r.status, r.body)
		}
		return r.json(t)["effect"].(string)
	}
	done := [][3]string{
		{"github", "issues.list", "repo:acme/web"},
		{"github", "issues.list", "repo:acme/api"},
		{"github", "issues.get", "repo:acme/web"},
		{"github", "user.get", ""},
		{"vault", "read", ""}, // high risk: allowed without a person by the grant's waiver
	}
	outside := [][3]string{
		{"github", "repo.delete", "repo:acme/web"}, // an action it never used
		{"github", "issues.list", "repo:other/x"},  // outside the generalised pattern
		{"github", "issues.get", "repo:acme/api"},  // a resource issues.get never named, alone under its prefix
		{"github", "user.get", "user:root"},        // user.get named no resource
		{"mail", "read", ""},                       // a tool it never used
	}
	for _, c := range done {
		if d := decide(c[0], c[1], c[2]); d != warden.EffectAllow {
			t.Fatalf("recording %v under the broad grants: %s", c, d)
		}
	}

	var rep apitype.SuggestReport
	in.cliJSON(in.admin, &rep, "policy", "suggest", "--agent", "bot", "--since", "1h")
	if rep.Calls != len(done) || len(rep.Grants) != 4 {
		t.Fatalf("suggestion: %d calls, grants %+v", rep.Calls, rep.Grants)
	}
	if g := rep.Grants[1]; g.Tool != "github" || !slices.Equal(g.Actions, []string{"issues.list"}) || !slices.Equal(g.Resources, []string{"repo:acme/*"}) {
		t.Errorf("issues.list's grant: %+v", g)
	}
	var unused []string
	for _, u := range rep.Unused {
		unused = append(unused, u.Policy)
	}
	if !slices.Equal(unused, []string{"grant:bot:mail:0"}) {
		t.Errorf("unused grants %q, want exactly the mail grant", unused)
	}
	// Auditors may read it; an approver, and the agent itself, may not; a bad period is a 400.
	for _, tt := range []struct {
		role   string
		status int
	}{{"auditor", 200}, {"approver", 403}} {
		var tok httpapi.CreatedAdminToken
		in.cliJSON(in.admin, &tok, "admin", "token", "create", "suggest-"+tt.role, "--role", tt.role)
		if r := in.do("GET", "/v1/agents/bot/suggest?since=1h", map[string]string{"Authorization": "Bearer " + tok.Token}, ""); r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.role, r.status, r.body, tt.status)
		}
	}
	if r := in.do("GET", "/v1/agents/bot/suggest", auth, ""); r.status != 401 && r.status != 403 {
		t.Errorf("the agent asked for its own suggestion: %d %s", r.status, r.body)
	}
	if r := in.do("GET", "/v1/agents/bot/suggest?since=yesterday", map[string]string{"Authorization": "Bearer " + in.admin}, ""); r.status != 400 {
		t.Errorf("since=yesterday: %d %s, want 400", r.status, r.body)
	}
	yamlOut, err := in.cli(in.admin, "policy", "suggest", "--agent", "bot", "--since", "1h")
	if err != nil || !strings.HasPrefix(yamlOut, rep.YAML) || !strings.Contains(yamlOut, "#   grant:bot:mail:0 (") {
		t.Fatalf("policy suggest: %v\n%s", err, yamlOut)
	}

	check := func(how string) {
		t.Helper()
		for _, c := range done {
			if d := decide(c[0], c[1], c[2]); d != warden.EffectAllow {
				t.Errorf("%s: a recorded call %v is decided %s", how, c, d)
			}
		}
		for _, c := range outside {
			if d := decide(c[0], c[1], c[2]); d != warden.EffectDeny {
				t.Errorf("%s: a call outside what was done %v is decided %s", how, c, d)
			}
		}
	}
	// The YAML output, comments and all, in place of the broad grants.
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", suggestDoc(yamlOut)))
	check("warden.yaml grants")

	// The Cedar output, applied as a policy file beside a document without grants.
	cedarOut, err := in.cli(in.admin, "policy", "suggest", "--agent", "bot", "--since", "1h", "--format", "cedar")
	if err != nil {
		t.Fatal(err)
	}
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", suggestDoc("grants: []\n")))
	if d := decide("github", "user.get", ""); d != warden.EffectDeny {
		t.Fatalf("without grants: %s", d)
	}
	if _, err := in.cli(in.admin, "policy", "apply", writeFile(t, t.TempDir(), "suggested.cedar", cedarOut)); err != nil {
		t.Fatalf("policy apply the suggestion: %v\n%s", err, cedarOut)
	}
	check("Cedar policy")
}
