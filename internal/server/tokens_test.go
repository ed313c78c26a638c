package server_test

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

// TestClockSkewZeroRefusesExpiredToken follows tokens.clock_skew: 0s from the configuration to
// the token service (issue 12 #13): it used to become 30s there, so a token lived half a
// minute past its exp.
func TestClockSkewZeroRefusesExpiredToken(t *testing.T) {
	in := start(t, t.TempDir(), func(cfg *config.Config) {
		cfg.Tokens.TTL = config.Duration(time.Second)
		cfg.Tokens.ClockSkew = 0
	})
	c := createAgent(t, in, "bot")
	tok := in.mustToken(c.ClientID, c.ClientSecret)
	if r := in.self(tok); r.status != 200 {
		t.Fatalf("fresh token refused: %d %s", r.status, r.body)
	}
	// exp is the issue second plus one: two seconds from now it has passed by at least one.
	time.Sleep(2 * time.Second)
	if r := in.self(tok); r.status != 401 {
		t.Fatalf("a token past its exp with clock_skew 0 got %d %s, want 401", r.status, r.body)
	}
}

// TestRevokeNamesWhoRevoked: a token revoked by a person at /oauth2/revoke is recorded with the
// person's admin token (name, role, email) as actor, not an anonymous "human" (issue 12 #11);
// one revoked by the agent itself names the agent.
func TestRevokeNamesWhoRevoked(t *testing.T) {
	in := start(t, t.TempDir(), nil)
	c := createAgent(t, in, "bot")
	var op httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &op, "admin", "token", "create", "oncall-carol", "--role", "operator", "--email", "carol@example.com")

	revoke := func(auth string) string {
		t.Helper()
		tok := in.mustToken(c.ClientID, c.ClientSecret)
		id := jti(t, in, tok)
		if r := in.do("POST", "/oauth2/revoke", withHeader(formCT, "Authorization", auth), form("token", tok)); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := in.self(tok); r.status != 401 {
			t.Fatalf("revoked token accepted: %d", r.status)
		}
		return id
	}
	byPerson := revoke("Bearer " + op.Token)
	byAgent := revoke("Basic " + basic(c.ClientID, c.ClientSecret))

	actors := map[string]warden.EventActor{}
	for _, ev := range in.events("type=token.revoke") {
		actors[ev.Target.Resource] = ev.Actor
	}
	got := actors["token:"+byPerson]
	if got.Kind != warden.ActorHuman || got.Name != "oncall-carol" || got.Role != "operator" || got.Email != "carol@example.com" || got.Source == "" {
		t.Errorf("revocation by a person recorded as %+v", got)
	}
	if got := actors["token:"+byAgent]; got.Kind != warden.ActorAgent || got.ID != c.ClientID {
		t.Errorf("revocation by the agent recorded as %+v", got)
	}
}

// jti reads a live token's id by introspection.
func jti(t *testing.T, in *instance, token string) string {
	t.Helper()
	id, _ := in.introspect(token)["jti"].(string)
	if id == "" {
		t.Fatal("introspection gave no jti")
	}
	return id
}
