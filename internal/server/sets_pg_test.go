package server_test

import (
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
)

// TestNamedSetsAcrossReplicas: two replicas on one PostgreSQL. A set applied through replica a
// decides calls on replica b, and so does its removal from the set.
func TestNamedSetsAcrossReplicas(t *testing.T) {
	t.Parallel()
	store := pgtest.Database(t)
	edit := func(c *config.Config) { c.Store = store }
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	plan := a.apply(payDoc + `sets:
  payees: [linda.green@acme.example]
`)
	dir := t.TempDir()
	writeFile(t, dir, "payees.cedar", `
@id("known-payees")
permit(principal == Agent::"pay-bot", action == Action::"bank:pay", resource)
when { context.args has to && Set::"payees".values.contains(context.args.to) };
`)
	if _, err := a.cli(a.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	b := startReplicaB(t, a, edit)
	cred := plan.Credentials["pay-bot"]
	auth := map[string]string{"Authorization": "Bearer " + b.mustToken(cred.ClientID, cred.ClientSecret), "Content-Type": "application/json"}
	payOnB := func(to string) string {
		return authorize(t, b, auth, `{"tool":"bank","action":"pay","arguments":{"to":"`+to+`"}}`)["effect"].(string)
	}
	if payOnB("linda.green@acme.example") != warden.EffectAllow || payOnB("ap@supplier.example") != warden.EffectDeny {
		t.Fatal("replica b before the set apply")
	}
	if _, err := a.cli(a.admin, "set", "apply", "payees", writeFile(t, t.TempDir(), "payees.txt", "ap@supplier.example\n")); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "replica b decides by the new set", func() bool {
		return payOnB("ap@supplier.example") == warden.EffectAllow && payOnB("linda.green@acme.example") == warden.EffectDeny
	})
}
