package server_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// call is a /v1/authorize request and what its answer must be: effect, reason and a part of
// the message.
type call struct{ body, effect, reason, says string }

// TestExampleWorkloads runs each worked example of examples/workloads as its README does — warden
// apply -f warden.yaml, warden policy apply policies, warden policy test cases.yaml — on a real
// server, and asks the decision API about a few of its calls end to end. A case whose name says
// invalid_arguments must be refused by the action's input schema, not merely denied.
func TestExampleWorkloads(t *testing.T) {
	t.Parallel()
	for _, w := range []struct {
		name, agent string
		calls       []call
	}{
		{"banking", "finance-agent", []call{
			{`{"tool":"bank","action":"pay","arguments":{"amount":98.7,"recipient":"Linda.Green@ACME.example","cc":["accounts@acme.example"]}}`, warden.EffectAllow, warden.ReasonApprovalWaived, "approval waived by policy pay-small-to-payee"},
			{`{"tool":"bank","action":"pay","arguments":{"amount":5000,"recipient":"linda.green@acme.example"}}`, warden.EffectDeny, warden.ReasonForbidden, "forbidden by policy no-large-amounts"},
			{`{"tool":"bank","action":"pay","arguments":{"amount":20,"recipient":"drop@attacker.example"}}`, warden.EffectDeny, warden.ReasonNoMatchingPolicy, "no policy permits"},
			{`{"tool":"bank","action":"pay","arguments":{"amount":20,"recipient":"ap@supplier.example","cc":"accounts@acme.example,tom.becker@acme.example"}}`, warden.EffectDeny, warden.ReasonInvalidArguments, "argument .cc: expected an array of strings"},
			{`{"tool":"bank","action":"pay","arguments":{"amount":250,"recipient":"ap@supplier.example"},"hold":0}`, warden.EffectApprovalRequired, warden.ReasonApprovalPending, "request apr_"},
		}},
		{"workspace", "workspace-assistant", []call{
			{`{"tool":"web","action":"fetch","arguments":{"url":"https://DOCS.acme.example/handbook/"}}`, warden.EffectAllow, warden.ReasonPolicyAllow, "allowed by policy fetch-allowed-hosts"},
			{`{"tool":"web","action":"fetch","arguments":{"url":"https://docs.acme.example.evil.example/handbook"}}`, warden.EffectDeny, warden.ReasonNoMatchingPolicy, "no policy permits"},
			{`{"tool":"mail","action":"send","arguments":{"to":["felix.braun@acme.example","drop@attacker.example"],"subject":"Numbers"}}`, warden.EffectDeny, warden.ReasonNoMatchingPolicy, "no policy permits"},
			{`{"tool":"mail","action":"send","arguments":{"to":"felix.braun@acme.example","subject":"Numbers"}}`, warden.EffectDeny, warden.ReasonInvalidArguments, "argument .to: expected an array of strings"},
		}},
	} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("..", "..", "examples", "workloads", w.name)
			in := start(t, t.TempDir(), nil)
			var plan admin.Plan
			in.cliJSON(in.admin, &plan, "apply", "-f", filepath.Join(dir, "warden.yaml"))
			if _, err := in.cli(in.admin, "policy", "apply", filepath.Join(dir, "policies")); err != nil {
				t.Fatalf("warden policy apply: %v", err)
			}
			cases := filepath.Join(dir, "cases.yaml")
			if out, err := in.cli(in.admin, "policy", "test", cases); err != nil || !strings.Contains(out, " 0 failed") {
				t.Fatalf("warden policy test %s: %v\n%s", cases, err, out)
			}
			var results []apitype.PolicyCaseResult
			in.cliJSON(in.admin, &results, "policy", "test", cases, "--policies", filepath.Join(dir, "policies"))
			if len(results) < 10 {
				t.Fatalf("%d cases", len(results))
			}
			for _, r := range results {
				if invalid := r.Explanation.Decision.Reason == warden.ReasonInvalidArguments; invalid != strings.Contains(r.Name, "invalid_arguments") {
					t.Errorf("case %q: reason %s", r.Name, r.Explanation.Decision.Reason)
				}
			}

			cred := plan.Credentials[w.agent]
			auth := map[string]string{"Authorization": "Bearer " + in.mustToken(cred.ClientID, cred.ClientSecret), "Content-Type": "application/json"}
			for _, c := range w.calls {
				if d := authorize(t, in, auth, c.body); d["effect"] != c.effect || d["reason"] != c.reason || !strings.Contains(d["message"].(string), c.says) {
					t.Errorf("%s: %v, want %s %s", c.body, d, c.effect, c.reason)
				}
			}
		})
	}
}
