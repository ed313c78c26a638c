package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
)

// TestApprovalPendingLimit is the probe's scenario: an agent with a rate budget of 2 an hour
// sends many calls that each need approval, with different arguments. Only
// approvals.max_pending_per_agent of them become requests and page a person; the rest are
// denied with reason approval_limit, recorded, and page nobody.
func TestApprovalPendingLimit(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) {
		a.Hold = config.Duration(time.Second)
		a.MaxPendingPerAgent = 3
	})
	in := env.in
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	if r := in.do(http.MethodPost, "/v1/budgets", auth, `{"agent":"pay-bot","tool":"bank","action":"transfer","spec":"rate 2/hour"}`); r.status != http.StatusOK {
		t.Fatalf("budget: %d %s", r.status, r.body)
	}
	const calls = 12
	results := make([]<-chan callResult, calls)
	for i := range calls {
		results[i] = env.call(t.Context(), "bank.transfer", map[string]any{"amount": 100 + i, "to": "acct-9"})
	}
	pending, limited := 0, 0
	for _, ch := range results {
		r := wait(t, ch, 30*time.Second)
		if r.err != nil {
			t.Fatal(r.err)
		}
		text := resultText(r.res)
		switch {
		case strings.Contains(text, "waiting for a person's approval"):
			pending++
		case r.res.IsError && strings.Contains(text, "max_pending_per_agent") && r.res.Meta["warden/reason"] == "approval_limit":
			limited++
		default:
			t.Fatalf("an answer that is neither pending nor limited: %+v %s", r.res, text)
		}
	}
	if pending != 3 || limited != calls-3 {
		t.Fatalf("%d pending and %d limited; want 3 and %d", pending, limited, calls-3)
	}
	if env.bank.transfers("acct-9") != 0 {
		t.Fatal("a held or refused call reached the upstream")
	}
	evs := in.events("agent=pay-bot&type=tool.call&limit=100")
	denied := 0
	for _, ev := range evs {
		if ev.Decision.Reason == "approval_limit" && ev.Decision.Effect == warden.EffectDeny {
			denied++
		}
	}
	if denied != calls-3 {
		t.Fatalf("%d tool.call events with reason approval_limit, want %d", denied, calls-3)
	}
	if n := len(in.events("type=approval.requested&limit=100")); n != 3 {
		t.Fatalf("%d approval.requested events, want 3", n)
	}
	// One page per request made, none for the refused calls.
	for range 3 {
		select {
		case <-env.hooks:
		case <-time.After(10 * time.Second):
			t.Fatal("a request was not notified")
		}
	}
	select {
	case b := <-env.hooks:
		t.Fatalf("a notification beyond the requests made: %s", b)
	case <-time.After(500 * time.Millisecond):
	}
	// Another agent has its own allowance.
	ops := in.mustToken(env.creds["ops-bot"].ClientID, env.creds["ops-bot"].ClientSecret)
	cs := mcpConnect(t, in.url+"/mcp", ops)
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "bank.transfer", Arguments: map[string]any{"amount": 1, "to": "acct-9"}})
	if err != nil || !strings.Contains(resultText(res), "waiting for a person's approval") {
		t.Fatalf("ops-bot: %v %+v", err, res)
	}
}
