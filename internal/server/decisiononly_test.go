package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// ledgerDoc declares the agent pay-bot and the decision-only tool ledger: no upstream, three
// actions, one of them critical, one with flow labels, one with an input schema.
const ledgerDoc = `
agents:
  - name: pay-bot
    owner: bob@example.com
    purpose: Pay the bills
tools:
  - name: ledger
    risk: low
    actions:
      - name: balance
        labels: {effect: none, output: trusted}
      - name: pay
        input_schema:
          type: object
          properties:
            to: {type: string, format: email}
            cc: {type: array, items: {type: string, format: email}}
            amount: {type: number}
            callback: {type: string, format: uri}
          required: [to, amount]
      - name: close
        risk: critical
`

// TestDecisionOnlyTools: a tool declared by its actions alone is decided on /v1/authorize — per
// action risk, its declared actions only — is refused at /mcp and /http with decision_only,
// recorded, and warden tool show, policy test and the schema know its actions.
func TestDecisionOnlyTools(t *testing.T) {
	t.Parallel()
	in, auth := authoringServerWith(t, ledgerDoc, `
@id("ledger-up-to-high")
permit(principal == Agent::"pay-bot", action in Action::"ledger", resource)
when { context.risk_level <= 3 };
`)
	decide := func(body string) map[string]any {
		t.Helper()
		return authorize(t, in, auth, body)
	}
	if d := decide(`{"tool":"ledger","action":"balance"}`); d["effect"] != warden.EffectAllow {
		t.Fatalf("balance: %v", d)
	}
	// close is critical on a low tool: its own risk decides.
	if d := decide(`{"tool":"ledger","action":"close"}`); d["effect"] != warden.EffectDeny || d["reason"] != warden.ReasonNoMatchingPolicy {
		t.Fatalf("close: %v", d)
	}
	if d := decide(`{"tool":"ledger","action":"transfer"}`); d["effect"] != warden.EffectDeny || d["reason"] != warden.ReasonUnknownAction ||
		!strings.Contains(d["message"].(string), "actions balance, close, pay") {
		t.Fatalf("an undeclared action: %v", d)
	}

	// Typed by its schema: a list sent as one string is refused before policy, naming the argument.
	if d := decide(`{"tool":"ledger","action":"pay","arguments":{"to":"a@example.com","amount":5,"cc":"b@example.com,c@example.com"}}`); d["effect"] != warden.EffectDeny ||
		d["reason"] != warden.ReasonInvalidArguments || d["message"] != "argument .cc: expected an array of strings, got a string" {
		t.Fatalf("a list sent as one string: %v", d)
	}
	if d := decide(`{"tool":"ledger","action":"pay","arguments":{"to":"a@example.com","amount":5,"cc":["b@example.com"]}}`); d["effect"] != warden.EffectAllow {
		t.Fatalf("pay: %v", d)
	}

	// Never reached: /http and /mcp refuse it, on record.
	r := in.do("POST", "/http/ledger/pay", auth, `{"to":"a@example.com"}`)
	if r.status != 404 || !strings.Contains(string(r.body), `"decision_only"`) || !strings.Contains(string(r.body), "POST /v1/authorize") {
		t.Fatalf("/http: %d %s", r.status, r.body)
	}
	cs := mcpConnect(t, in.url+"/mcp", strings.TrimPrefix(auth["Authorization"], "Bearer "))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "ledger.balance"})
	if err == nil && (res == nil || !res.IsError) || err != nil && !strings.Contains(err.Error(), "decision") {
		t.Fatalf("/mcp: %v %+v", err, res)
	}
	evs := in.events("type=tool.call&agent=pay-bot")
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "ledger" && ev.Target.Action == "close" && ev.Target.Risk == warden.RiskCritical
	}) {
		t.Error("the close call is not on record with its action's risk")
	}
	for _, action := range []string{"POST /pay", "balance"} { // /http, /mcp
		if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
			return ev.Target.Tool == "ledger" && ev.Target.Action == action && ev.Decision.Reason == warden.ReasonDecisionOnly && ev.Decision.Effect == warden.EffectDeny
		}) {
			t.Errorf("no refusal of %s on the decision-only tool on record", action)
		}
	}

	out, err := in.cli(in.admin, "tool", "show", "ledger")
	if err != nil || !strings.Contains(out, "decision_only") || !strings.Contains(out, "close") || !strings.Contains(out, "critical") ||
		!strings.Contains(out, `{"properties":{"amount":{"type":"number"}`) {
		t.Fatalf("tool show: %v\n%s", err, out)
	}
	cases := writeFile(t, t.TempDir(), "cases.yaml", `
- {name: balance, agent: pay-bot, tool: ledger, action: balance, expect: allow}
- {name: close is critical, agent: pay-bot, tool: ledger, action: close, expect: deny}
- {name: cc as one string, agent: pay-bot, tool: ledger, action: pay, arguments: {to: a@example.com, amount: 5, cc: "b@x.example,c@y.example"}, expect: deny}
`)
	if out, err := in.cli(in.admin, "policy", "test", cases); err != nil || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
	if out, err := in.cli(in.admin, "policy", "test", cases, "--json"); err != nil || !strings.Contains(out, `"argument .cc: expected an array of strings, got a string"`) {
		t.Fatalf("policy test --json: %v\n%s", err, out)
	}
	if out, err := in.cli(in.admin, "policy", "schema"); err != nil || !strings.Contains(out, `action "ledger:close" in ["ledger"]`) {
		t.Fatalf("policy schema: %v\n%s", err, out)
	}
	// A policy naming an action the tool does not declare is refused.
	dir := t.TempDir()
	writeFile(t, dir, "typo.cedar", `permit(principal, action == Action::"ledger:transfer", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err == nil || !strings.Contains(err.Error(), `tool "ledger" (decision_only) has actions balance, close, pay`) {
		t.Fatalf("a policy on an undeclared action: %v", err)
	}

	// A schema warden cannot read is refused when the tool is declared.
	badDoc := writeFile(t, t.TempDir(), "warden.yaml", strings.Replace(ledgerDoc, "amount: {type: number}", "amount: {type: money}", 1))
	if _, err := in.cli(in.admin, "apply", "-f", badDoc); err == nil || !strings.Contains(err.Error(), `action pay: input_schema: .amount: unknown type "money"`) {
		t.Fatalf("a schema with an unknown type: %v", err)
	}

	// Applying the same document again changes nothing; another risk is an update.
	for _, step := range []struct{ doc, op string }{{ledgerDoc, "unchanged"}, {strings.Replace(ledgerDoc, "risk: critical", "risk: high", 1), "update"}} {
		doc, op := step.doc, step.op
		var plan admin.Plan
		in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
		if !slices.ContainsFunc(plan.Changes, func(c admin.Change) bool { return c.Kind == "tool" && c.Name == "ledger" && c.Op == op }) {
			t.Fatalf("apply, want %s: %+v", op, plan.Changes)
		}
	}

	// A misspelt key of an action is an error, not an action of the tool's risk.
	if _, err := in.cli(in.admin, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", strings.Replace(ledgerDoc, "risk: critical", "riks: critical", 1))); err == nil || !strings.Contains(err.Error(), "riks") {
		t.Fatalf("a misspelt key: %v", err)
	}

	// warden tool add --decision-only, with per-action risk.
	if out, err := in.cli(in.admin, "tool", "add", "crm", "--decision-only", "--action", "lookup", "--action", "delete:critical"); err != nil || !strings.Contains(out, "delete") {
		t.Fatalf("tool add --decision-only: %v\n%s", err, out)
	}
	if _, err := in.cli(in.admin, "tool", "add", "crm2", "--decision-only"); err == nil {
		t.Fatal("--decision-only without an action was accepted")
	}
	if _, err := in.cli(in.admin, "tool", "add", "crm3", "--decision-only", "--action", "a", "--http", "https://x.example"); err == nil {
		t.Fatal("a decision-only tool with an upstream was accepted")
	}
}

// authoringServerWith starts a server with doc and policies applied, and returns it with the
// headers of a pay-bot call to the decision API.
func authoringServerWith(t *testing.T, doc, policies string) (*instance, map[string]string) {
	t.Helper()
	in := start(t, t.TempDir(), nil)
	plan := applyFlow(t, in, doc, policies)
	cred := plan.Credentials["pay-bot"]
	return in, map[string]string{"Authorization": "Bearer " + in.mustToken(cred.ClientID, cred.ClientSecret), "Content-Type": "application/json"}
}

// TestNormalisedArguments: an address-book allowlist and a URL host allowlist written against
// context.norm hold for Linda.Green@ACME.example and a trailing slash, through warden policy
// test and the decision API; an address the schema's format refuses is invalid_arguments.
func TestNormalisedArguments(t *testing.T) {
	t.Parallel()
	in, auth := authoringServerWith(t, ledgerDoc+`sets:
  payees: [linda.green@acme.example, ap@supplier.example]
`, `
@id("known-payees")
permit(principal == Agent::"pay-bot", action == Action::"ledger:pay", resource)
when {
  Set::"payees".values.contains(context.norm.to) &&
  (!(context.norm has callback) || context.norm.callback.host == "hooks.acme.example" && context.norm.callback.path == "/paid")
};
`)
	pay := func(args string) map[string]any {
		t.Helper()
		return authorize(t, in, auth, `{"tool":"ledger","action":"pay","arguments":`+args+`}`)
	}
	for _, tc := range []struct{ args, effect, reason string }{
		{`{"to":"Linda.Green@ACME.example","amount":5}`, warden.EffectAllow, warden.ReasonPolicyAllow},
		{`{"to":"ap@supplier.example","amount":5,"callback":"https://Hooks.Acme.example/paid/"}`, warden.EffectAllow, warden.ReasonPolicyAllow},
		{`{"to":"ap@supplier.example","amount":5,"callback":"https://hooks.acme.example.evil.example/paid"}`, warden.EffectDeny, warden.ReasonNoMatchingPolicy},
		{`{"to":"mallory@evil.example","amount":5}`, warden.EffectDeny, warden.ReasonNoMatchingPolicy},
		{`{"to":"linda.green","amount":5}`, warden.EffectDeny, warden.ReasonInvalidArguments},
	} {
		if d := pay(tc.args); d["effect"] != tc.effect || d["reason"] != tc.reason {
			t.Errorf("%s: %v, want %s %s", tc.args, d, tc.effect, tc.reason)
		}
	}
	cases := writeFile(t, t.TempDir(), "cases.yaml", `
- {name: mixed case, agent: pay-bot, tool: ledger, action: pay, arguments: {to: Linda.Green@ACME.example, amount: 5}, expect: allow}
- {name: trailing slash, agent: pay-bot, tool: ledger, action: pay, arguments: {to: ap@supplier.example, amount: 5, callback: "https://hooks.acme.example/paid/"}, expect: allow}
- {name: not an address, agent: pay-bot, tool: ledger, action: pay, arguments: {to: linda.green, amount: 5}, expect: deny}
`)
	if out, err := in.cli(in.admin, "policy", "test", cases); err != nil || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
}

// TestMCPInputSchema: an MCP tool's pinned inputSchema types its arguments as a decision-only
// action's schema does: a list sent as one string is refused at /mcp with invalid_arguments (a
// JSON-RPC invalid params error, recorded) and never reaches the server; a list goes through;
// policy test judges it the same way.
func TestMCPInputSchema(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var received []string
	s := mcp.NewServer(&mcp.Implementation{Name: "cal", Version: "1"}, nil)
	type invite struct {
		Participants []string `json:"participants"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "invite"}, func(_ context.Context, _ *mcp.CallToolRequest, in invite) (*mcp.CallToolResult, any, error) {
		mu.Lock()
		received = append(received, strings.Join(in.Participants, "|"))
		mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "invited"}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(up.Close)

	in := start(t, t.TempDir(), nil)
	if _, err := in.cli(in.admin, "tool", "add", "cal", "--mcp", up.URL, "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	c := createAgent(t, in, "bot")
	dir := t.TempDir()
	writeFile(t, dir, "bot.cedar", `permit(principal == Agent::"bot", action in Action::"cal", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	// The same set as the shadow candidate: it reads the arguments with the same schema, so it
	// decides both calls as the live set does.
	if _, err := in.cli(in.admin, "policy", "apply", "--shadow", dir); err != nil {
		t.Fatal(err)
	}
	cs := mcpConnect(t, in.url+"/mcp", in.mustToken(c.ClientID, c.ClientSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "cal.invite", Arguments: map[string]any{"participants": []string{"a@x.example", "b@y.example"}}}); err != nil || res.IsError {
		t.Fatalf("a list: %v %+v", err, res)
	}
	_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "cal.invite", Arguments: map[string]any{"participants": "a@x.example,b@y.example"}})
	var rpcErr *jsonrpc.Error
	if !errorsAs(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(string(rpcErr.Data), `"invalid_arguments"`) ||
		!strings.Contains(rpcErr.Message, "argument .participants: expected") {
		t.Fatalf("one string for a list: %v", err)
	}
	mu.Lock()
	got := slices.Clone(received)
	mu.Unlock()
	if !slices.Equal(got, []string{"a@x.example|b@y.example"}) {
		t.Fatalf("the server received %q", got)
	}
	if !hasEvent(in.events("type=tool.call&agent=bot"), warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "cal" && ev.Decision.Reason == warden.ReasonInvalidArguments
	}) {
		t.Fatal("the refusal is not on record")
	}
	var rep apitype.PolicyShadowReport
	in.cliJSON(in.admin, &rep, "policy", "shadow", "report")
	if r := rep.Replica; r.Compared != 2 || r.Diffs != 0 {
		t.Fatalf("the candidate, the live set itself, compared %d calls and decided %d otherwise: want 2 and 0", r.Compared, r.Diffs)
	}
	cases := writeFile(t, t.TempDir(), "cases.yaml", `
- {name: a list, agent: bot, tool: cal, action: invite, arguments: {participants: [a@x.example]}, expect: allow}
- {name: one string, agent: bot, tool: cal, action: invite, arguments: {participants: "a@x.example,b@y.example"}, expect: deny}
`)
	if out, err := in.cli(in.admin, "policy", "test", cases); err != nil || !strings.Contains(out, "2 passed, 0 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
}
