package server_test

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
)

// TestPolicyShadowAcrossReplicas: two replicas on one PostgreSQL. A candidate applied on a is
// compared on b, whose differences are in the shared log, exactly one per call, as a's report
// counts them (while a, which decided nothing, compared nothing); a promote on a is enforced
// on b.
func TestPolicyShadowAcrossReplicas(t *testing.T) {
	t.Parallel()
	store := pgtest.Database(t)
	edit := func(c *config.Config) { c.Store = store }
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	cred := a.apply(shadowDoc).Credentials["bot"]
	b := startReplicaB(t, a, edit)
	calls := newShadowCalls(t, b, struct{ id, secret string }{cred.ClientID, cred.ClientSecret})

	var sh warden.PolicyShadow
	a.cliJSON(a.admin, &sh, "policy", "apply", "--shadow", writeFile(t, t.TempDir(), "no-github.cedar", shadowCandidate))
	// b learns of the candidate from the fleet; a call both sets decide alike shows when.
	waitUntil(t, 10*time.Second, "replica b compares calls with the candidate", func() bool {
		if effect, _ := calls.decide("mail", "read"); effect != warden.EffectAllow {
			t.Fatalf("mail:read decided %s", effect)
		}
		var rep apitype.PolicyShadowReport
		b.cliJSON(b.admin, &rep, "policy", "shadow", "report")
		return rep.Replica.ShadowVersion == sh.Version
	})
	const n = 4
	for range n {
		if effect, _ := calls.decide("github", "issues.list"); effect != warden.EffectAllow {
			t.Fatalf("github:issues.list on b decided %s under the candidate: it must change nothing", effect)
		}
	}
	diffs := shadowDiffs(t, a, n)
	if len(diffs) != n {
		t.Fatalf("%d differences, want exactly %d", len(diffs), n)
	}
	for _, ev := range diffs {
		if ev.Actor.Replica != "replica-b" {
			t.Errorf("a difference recorded by %q, want replica-b", ev.Actor.Replica)
		}
	}
	var rep apitype.PolicyShadowReport
	a.cliJSON(a.admin, &rep, "policy", "shadow", "report")
	if rep.Diffs != n || len(rep.Groups) != 1 || rep.Groups[0].Count != n || rep.Replica.Compared != 0 {
		t.Fatalf("a's report %+v: want %d differences from the log and nothing compared on a", rep, n)
	}

	var ps warden.PolicySet
	a.cliJSON(a.admin, &ps, "policy", "shadow", "promote")
	waitUntil(t, 10*time.Second, "replica b enforces the promoted set", func() bool {
		effect, _ := calls.decide("github", "issues.list")
		return effect == warden.EffectDeny
	})
}
