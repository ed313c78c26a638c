package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
)

// TestKillStateChangesReachAnotherReplica runs two replicas on one PostgreSQL database, each
// with its fleet.Postgres. Kills, lockdowns, lifts and tool disables are made on replica a; the
// command returns once b acknowledged, and b's acknowledgement (in a's report) says it aborted
// the agent's long call — which the upstream saw — and b refuses or allows the agent's next call
// as a now says. The polls are slowed so that only the announcement can have done it.
func TestKillStateChangesReachAnotherReplica(t *testing.T) {
	t.Parallel()
	store := pgtest.Database(t)
	edit := onlyAnnouncements(store)
	env := newKillEnvWith(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" }, nil)
	a := env.in
	b := startReplicaB(t, a, edit)
	tokenB := b.mustToken(env.cred.ClientID, env.cred.ClientSecret)
	// ackOfB is b's entry in a report: acknowledged, with what b ended.
	ackOfB := func(what string, acks []apitype.ReplicaAck) apitype.ReplicaAck {
		t.Helper()
		for _, ack := range acks {
			if ack.ID == "replica-b" {
				if !ack.Acked {
					t.Fatalf("%s: replica b did not acknowledge: %+v", what, ack)
				}
				return ack
			}
		}
		t.Fatalf("%s: replica b is not in the report: %+v", what, acks)
		return apitype.ReplicaAck{}
	}
	fastOnB := func(token string) response {
		t.Helper()
		return b.gw("GET", "/http/api/fast", token, "", nil)
	}
	if r := fastOnB(tokenB); r.status != 200 {
		t.Fatalf("replica b before any change: %d %s", r.status, r.body)
	}

	// A full lockdown on a: b's long call is aborted, b refuses; the lift lets b's calls through.
	slow := slowCallOn(t, b, env, tokenB)
	var rep apitype.KillReport
	a.cliJSON(a.admin, &rep, "lockdown", "--reason", "incident on a")
	if ack := ackOfB("lockdown", rep.Replicas); ack.CallsCancelled != 1 {
		t.Errorf("lockdown: b cancelled %d calls, want 1: %+v", ack.CallsCancelled, rep.Replicas)
	}
	slow.aborted(t)
	if r := fastOnB(tokenB); r.status != http.StatusForbidden || !strings.Contains(string(r.body), warden.ReasonLockdown) {
		t.Errorf("replica b during a's lockdown: %d %s", r.status, r.body)
	}
	if _, err := a.cli(a.admin, "lockdown", "lift", "--reason", "over"); err != nil {
		t.Fatal(err)
	}
	if r := fastOnB(tokenB); r.status != 200 {
		t.Errorf("replica b after a's lift: %d %s", r.status, r.body)
	}

	// A tool disabled on a: b aborts the call to it and refuses the next one.
	slow = slowCallOn(t, b, env, tokenB)
	var disabled apitype.ToolDisabled
	a.cliJSON(a.admin, &disabled, "tool", "disable", "api", "--reason", "broken")
	if ack := ackOfB("tool disable", disabled.Replicas); ack.CallsCancelled != 1 {
		t.Errorf("tool disable: b cancelled %d calls, want 1", ack.CallsCancelled)
	}
	slow.aborted(t)
	if r := fastOnB(tokenB); r.status != http.StatusForbidden || !strings.Contains(string(r.body), warden.ReasonToolDisabled) {
		t.Errorf("replica b after a disabled the tool: %d %s", r.status, r.body)
	}
	if _, err := a.cli(a.admin, "tool", "enable", "api", "--reason", "fixed"); err != nil {
		t.Fatal(err)
	}
	// Enabling does not wait for the fleet: b takes it on the announcement, within moments.
	eventuallyTrue(t, "replica b allows the tool again", func() bool { return fastOnB(tokenB).status == 200 })

	// The agent killed on a: b aborts its call and refuses its token; a restore on a gives a
	// secret whose tokens b accepts, while the old token stays dead.
	slow = slowCallOn(t, b, env, tokenB)
	rep = apitype.KillReport{}
	a.cliJSON(a.admin, &rep, "kill", "canary", "--reason", "exfiltration")
	if ack := ackOfB("kill", rep.Replicas); ack.CallsCancelled != 1 {
		t.Errorf("kill: b cancelled %d calls, want 1", ack.CallsCancelled)
	}
	slow.aborted(t)
	if r := fastOnB(tokenB); r.status == 200 || !strings.Contains(string(r.body), "killed") {
		t.Errorf("replica b after a's kill: %d %s", r.status, r.body)
	}
	var restored struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	a.cliJSON(a.admin, &restored, "agent", "restore", "canary", "--reason", "cleaned up")
	if r := fastOnB(b.mustToken(restored.ClientID, restored.ClientSecret)); r.status != 200 {
		t.Errorf("replica b after a's restore: %d %s", r.status, r.body)
	}
	if r := fastOnB(tokenB); r.status == 200 {
		t.Error("the token from before the kill works on replica b after the restore")
	}
}

// waitLive waits until in's fleet lists replica id as live and caught up (its feed connected and
// its first reload applied), so that in's commands wait for it and it hears them. Until then a
// change can reach it by that first reload instead, whose acknowledgement carries what it ended.
func waitLive(t *testing.T, in *instance, id string) {
	t.Helper()
	eventuallyTrue(t, id+" live and caught up in the fleet", func() bool {
		rs, err := in.srv.Fleet.Replicas(context.Background())
		if err != nil {
			return false
		}
		for _, r := range rs.Replicas {
			if r.ID == id && r.Live && r.Fresh && r.AppliedVersion > 0 && r.LagVersions == 0 {
				return true
			}
		}
		return false
	})
}

// eventuallyTrue polls cond until it holds, failing t after ten seconds.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// slowCall is a call held at the upstream until it is cancelled.
type slowCall struct {
	env    *killEnv
	status chan int
}

func slowCallOn(t *testing.T, in *instance, env *killEnv, token string) *slowCall {
	t.Helper()
	c := &slowCall{env: env, status: make(chan int, 1)}
	go func() { c.status <- in.gw("GET", "/http/api/slow", token, "", nil).status }()
	select {
	case <-env.received:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the upstream")
	}
	return c
}

// aborted checks that the upstream saw the call's request end and the call did not succeed.
func (c *slowCall) aborted(t *testing.T) {
	t.Helper()
	select {
	case <-c.env.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream never saw the call aborted")
	}
	if s := <-c.status; s == 200 {
		t.Error("the aborted call reported success")
	}
}
