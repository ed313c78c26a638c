package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

// bankUpstream is an MCP server built with the Go SDK with a "transfer" and a "balance" tool; it
// counts the transfers it carries out, by recipient.
type bankUpstream struct {
	url  string
	mu   sync.Mutex
	sent map[string]int
}

func newBankUpstream(t *testing.T) *bankUpstream {
	b := &bankUpstream{sent: map[string]int{}}
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	type transferArgs struct {
		Amount   int    `json:"amount"`
		To       string `json:"to"`
		APIToken string `json:"api_token,omitempty"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "transfer", Description: "move money"}, func(_ context.Context, _ *mcp.CallToolRequest, in transferArgs) (*mcp.CallToolResult, any, error) {
		b.mu.Lock()
		b.sent[in.To]++
		b.mu.Unlock()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sent " + in.To}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "balance", Description: "read the balance"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "balance 1000"}}}, nil, nil
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	b.url = ts.URL
	return b
}

func (b *bankUpstream) transfers(to string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent[to]
}

// approvalEnv is a server whose agent pay-bot (owner alice@example.com) reaches the bank through
// /mcp: bank is high risk (transfer waits for a person; balance is waived), vault is critical,
// and notes is low risk but declares transfer as needing approval and balance is granted only
// with approval (@approval("required")).
type approvalEnv struct {
	in    *instance
	bank  *bankUpstream
	creds map[string]admin.AgentCredentials
	cred  admin.AgentCredentials
	token string
	cs    *mcp.ClientSession
	hooks chan []byte // what the approval webhook received
}

func newApprovalEnv(t *testing.T, edit func(*config.Approvals)) *approvalEnv {
	t.Helper()
	env := &approvalEnv{bank: newBankUpstream(t), hooks: make(chan []byte, 64)}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		env.hooks <- b
	}))
	t.Cleanup(hook.Close)
	env.in = start(t, t.TempDir(), func(c *config.Config) {
		c.Approvals.Webhooks = []config.ApprovalWebhook{{URL: hook.URL}}
		if edit != nil {
			edit(&c.Approvals)
		}
	})
	in := env.in
	if _, err := in.cliStdin(in.admin, "bank-secret-value-1234567890\n", "secret", "set", "bank-key"); err != nil {
		t.Fatal(err)
	}
	doc := `
agents:
  - name: pay-bot
    owner: alice@example.com
    purpose: Pay invoices
  - name: ops-bot
    owner: ops@example.com
    purpose: Move money between accounts
tools:
  - name: bank
    mcp: ` + env.bank.url + `
    risk: high
    secret: bank-key
    inject: "X-Api-Key: {{secret}}"
  - name: vault
    mcp: ` + env.bank.url + `
    risk: critical
  - name: notes
    mcp: ` + env.bank.url + `
    risk: low
    approval: [transfer]
grants:
  - agent: pay-bot
    tool: bank
    actions: [transfer]
  - agent: pay-bot
    tool: bank
    actions: [balance]
    approval: waived
  - agent: pay-bot
    tool: vault
    actions: [transfer]
  - agent: pay-bot
    tool: notes
    actions: [transfer]
  - agent: pay-bot
    tool: notes
    actions: [balance]
    approval: true
  - agent: ops-bot
    tool: bank
`
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	env.creds = plan.Credentials
	env.cred = plan.Credentials["pay-bot"]
	env.token = in.mustToken(env.cred.ClientID, env.cred.ClientSecret)
	env.cs = mcpConnect(t, in.url+"/mcp", env.token)
	return env
}

// personToken creates an admin token for a person and returns it.
func (env *approvalEnv) personToken(t *testing.T, name, role, email string) string {
	t.Helper()
	args := []string{"admin", "token", "create", name, "--role", role}
	if email != "" {
		args = append(args, "--email", email)
	}
	var out httpapi.CreatedAdminToken
	env.in.cliJSON(env.in.admin, &out, args...)
	return out.Token
}

type callResult struct {
	res *mcp.CallToolResult
	err error
}

// call sends a tools/call in the background.
func (env *approvalEnv) call(ctx context.Context, name string, args map[string]any) <-chan callResult {
	ch := make(chan callResult, 1)
	go func() {
		res, err := env.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		ch <- callResult{res, err}
	}()
	return ch
}

func (env *approvalEnv) callNow(t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	r := wait(t, env.call(t.Context(), name, args), 30*time.Second)
	if r.err != nil {
		t.Fatalf("%s: %v", name, r.err)
	}
	return r.res
}

func wait(t *testing.T, ch <-chan callResult, within time.Duration) callResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("the call did not end within %v", within)
		return callResult{}
	}
}

// pendingRequest waits until `warden approvals list` shows one pending request of the tool and
// returns it.
func (env *approvalEnv) pendingRequest(t *testing.T, token, tool string) *approval.Request {
	t.Helper()
	var found *approval.Request
	env.in.waitAudit(t, 10*time.Second, "a pending request of "+tool, func() bool {
		var list []*approval.Request
		env.in.cliJSON(token, &list, "approvals", "list")
		for _, r := range list {
			if r.Tool == tool {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func (env *approvalEnv) request(t *testing.T, id string) *approval.Request {
	t.Helper()
	var r approval.Request
	env.in.cliJSON(env.in.admin, &r, "approvals", "show", id)
	return &r
}

func pendingID(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	text := resultText(res)
	_, after, ok := strings.Cut(text, "request apr_")
	if !res.IsError || !ok || !strings.Contains(text, "waiting for a person's approval") {
		t.Fatalf("want a pending answer, got %+v: %s", res, text)
	}
	return "apr_" + after[:26]
}

// TestApprovalHeldCallApproved: a held call completes when a person approves it with `warden
// approve` from another client; the approval is used once, can't be replayed, and doesn't cover
// other arguments; the same call sent again after a pending answer proceeds once approved.
func TestApprovalHeldCallApproved(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) { a.Hold = config.Duration(3 * time.Second) })
	in := env.in
	carol := env.personToken(t, "carol", "approver", "carol@example.com")

	// balance is waived on a high-risk tool: no approval, and it is in the session's history.
	if res := env.callNow(t, "bank.balance", nil); res.IsError || resultText(res) != "balance 1000" {
		t.Fatalf("waived call: %+v", res)
	}
	args := map[string]any{"amount": 100, "to": "acct-1", "api_token": "tok-canary-5f2c9"}
	held := env.call(t.Context(), "bank.transfer", args)
	req := env.pendingRequest(t, carol, "bank")
	if req.AgentName != "pay-bot" || req.Owner != "alice@example.com" || req.Action != "transfer" || req.Risk != warden.RiskHigh ||
		req.Reason != warden.ApprovalByRisk || req.SessionID == "" || len(req.Policies) == 0 || req.Required != 1 {
		t.Fatalf("request: %+v", req.Approval)
	}
	if s := string(req.Arguments); strings.Contains(s, "tok-canary") || !strings.Contains(s, "[REDACTED]") || !strings.Contains(s, "acct-1") {
		t.Fatalf("arguments shown to the approver: %s", s)
	}
	if len(req.Recent) == 0 || req.Recent[0].Action != "balance" || req.Recent[0].Effect != warden.EffectAllow {
		t.Fatalf("recent actions: %+v", req.Recent)
	}
	// The people's view, for a person.
	out, err := in.cli(carol, "approvals", "list")
	if err != nil || !strings.Contains(out, req.ID) || !strings.Contains(out, "pay-bot (owner alice@example.com)") || !strings.Contains(out, "bank transfer") {
		t.Fatalf("approvals list: %v\n%s", err, out)
	}
	// The metrics count the request that waits for a person.
	if got := series(in.scrape(in.admin)["warden_approvals_pending"]); got[""] != 1 {
		t.Errorf("warden_approvals_pending: %v", got)
	}
	select {
	case r := <-held:
		t.Fatalf("the call ended before anyone decided: %+v %v", r.res, r.err)
	default:
	}
	if env.bank.transfers("acct-1") != 0 {
		t.Fatal("the upstream got the call before the approval")
	}

	if out, err := in.cli(carol, "approve", req.ID, "--note", "invoice 42"); err != nil || !strings.Contains(out, "Approved "+req.ID) {
		t.Fatalf("warden approve: %v\n%s", err, out)
	}
	r := wait(t, held, 5*time.Second)
	if r.err != nil || r.res.IsError || resultText(r.res) != "sent acct-1" {
		t.Fatalf("the approved call: %v %+v", r.err, r.res)
	}
	if n := env.bank.transfers("acct-1"); n != 1 {
		t.Fatalf("upstream transfers: %d", n)
	}

	// Replay: the approval is used up; the same call waits for a new one.
	replay := env.callNow(t, "bank.transfer", args)
	replayID := pendingID(t, replay)
	if replayID == req.ID || env.bank.transfers("acct-1") != 1 {
		t.Fatalf("replay: %s (first %s), transfers %d", resultText(replay), req.ID, env.bank.transfers("acct-1"))
	}
	if got := env.request(t, req.ID); got.Status != warden.ApprovalUsed {
		t.Fatalf("first request after use: %s", got.Status)
	}

	// Pending → approve → the same call sent again goes ahead, once; other arguments do not.
	if _, err := in.cli(carol, "approve", replayID); err != nil {
		t.Fatal(err)
	}
	other := map[string]any{"amount": 999999, "to": "acct-1", "api_token": "tok-canary-5f2c9"}
	if id := pendingID(t, env.callNow(t, "bank.transfer", other)); id == replayID {
		t.Fatal("an approval was used for other arguments")
	}
	if res := env.callNow(t, "bank.transfer", args); res.IsError || env.bank.transfers("acct-1") != 2 {
		t.Fatalf("resent after approval: %+v, transfers %d", res, env.bank.transfers("acct-1"))
	}

	// A tool's own approval list and a policy's @approval("required") hold calls too.
	for _, name := range []string{"notes.transfer", "notes.balance"} {
		pendingID(t, env.callNow(t, name, map[string]any{"amount": 1, "to": "acct-n"}))
	}
	var list []*approval.Request
	in.cliJSON(carol, &list, "approvals", "list")
	reasons := map[string]bool{}
	for _, r := range list {
		reasons[r.Tool+" "+r.Action+" "+r.Reason] = true
	}
	if !reasons["notes transfer tool"] || !reasons["notes balance policy"] {
		t.Fatalf("reasons: %v", reasons)
	}

	// Every step is on record, naming the person.
	evs := in.events("type=approval.*&limit=1000")
	for typ, pred := range map[string]func(*warden.AuditEvent) bool{
		warden.EventApprovalRequested: func(ev *warden.AuditEvent) bool {
			return ev.Decision.ID == req.ID && ev.Actor.Name == "pay-bot" && ev.Actor.Owner == "alice@example.com"
		},
		warden.EventApprovalApproved: func(ev *warden.AuditEvent) bool {
			return ev.Decision.ID == req.ID && ev.Actor.Kind == warden.ActorHuman && ev.Actor.Name == "carol" && strings.Contains(ev.Decision.Message, "invoice 42")
		},
		warden.EventApprovalUsed: func(ev *warden.AuditEvent) bool {
			return ev.Decision.ID == req.ID && strings.Contains(ev.Decision.Message, "carol")
		},
	} {
		if !hasEvent(evs, typ, pred) {
			t.Errorf("no %s event for %s", typ, req.ID)
		}
	}
	if !hasEvent(in.events("type=tool.call&limit=1000"), warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Decision.Effect == warden.EffectApproved && strings.Contains(ev.Decision.Message, "approved by carol")
	}) {
		t.Error("the approved call's tool.call event does not say who approved it")
	}

	// The webhook heard of every request, without a secret.
	select {
	case b := <-env.hooks:
		var m approval.Message
		if err := json.Unmarshal(b, &m); err != nil || m.Type != warden.EventApprovalRequested || m.ID != req.ID || m.Agent != "pay-bot" {
			t.Fatalf("webhook message: %v %s", err, b)
		}
		for _, secret := range []string{"tok-canary", "bank-secret-value", env.token, env.cred.ClientSecret} {
			if strings.Contains(string(b), secret) {
				t.Fatalf("the webhook message holds a secret: %s", b)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook heard nothing")
	}
}

func TestApprovalRejectedAndExpired(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) {
		a.Hold = config.Duration(time.Second)
		a.TTL = config.Duration(2 * time.Second)
	})
	in := env.in
	dave := env.personToken(t, "dave", "operator", "")

	held := env.call(t.Context(), "bank.transfer", map[string]any{"amount": 5, "to": "acct-r"})
	req := env.pendingRequest(t, dave, "bank")
	if _, err := in.cli(dave, "reject", req.ID); cli.ExitCode(err) != cli.ExitUsage {
		t.Fatalf("reject without a reason: %v", err)
	}
	if _, err := in.cli(dave, "reject", req.ID, "--reason", "not this month"); err != nil {
		t.Fatal(err)
	}
	r := wait(t, held, 5*time.Second)
	if r.err != nil || !r.res.IsError || !strings.Contains(resultText(r.res), "rejected: not this month") {
		t.Fatalf("rejected call: %v %+v", r.err, r.res)
	}
	if env.bank.transfers("acct-r") != 0 {
		t.Fatal("a rejected call reached the upstream")
	}

	// Expiry: nobody decides within the TTL.
	id := pendingID(t, env.callNow(t, "bank.transfer", map[string]any{"amount": 5, "to": "acct-e"}))
	in.waitAudit(t, 10*time.Second, "the request expired", func() bool { return env.request(t, id).Status == warden.ApprovalExpired })
	_, err := in.cli(dave, "approve", id)
	if cli.ExitCode(err) != cli.ExitConflict || !strings.Contains(cli.ErrorLine(err), "expired") {
		t.Fatalf("approving an expired request: %v", err)
	}
	if again := pendingID(t, env.callNow(t, "bank.transfer", map[string]any{"amount": 5, "to": "acct-e"})); again == id {
		t.Fatal("the expired request was reused")
	}
	evs := in.events("type=approval.*&limit=1000")
	if !hasEvent(evs, warden.EventApprovalRejected, func(ev *warden.AuditEvent) bool {
		return ev.Decision.ID == req.ID && ev.Actor.Name == "dave" && ev.Actor.Role == "operator" && ev.Decision.Message == "not this month"
	}) || !hasEvent(evs, warden.EventApprovalExpired, func(ev *warden.AuditEvent) bool { return ev.Decision.ID == id }) {
		t.Fatal("rejected or expired events missing")
	}
}

func TestApprovalSeparationOfDuties(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) {
		a.Hold = config.Duration(20 * time.Second)
		a.SeparationOfDuties = true
		a.CriticalApprovers = 2
	})
	in := env.in
	alice := env.personToken(t, "alice", "approver", "alice@example.com") // the agent's owner
	nomail := env.personToken(t, "nomail", "approver", "")
	auditor := env.personToken(t, "aud", "auditor", "aud@example.com")
	carol := env.personToken(t, "carol", "approver", "carol@example.com")
	dave := env.personToken(t, "dave", "operator", "dave@example.com")

	held := env.call(t.Context(), "vault.transfer", map[string]any{"amount": 1000000, "to": "acct-v"})
	req := env.pendingRequest(t, carol, "vault")
	if req.Required != 2 || req.Risk != warden.RiskCritical {
		t.Fatalf("request: %+v", req.Approval)
	}
	for token, want := range map[string]string{alice: "owns agent pay-bot", nomail: "has no email", auditor: "needs role"} {
		_, err := in.cli(token, "approve", req.ID)
		if cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(cli.ErrorLine(err), want) {
			t.Errorf("approve: %v; want refused, %q", err, want)
		}
	}
	if out, err := in.cli(carol, "approve", req.ID); err != nil || !strings.Contains(out, "1 of 2") {
		t.Fatalf("first approval: %v %s", err, out)
	}
	if _, err := in.cli(carol, "approve", req.ID); cli.ExitCode(err) != cli.ExitConflict {
		t.Fatalf("the same person twice: %v", err)
	}
	select {
	case r := <-held:
		t.Fatalf("one approval of two let the call through: %+v %v", r.res, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := in.cli(dave, "approve", req.ID, "--note", "second pair of eyes"); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, held, 5*time.Second); r.err != nil || r.res.IsError || env.bank.transfers("acct-v") != 1 {
		t.Fatalf("after two approvals: %v %+v", r.err, r.res)
	}
	if !hasEvent(in.events("type=admin.denied"), warden.EventAdminDenied, func(ev *warden.AuditEvent) bool { return ev.Actor.Name == "aud" }) {
		t.Error("the auditor's attempt is not on record")
	}
}

// TestApprovalKillWhileWaiting: a suspension or a kill ends a held call at once with a rejection.
func TestApprovalKillWhileWaiting(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) { a.Hold = config.Duration(60 * time.Second) })
	in := env.in

	// Through /mcp: suspend pay-bot while its call is held.
	held := env.call(t.Context(), "bank.transfer", map[string]any{"amount": 7, "to": "acct-k"})
	req := env.pendingRequest(t, in.admin, "bank")
	start := time.Now()
	if _, err := in.cli(in.admin, "agent", "suspend", "pay-bot", "--reason", "suspicious transfers"); err != nil {
		t.Fatal(err)
	}
	r := wait(t, held, 5*time.Second)
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("the held call ended %v after the suspension", elapsed)
	}
	if r.err == nil && !r.res.IsError {
		t.Fatalf("a call held through a suspension succeeded: %+v", r.res)
	}
	got := env.request(t, req.ID)
	if got.Status != warden.ApprovalRejected || got.RejectedBy != "system" || !strings.Contains(got.Note, "suspicious transfers") {
		t.Fatalf("request after the suspension: %+v", got.Approval)
	}
	if _, err := in.cli(in.admin, "approve", req.ID); cli.ExitCode(err) != cli.ExitConflict {
		t.Fatalf("approving after the suspension: %v", err)
	}
	if env.bank.transfers("acct-k") != 0 {
		t.Fatal("the upstream got the call")
	}

	// Through the decision API, where the caller sees the answer: kill ops-bot while held.
	opsToken := in.mustToken(env.creds["ops-bot"].ClientID, env.creds["ops-bot"].ClientSecret)
	answer := make(chan response, 1)
	go func() {
		answer <- in.do("POST", "/v1/authorize", map[string]string{"Authorization": "Bearer " + opsToken, "Content-Type": "application/json"},
			`{"tool":"bank","action":"transfer","arguments":{"amount":8,"to":"acct-o"}}`)
	}()
	env.pendingRequest(t, in.admin, "bank")
	if _, err := in.cli(in.admin, "kill", "ops-bot", "--reason", "leaked key"); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-answer:
		m := resp.json(t)
		if resp.status != 200 || m["effect"] != warden.EffectRejected || !strings.Contains(m["message"].(string), "agent killed: leaked key") {
			t.Fatalf("held decision after the kill: %d %s", resp.status, resp.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the kill did not end the held decision")
	}
	if !hasEvent(in.events("type=approval.rejected"), warden.EventApprovalRejected, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Kind == warden.ActorSystem && strings.Contains(ev.Decision.Message, "agent killed: leaked key")
	}) {
		t.Fatal("the kill's rejection is not on record")
	}
}
