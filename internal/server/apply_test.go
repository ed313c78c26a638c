package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/cli"
)

const applyDoc = `
agents:
  - name: triage-bot
    owner: alice@example.com
    purpose: Triage new issues in acme/web
tools:
  - name: github
    http: UPSTREAM
    risk: medium
    secret: github-token
    inject: "Authorization: Bearer {{secret}}"
    routes:
      - "GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}"
      - "POST /repos/{owner}/{repo}/issues/{n}/comments -> issues.comment repo:{owner}/{repo}"
grants:
  - agent: triage-bot
    tool: github
    actions: [issues.list, issues.comment]
    when: 'resource == Resource::"repo:acme/web"'
budgets:
  - agent: triage-bot
    tool: github
    action: issues.comment
    rate: 2/hour
`

func TestApply(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	if _, err := in.cliStdin(in.admin, "ghp_"+strings.Repeat("Q", 36), "secret", "set", "github-token"); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, t.TempDir(), "warden.yaml", strings.Replace(applyDoc, "UPSTREAM", rec.srv.URL, 1))

	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", file, "--dry-run")
	if !plan.DryRun || countOps(plan, "create") != 4 {
		t.Fatalf("dry run plan: %+v", plan)
	}
	var tools []map[string]any
	in.cliJSON(in.admin, &tools, "tool", "list")
	if len(tools) != 0 {
		t.Fatal("a dry run changed something")
	}

	in.cliJSON(in.admin, &plan, "apply", "-f", file)
	cred, ok := plan.Credentials["triage-bot"]
	if !ok || !strings.HasPrefix(cred.ClientSecret, "wsec_") || plan.PolicyVersion != 1 {
		t.Fatalf("apply: %+v", plan)
	}
	token := in.mustToken(cred.ClientID, cred.ClientSecret)

	// The grant works, with its condition; the budget limits the action.
	if r := in.gw("GET", "/http/github/repos/acme/web/issues", token, "", nil); r.status != 200 {
		t.Fatalf("granted call: %d %s", r.status, r.body)
	}
	if r := in.gw("GET", "/http/github/repos/acme/other/issues", token, "", nil); r.status != 403 {
		t.Fatalf("out of grant: %d %s", r.status, r.body)
	}
	for i := 0; i < 2; i++ {
		if r := in.gw("POST", "/http/github/repos/acme/web/issues/1/comments", token, "{}", map[string]string{"Content-Type": "application/json"}); r.status != 200 {
			t.Fatalf("comment %d: %d %s", i, r.status, r.body)
		}
	}
	before := rec.count()
	r := in.gw("POST", "/http/github/repos/acme/web/issues/1/comments", token, "{}", map[string]string{"Content-Type": "application/json"})
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "budget_exceeded") {
		t.Fatalf("over the rate: %d %v %s", r.status, r.header, r.body)
	}
	if rec.count() != before {
		t.Fatal("a call over budget reached the upstream")
	}
	var budgets []admin.BudgetStatus
	in.cliJSON(in.admin, &budgets, "budget", "show", "triage-bot")
	if len(budgets) != 1 || budgets[0].Used < 1.9 || budgets[0].Limit != 2 {
		t.Fatalf("budget show: %+v", budgets)
	}

	// Applying the same file again changes nothing.
	plan = admin.Plan{}
	in.cliJSON(in.admin, &plan, "apply", "-f", file)
	if countOps(plan, "unchanged") != len(plan.Changes) || plan.PolicyVersion != 0 || len(plan.Credentials) != 0 {
		t.Fatalf("second apply: %+v", plan)
	}
	var history []map[string]any
	in.cliJSON(in.admin, &history, "policy", "history")
	if len(history) != 1 {
		t.Fatalf("a second identical apply made a policy version: %d", len(history))
	}

	// Dropping the agent and the tool from the file removes what apply created.
	empty := writeFile(t, t.TempDir(), "warden.yaml", "agents: []\n")
	plan = admin.Plan{}
	in.cliJSON(in.admin, &plan, "apply", "-f", empty)
	if countOps(plan, "remove") < 3 {
		t.Fatalf("removal plan: %+v", plan)
	}
	in.cliJSON(in.admin, &tools, "tool", "list")
	if len(tools) != 0 {
		t.Fatalf("tools after removal: %v", tools)
	}

	// A bad document is refused as a whole, naming the problem.
	bad := writeFile(t, t.TempDir(), "warden.yaml", "agents:\n  - name: x\n    owner: a@b.co\n    purpose: p\n    colour: red\n")
	if _, err := in.cli(in.admin, "apply", "-f", bad); cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown key: %v", err)
	}
	bad = writeFile(t, t.TempDir(), "warden.yaml", "grants:\n  - agent: x\n    tool: nosuch\n")
	if _, err := in.cli(in.admin, "apply", "-f", bad); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("grant on an unknown tool: %v", err)
	}
}

func countOps(p admin.Plan, op string) int {
	n := 0
	for _, c := range p.Changes {
		if c.Op == op {
			n++
		}
	}
	return n
}

func TestPolicyCommands(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	setupGitHub(t, in, rec) // policy version 1
	dir := t.TempDir()
	writeFile(t, dir, "p.cedar", `@id("only-list") permit(principal == Agent::"triage-bot", action == Action::"github:issues.list", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	// Validation: an action the tool does not have is refused, naming the policy and the action.
	writeFile(t, dir, "p.cedar", `@id("typo") permit(principal, action == Action::"github:issues.lst", resource);`)
	_, err := in.cli(in.admin, "policy", "apply", dir)
	if err == nil || !strings.Contains(err.Error(), "issues.lst") {
		t.Fatalf("invalid policy: %v", err)
	}

	cases := writeFile(t, t.TempDir(), "cases.yaml", `
- name: list is allowed
  agent: triage-bot
  tool: github
  action: issues.list
  resource: repo:acme/web
  expect: allow
- name: create is denied
  agent: triage-bot
  tool: github
  action: issues.create
  resource: repo:acme/web
  expect: allow
`)
	out, err := in.cli(in.admin, "policy", "test", cases)
	var mismatch *cli.PolicyMismatchError
	if err == nil || !errorsAs(err, &mismatch) || mismatch.Failed != 1 || !strings.Contains(out, "FAIL  create is denied: expected allow, got deny") || !strings.Contains(out, "1 passed, 1 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
	out, err = in.cli(in.admin, "policy", "explain", "--agent", "triage-bot", "--tool", "github", "--action", "issues.list", "--resource", "repo:acme/web")
	if err != nil || !strings.Contains(out, "allow (policy_allow)") || !strings.Contains(out, "only-list") {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	// Rollback makes version 1's policies current as version 3.
	var ps map[string]any
	in.cliJSON(in.admin, &ps, "policy", "rollback", "1", "--reason", "test")
	if ps["version"].(float64) != 3 {
		t.Fatalf("rollback: %v", ps)
	}
	in.cliJSON(in.admin, &ps, "policy", "show")
	files, _ := json.Marshal(ps["files"])
	if !strings.Contains(string(files), "triage-read") {
		t.Fatalf("after rollback: %s", files)
	}
}

// TestApplyErrorsNameTheField: a mistake in warden.yaml is reported by its field's path and line,
// whether the YAML decoder finds it (an unknown key, a value of the wrong kind) or the server's
// checks do (a risk that is not one of the four), never by a Go type.
func TestApplyErrorsNameTheField(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	tools := "tools:\n  - name: a\n    http: http://127.0.0.1:1\n  - name: b\n    http: http://127.0.0.1:1\n    routes: ['GET / -> read']\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown key", tools + "  - name: c\n    http: http://127.0.0.1:1\n    rsik: high\n",
			`warden.yaml: tools[2]: unknown key "rsik" (did you mean "risk"?) (line 9)`},
		{"a list for a string", tools + "  - name: c\n    http: [a]\n",
			`warden.yaml: tools[2].http: a list is not a string (line 8)`},
		{"a word for a number", "budgets:\n  - agent: x\n    concurrency: four\n",
			`warden.yaml: budgets[0].concurrency: "four" is not a whole number (line 3)`},
		{"a mapping for a list", "grants:\n  - agent: x\n    tool: a\n    actions: {read: yes}\n",
			`warden.yaml: grants[0].actions: a mapping is not a list (line 4)`},
		{"two mistakes", "agents:\n  - name: x\n    owner: [a]\ntools: 3\n",
			"warden.yaml: agents[0].owner: a list is not a string (line 3)\nwarden.yaml: tools: 3 is not a list (line 4)"},
		{"a risk the server refuses", strings.Replace(tools, "name: a\n", "name: a\n    routes: ['GET / -> read']\n", 1) + "  - name: c\n    http: http://127.0.0.1:1\n    routes: ['GET / -> read']\n    risk: hgh\n",
			`warden.yaml: tools[2].risk: tool c: unknown risk "hgh": use low, medium, high or critical (line 11)`},
	} {
		file := writeFile(t, t.TempDir(), "warden.yaml", tc.doc)
		_, err := in.cli(in.admin, "apply", "-f", file)
		if cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(strings.ReplaceAll(err.Error(), file, "warden.yaml"), tc.want) {
			t.Errorf("%s: apply = %v (exit %d), want %q", tc.name, err, cli.ExitCode(err), tc.want)
		}
		if strings.Contains(err.Error(), "apitype") || strings.Contains(err.Error(), "unmarshal") {
			t.Errorf("%s: the error names a Go type: %v", tc.name, err)
		}
	}
}
