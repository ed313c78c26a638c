package storetest

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var adminTokenTests = []storeTest{
	{"CreateAndLookUp", testCreateAdminToken},
	{"Conflict", testAdminTokenConflict},
	{"NotFound", testAdminTokenNotFound},
	{"ListOrderedByName", testAdminTokensOrderedByName},
	{"Revoke", testRevokeAdminToken},
}

func newAdminToken(name string, role warden.Role) *warden.AdminToken {
	return &warden.AdminToken{Name: name, Role: role, Hash: hash("token of " + name), CreatedBy: "root", CreatedAt: base}
}

func adminTokenInUTC(tok *warden.AdminToken) *warden.AdminToken {
	c := *tok
	c.CreatedAt, c.RevokedAt = tok.CreatedAt.UTC(), tok.RevokedAt.UTC()
	return &c
}

func createAdminToken(t *testing.T, s warden.Store, tok *warden.AdminToken) {
	t.Helper()
	if err := s.CreateAdminToken(t.Context(), tok); err != nil {
		t.Fatalf("CreateAdminToken(%s): %v", tok.Name, err)
	}
}

func testCreateAdminToken(t *testing.T, s warden.Store) {
	tok := newAdminToken("alice", warden.RoleOperator)
	tok.Email = "alice@example.com"
	createAdminToken(t, s, tok)
	got, err := s.AdminTokenByHash(t.Context(), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "AdminTokenByHash", got, adminTokenInUTC(tok))
	if got.Revoked() {
		t.Fatal("a new token is revoked")
	}
}

func testAdminTokenConflict(t *testing.T, s warden.Store) {
	live, revoked := newAdminToken("alice", warden.RoleAdmin), newAdminToken("bob", warden.RoleAuditor)
	createAdminToken(t, s, live)
	createAdminToken(t, s, revoked)
	if err := s.RevokeAdminToken(t.Context(), revoked.Name, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token *warden.AdminToken
	}{
		{"live name", &warden.AdminToken{Name: live.Name, Role: warden.RoleAuditor, Hash: hash("fresh 1"), CreatedAt: base}},
		// A revoked name stays taken, so that the audit trail never confuses two people.
		{"revoked name", &warden.AdminToken{Name: revoked.Name, Role: warden.RoleAuditor, Hash: hash("fresh 2"), CreatedAt: base}},
		{"same hash", &warden.AdminToken{Name: "carol", Role: warden.RoleAuditor, Hash: live.Hash, CreatedAt: base}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.CreateAdminToken(t.Context(), tt.token), warden.EConflict)
		})
	}
	got, err := s.AdminTokenByHash(t.Context(), live.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "token after conflicts", got, adminTokenInUTC(live))
	if all, err := s.AdminTokens(t.Context()); err != nil || len(all) != 2 {
		t.Fatalf("AdminTokens() = %d tokens, %v; want 2", len(all), err)
	}
}

func testAdminTokenNotFound(t *testing.T, s warden.Store) {
	createAdminToken(t, s, newAdminToken("alice", warden.RoleAdmin))
	_, err := s.AdminTokenByHash(t.Context(), hash("nobody's token"))
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.RevokeAdminToken(t.Context(), "nobody", base), warden.ENotFound)
}

func testAdminTokensOrderedByName(t *testing.T, s warden.Store) {
	all, err := s.AdminTokens(t.Context())
	if err != nil || len(all) != 0 {
		t.Fatalf("AdminTokens() of an empty store = %v, %v", all, err)
	}
	for _, name := range []string{"carol", "a-team", "bob", "alice", "a1"} {
		createAdminToken(t, s, newAdminToken(name, warden.RoleAuditor))
	}
	all, err = s.AdminTokens(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, all, func(tok *warden.AdminToken) string { return tok.Name }, []string{"a-team", "a1", "alice", "bob", "carol"})
	wantEqual(t, "first token", all[0], adminTokenInUTC(newAdminToken("a-team", warden.RoleAuditor)))
}

func testRevokeAdminToken(t *testing.T, s warden.Store) {
	tok, other := newAdminToken("alice", warden.RoleAdmin), newAdminToken("bob", warden.RoleAdmin)
	createAdminToken(t, s, tok)
	createAdminToken(t, s, other)
	revokedAt := base.Add(time.Hour)
	if err := s.RevokeAdminToken(t.Context(), tok.Name, revokedAt); err != nil {
		t.Fatal(err)
	}
	got, err := s.AdminTokenByHash(t.Context(), tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked() || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("RevokedAt = %v, want %v", got.RevokedAt, revokedAt)
	}
	// Revoking again is harmless and keeps the time of the first revocation.
	if err := s.RevokeAdminToken(t.Context(), tok.Name, revokedAt.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AdminTokenByHash(t.Context(), tok.Hash); !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("RevokedAt after a second revoke = %v, want %v", got.RevokedAt, revokedAt)
	}
	if got, _ := s.AdminTokenByHash(t.Context(), other.Hash); got.Revoked() {
		t.Fatal("revoking one token revoked another")
	}
	wantCode(t, s.RevokeAdminToken(t.Context(), other.Name, time.Time{}), warden.EInvalid)
}
