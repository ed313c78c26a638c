package server_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/seal"
	"github.com/wardenhq/warden/internal/server"
)

// freshPostgres creates a database of its own on WARDEN_TEST_POSTGRES, dropped when the test
// ends, and returns its URL; it skips the test when the variable is not set.
func freshPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("WARDEN_TEST_POSTGRES")
	if base == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; set it to a postgres:// URL to run the PostgreSQL tests")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 8)
	rand.Read(b)
	name := "warden_fleet_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestKillStateChangesReachAnotherReplica runs two replicas on one PostgreSQL database. Kills,
// lockdowns, lifts and tool disables are made on replica a; replica b applies each through its
// Handler, as the fleet delivers it on the announcement (the announcements themselves travel
// by LISTEN/NOTIFY, fleet.Postgres's part): b aborts the agent's long call at the upstream and
// refuses or allows the agent's next call as a now says. The polls are slowed so that only the
// Handler can have done it.
func TestKillStateChangesReachAnotherReplica(t *testing.T) {
	t.Parallel()
	store := freshPostgres(t)
	edit := func(c *config.Config) {
		c.Store = store
		c.Tokens.RefreshInterval = config.Duration(time.Hour)
		c.KillSwitch.MaxStaleness = config.Duration(time.Minute)
	}
	env := newKillEnvWith(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" }, nil)
	a := env.in
	dirB := t.TempDir()
	for _, f := range []string{seal.MasterKeyFile, server.AdminTokenFile} {
		data, err := os.ReadFile(filepath.Join(a.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startPrepared(t, "127.0.0.1:0", dirB, clock.Real{}, func(c *config.Config) { edit(c); c.ReplicaID = "replica-b" }, nil)
	tokenB := b.mustToken(env.cred.ClientID, env.cred.ClientSecret)
	handleB := b.srv.Kill.Handler(b.srv.Identity, nil)
	ctx := context.Background()
	apply := func(topic fleet.Topic, name string) fleet.Applied {
		t.Helper()
		applied, err := handleB(ctx, fleet.Change{Topic: topic, Name: name, Version: 1, Replica: "replica-a"})
		if err != nil {
			t.Fatalf("replica b applying %s %s: %v", topic, name, err)
		}
		return applied
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
	a.cliJSON(a.admin, &struct{}{}, "lockdown", "--reason", "incident on a")
	if applied := apply(fleet.TopicLockdown, ""); applied.CallsCancelled != 1 {
		t.Errorf("lockdown: b cancelled %d calls, want 1", applied.CallsCancelled)
	}
	slow.aborted(t)
	if r := fastOnB(tokenB); r.status != http.StatusForbidden || !strings.Contains(string(r.body), warden.ReasonLockdown) {
		t.Errorf("replica b during a's lockdown: %d %s", r.status, r.body)
	}
	if _, err := a.cli(a.admin, "lockdown", "lift", "--reason", "over"); err != nil {
		t.Fatal(err)
	}
	apply(fleet.TopicLockdown, "")
	if r := fastOnB(tokenB); r.status != 200 {
		t.Errorf("replica b after a's lift: %d %s", r.status, r.body)
	}

	// A tool disabled on a: b aborts the call to it and refuses the next one.
	slow = slowCallOn(t, b, env, tokenB)
	if _, err := a.cli(a.admin, "tool", "disable", "api", "--reason", "broken"); err != nil {
		t.Fatal(err)
	}
	if applied := apply(fleet.TopicTool, "api"); applied.CallsCancelled != 1 {
		t.Errorf("tool disable: b cancelled %d calls, want 1", applied.CallsCancelled)
	}
	slow.aborted(t)
	if r := fastOnB(tokenB); r.status != http.StatusForbidden || !strings.Contains(string(r.body), warden.ReasonToolDisabled) {
		t.Errorf("replica b after a disabled the tool: %d %s", r.status, r.body)
	}
	if _, err := a.cli(a.admin, "tool", "enable", "api"); err != nil {
		t.Fatal(err)
	}
	apply(fleet.TopicTool, "api")

	// The agent killed on a: b aborts its call and refuses its token; a restore on a gives a
	// secret whose tokens b accepts, while the old token stays dead.
	slow = slowCallOn(t, b, env, tokenB)
	a.cliJSON(a.admin, &struct{}{}, "kill", "canary", "--reason", "exfiltration")
	if applied := apply(fleet.TopicAgent, env.cred.ClientID); applied.CallsCancelled != 1 {
		t.Errorf("kill: b cancelled %d calls, want 1", applied.CallsCancelled)
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
	apply(fleet.TopicAgent, env.cred.ClientID)
	if r := fastOnB(b.mustToken(restored.ClientID, restored.ClientSecret)); r.status != 200 {
		t.Errorf("replica b after a's restore: %d %s", r.status, r.body)
	}
	if r := fastOnB(tokenB); r.status == 200 {
		t.Error("the token from before the kill works on replica b after the restore")
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
