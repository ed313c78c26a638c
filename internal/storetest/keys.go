package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var signingKeyTests = []storeTest{
	{"CreateRetiresPrevious", testCreateSigningKey},
	{"CreateConflictRetiresNothing", testSigningKeyConflict},
	{"CreateConcurrent", testCreateSigningKeyConcurrent},
	{"DeleteRetiredBefore", testDeleteSigningKeys},
}

var revokedTokenTests = []storeTest{
	{"RevokeAndList", testRevokeToken},
	{"RevokeTwice", testRevokeTokenTwice},
	{"Prune", testPruneRevokedTokens},
}

func newSigningKey(kid string, createdAt time.Time) *warden.SigningKey {
	return &warden.SigningKey{ID: kid, Algorithm: "EdDSA", Public: hash("public " + kid), Sealed: hash("sealed " + kid),
		CreatedAt: createdAt}
}

func signingKeys(t *testing.T, s warden.Store) []*warden.SigningKey {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func createSigningKey(t *testing.T, s warden.Store, k *warden.SigningKey) {
	t.Helper()
	if err := s.CreateSigningKey(t.Context(), k); err != nil {
		t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
	}
}

func testCreateSigningKey(t *testing.T, s warden.Store) {
	if keys := signingKeys(t, s); len(keys) != 0 {
		t.Fatalf("SigningKeys() of an empty store = %v", keys)
	}
	k1 := newSigningKey("k1", base)
	createSigningKey(t, s, k1)
	wantEqual(t, "first key", signingKeys(t, s), []*warden.SigningKey{{ID: "k1", Algorithm: "EdDSA",
		Public: k1.Public, Sealed: k1.Sealed, CreatedAt: base.UTC()}})

	// Each new key retires every key still signing, as of its own creation.
	t2, t3 := base.Add(time.Hour), base.Add(2*time.Hour)
	createSigningKey(t, s, newSigningKey("k2", t2))
	createSigningKey(t, s, newSigningKey("k3", t3))
	keys := signingKeys(t, s)
	wantRetired := []time.Time{t2, t3, {}}
	for i, k := range keys {
		if want := fmt.Sprintf("k%d", i+1); k.ID != want {
			t.Fatalf("key %d is %s, want %s: keys are listed oldest first", i, k.ID, want)
		}
		if !k.RetiredAt.Equal(wantRetired[i]) || k.RetiredAt.IsZero() != wantRetired[i].IsZero() {
			t.Errorf("%s retired at %v, want %v", k.ID, k.RetiredAt, wantRetired[i])
		}
	}
	if len(keys) != 3 {
		t.Fatalf("got %d keys, want 3", len(keys))
	}
	wantCode(t, s.CreateSigningKey(t.Context(), newSigningKey("k4", time.Time{})), warden.EInvalid)
}

func testSigningKeyConflict(t *testing.T, s warden.Store) {
	createSigningKey(t, s, newSigningKey("k1", base))
	createSigningKey(t, s, newSigningKey("k2", base.Add(time.Hour)))
	wantCode(t, s.CreateSigningKey(t.Context(), newSigningKey("k1", base.Add(2*time.Hour))), warden.EConflict)
	keys := signingKeys(t, s)
	if len(keys) != 2 || !keys[1].RetiredAt.IsZero() {
		t.Fatalf("after a failed create the signing key was retired: %+v", keys[1])
	}
}

func testCreateSigningKeyConcurrent(t *testing.T, s warden.Store) {
	const rotations = 10
	err := concurrently(rotations, func(i int) error {
		return s.CreateSigningKey(t.Context(), newSigningKey(fmt.Sprintf("k%02d", i), base.Add(time.Duration(i)*time.Minute)))
	})
	if err != nil {
		t.Fatal(err)
	}
	signing := 0
	keys := signingKeys(t, s)
	for _, k := range keys {
		if k.RetiredAt.IsZero() {
			signing++
		}
	}
	if len(keys) != rotations || signing != 1 {
		t.Fatalf("after %d concurrent rotations: %d keys, %d signing; want %d and 1", rotations, len(keys), signing, rotations)
	}
}

func testDeleteSigningKeys(t *testing.T, s warden.Store) {
	for i := range 4 {
		createSigningKey(t, s, newSigningKey(fmt.Sprintf("k%d", i+1), base.Add(time.Duration(i)*time.Hour)))
	}
	// k1 retired at base+1h, k2 at base+2h, k3 at base+3h; k4 is signing and stays.
	runDeletions(t, []deletion{
		{time.Time{}, 0, []string{"k1", "k2", "k3", "k4"}},
		{base.Add(time.Hour), 0, []string{"k1", "k2", "k3", "k4"}},
		{base.Add(2*time.Hour + time.Nanosecond), 2, []string{"k3", "k4"}},
		{base.Add(1000 * time.Hour), 1, []string{"k4"}},
	}, func(before time.Time) (int, error) {
		return s.DeleteSigningKeysRetiredBefore(t.Context(), before)
	}, func() []string {
		var ids []string
		for _, k := range signingKeys(t, s) {
			ids = append(ids, k.ID)
		}
		return ids
	})
}

func newRevokedToken(jti string, expiresAt time.Time) *warden.RevokedToken {
	return &warden.RevokedToken{ID: jti, AgentID: "ag_bot", ExpiresAt: expiresAt, RevokedAt: base}
}

func revokedIDs(t *testing.T, s warden.Store, after time.Time) []string {
	t.Helper()
	revoked, err := s.RevokedTokens(t.Context(), after)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range revoked {
		ids = append(ids, r.ID)
	}
	return ids
}

func revokeToken(t *testing.T, s warden.Store, r *warden.RevokedToken) {
	t.Helper()
	if err := s.RevokeToken(t.Context(), r); err != nil {
		t.Fatalf("RevokeToken(%s): %v", r.ID, err)
	}
}

func testRevokeToken(t *testing.T, s warden.Store) {
	if ids := revokedIDs(t, s, time.Time{}); len(ids) != 0 {
		t.Fatalf("RevokedTokens of an empty store = %v", ids)
	}
	r := newRevokedToken("jti-1", base.Add(time.Hour))
	revokeToken(t, s, r)
	revokeToken(t, s, newRevokedToken("jti-2", base.Add(2*time.Hour)))
	got, err := s.RevokedTokens(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	want.ExpiresAt, want.RevokedAt = r.ExpiresAt.UTC(), r.RevokedAt.UTC()
	wantEqual(t, "first revocation", got[0], &want)

	tests := []struct {
		after time.Time
		want  []string
	}{
		{time.Time{}, []string{"jti-1", "jti-2"}},
		{base.Add(time.Hour - time.Nanosecond), []string{"jti-1", "jti-2"}},
		{base.Add(time.Hour), []string{"jti-2"}},
		{base.Add(2 * time.Hour), nil},
	}
	for _, tt := range tests {
		wantEqual(t, fmt.Sprintf("revocations of tokens expiring after %v", tt.after), revokedIDs(t, s, tt.after), tt.want)
	}
	wantCode(t, s.RevokeToken(t.Context(), newRevokedToken("no-expiry", time.Time{})), warden.EInvalid)
}

func testRevokeTokenTwice(t *testing.T, s warden.Store) {
	revokeToken(t, s, newRevokedToken("jti-1", base.Add(time.Hour)))
	again := newRevokedToken("jti-1", base.Add(time.Hour))
	again.RevokedAt = base.Add(time.Minute)
	revokeToken(t, s, again)
	got, err := s.RevokedTokens(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].RevokedAt.Equal(base) {
		t.Fatalf("after revoking twice: %+v; want one revocation, the first", got)
	}
}

func testPruneRevokedTokens(t *testing.T, s warden.Store) {
	for i := range 3 {
		revokeToken(t, s, newRevokedToken(fmt.Sprintf("jti-%d", i+1), base.Add(time.Duration(i+1)*time.Hour)))
	}
	runDeletions(t, []deletion{
		{time.Time{}, 0, []string{"jti-1", "jti-2", "jti-3"}},
		{base.Add(time.Hour), 0, []string{"jti-1", "jti-2", "jti-3"}},
		{base.Add(2*time.Hour + time.Nanosecond), 2, []string{"jti-3"}},
		{base.Add(1000 * time.Hour), 1, nil},
	}, func(before time.Time) (int, error) {
		return s.PruneRevokedTokens(t.Context(), before)
	}, func() []string {
		return revokedIDs(t, s, time.Time{})
	})
}
