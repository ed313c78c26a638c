package server_test

import (
	"strings"
	"testing"
)

// TestPolicyExplainHoldsAsTheGatewayDoes: `policy explain` and `policy test` decide as the
// gateway does, approval rules included: a high-risk tool's call that policy permits waits for a
// person unless a permit waives it, and an action the tool lists for approval always waits.
func TestPolicyExplainHoldsAsTheGatewayDoes(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	doc := `
agents:
  - name: pay-bot
    owner: bob@example.com
    purpose: Pay invoices
tools:
  - name: bank
    http: http://127.0.0.1:9
    risk: high
    routes: ["GET /balance -> balance", "POST /pay -> pay", "POST /refund -> refund"]
    approval: [refund]
`
	applyFlow(t, in, doc, `
@id("pay") permit(principal == Agent::"pay-bot", action in [Action::"bank:pay", Action::"bank:refund"], resource);
@id("balance") @approval("waived") permit(principal == Agent::"pay-bot", action == Action::"bank:balance", resource);
@id("refund-waived") @approval("waived") permit(principal == Agent::"pay-bot", action == Action::"bank:refund", resource);
`)
	for _, c := range []struct{ action, want, why string }{
		{"pay", "approval_required (approval_required)", "risk is high or critical"},
		{"balance", "allow (approval_waived)", ""},
		{"refund", "approval_required (approval_required)", "the tool lists this action"},
	} {
		out, err := in.cli(in.admin, "policy", "explain", "--agent", "pay-bot", "--tool", "bank", "--action", c.action)
		if err != nil || !strings.HasPrefix(out, c.want) || !strings.Contains(out, c.why) {
			t.Errorf("explain %s: %v\n%s", c.action, err, out)
		}
	}
	cases := writeFile(t, t.TempDir(), "cases.yaml", `
- {agent: pay-bot, tool: bank, action: pay, expect: approval_required}
- {agent: pay-bot, tool: bank, action: balance, expect: allow}
- {agent: pay-bot, tool: bank, action: refund, expect: approval_required}
`)
	if out, err := in.cli(in.admin, "policy", "test", cases); err != nil || !strings.Contains(out, "3 passed, 0 failed") {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
}
