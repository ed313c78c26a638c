package replicatest

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/wardenhq/warden"
)

// TestFleetServesOnEveryReplica: three replicas on one database, the admin token bootstrapped by
// the first works on all, and a call through each is allowed and recorded under its replica.
func TestFleetServesOnEveryReplica(t *testing.T) {
	f := Start(t, Options{})
	ctx := t.Context()
	up := StartUpstream(t)
	a := f.Setup(ctx, up, "agent-1")[0]
	token := f.AgentToken(ctx, 1, a)
	for i, r := range f.Replicas {
		if err := f.WaitEcho(ctx, i, token, http.StatusOK); err != nil {
			t.Fatal(err)
		}
		evs, _, err := f.Client(i).AuditEvents(ctx, url.Values{"type": {warden.EventToolCall}, "agent": {a.Name}, "decision": {warden.EffectAllow}})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ev := range evs {
			found = found || ev.Actor.Replica == r.ID
		}
		if !found {
			t.Errorf("no allowed tool.call of %s recorded by replica %s", a.Name, r.ID)
		}
	}
}
