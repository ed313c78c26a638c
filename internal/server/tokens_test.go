package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

// TestClockSkewZeroRefusesExpiredToken follows tokens.clock_skew: 0s from the configuration to
// the token service (issue 12 #13): it used to become 30s there, so a token lived half a
// minute past its exp.
func TestClockSkewZeroRefusesExpiredToken(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	in := startClock(t, "127.0.0.1:0", t.TempDir(), clk, func(cfg *config.Config) {
		cfg.Tokens.TTL = config.Duration(time.Second)
		cfg.Tokens.ClockSkew = 0
	})
	c := createAgent(t, in, "bot")
	tok := in.mustToken(c.ClientID, c.ClientSecret)
	if r := in.self(tok); r.status != 200 {
		t.Fatalf("fresh token refused: %d %s", r.status, r.body)
	}
	// exp is the issue second plus one: two seconds from now it has passed by at least one.
	clk.Advance(2 * time.Second)
	if r := in.self(tok); r.status != 401 {
		t.Fatalf("a token past its exp with clock_skew 0 got %d %s, want 401", r.status, r.body)
	}
}

// TestRevokeNamesWhoRevoked: a token revoked by a person at /oauth2/revoke is recorded with the
// person's admin token (name, role, email) as actor, not an anonymous "human" (issue 12 #11);
// one revoked by the agent itself names the agent.
func TestRevokeNamesWhoRevoked(t *testing.T) {
	t.Parallel()
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

// TestExchangedSessionsBoundToPerson: an agent that exchanges two people's tokens with the same
// session_id gets two sessions, so an approval bound to one person's session cannot cover the
// other's call (issue 12 #2); the same person and session_id, or the sid sent back, keep one.
func TestExchangedSessionsBoundToPerson(t *testing.T) {
	t.Parallel()
	idpKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jwksPath := filepath.Join(dir, "idp-jwks.json")
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idpKey.PublicKey, KeyID: "idp-1", Algorithm: "ES256", Use: "sig"}}})
	if err := os.WriteFile(jwksPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	in := start(t, filepath.Join(dir, "data"), func(cfg *config.Config) {
		cfg.TokenExchange.Issuers = []config.TrustedIssuer{{Issuer: "https://idp.example.com", JWKSFile: jwksPath}}
	})
	c := createAgent(t, in, "assistant")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: idpKey}, (&jose.SignerOptions{}).WithHeader("kid", "idp-1"))
	if err != nil {
		t.Fatal(err)
	}
	// sid exchanges person's IdP token with session_id and returns the new token's sid.
	sid := func(person, session string) string {
		t.Helper()
		subject, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "https://idp.example.com", Subject: person,
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour)), IssuedAt: jwt.NewNumericDate(time.Now())}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		r := in.do("POST", "/oauth2/token", withHeader(formCT, "Authorization", "Basic "+basic(c.ClientID, c.ClientSecret)), form(
			"grant_type", "urn:ietf:params:oauth:grant-type:token-exchange",
			"subject_token", subject, "subject_token_type", "urn:ietf:params:oauth:token-type:jwt",
			"session_id", session))
		if r.status != 200 {
			t.Fatalf("exchange: %d %s", r.status, r.body)
		}
		ti := in.introspect(r.json(t)["access_token"].(string))
		if ti["on_behalf_of"] != person {
			t.Fatalf("introspection: %v", ti)
		}
		return ti["sid"].(string)
	}
	alice, bob := sid("alice@example.com", "shared-1"), sid("bob@example.com", "shared-1")
	if alice == bob {
		t.Fatalf("alice and bob share session %q", alice)
	}
	if again := sid("alice@example.com", "shared-1"); again != alice {
		t.Fatalf("alice's session_id gave %q then %q", alice, again)
	}
	if kept := sid("alice@example.com", alice); kept != alice {
		t.Fatalf("alice's sid sent back became %q", kept)
	}
	if s := sid("bob@example.com", alice); s == alice {
		t.Fatal("bob's token joined alice's session by naming its sid")
	}
}
