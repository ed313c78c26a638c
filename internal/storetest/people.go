package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var personTests = []storeTest{
	{"SessionCreateLookUpRevoke", testPersonSession},
	{"SessionsEndedLongAgoDeleted", testPersonSessionsPruned},
	{"LiveSessionsOfAnEmail", testLivePersonSessions},
	{"FlowGetUpdateTake", testSignInFlow},
	{"FlowTakenOnce", testSignInFlowTakenOnce},
}

func newPersonSession(name string) *warden.PersonSession {
	return &warden.PersonSession{Hash: hash("session of " + name), Kind: warden.SessionCLI, Name: name + "@example.com",
		Email: name + "@example.com", Role: warden.RoleApprover, Via: "oidc", CreatedAt: base, ExpiresAt: base.Add(8 * time.Hour)}
}

func personSessionInUTC(ps *warden.PersonSession) *warden.PersonSession {
	c := *ps
	c.CreatedAt, c.ExpiresAt, c.RevokedAt = ps.CreatedAt.UTC(), ps.ExpiresAt.UTC(), ps.RevokedAt.UTC()
	return &c
}

func testPersonSession(t *testing.T, s warden.Store) {
	ctx := t.Context()
	ps := newPersonSession("alice")
	if err := s.CreatePersonSession(ctx, ps); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreatePersonSession(ctx, ps), warden.EConflict)
	got, err := s.PersonSessionByHash(ctx, ps.Hash)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "PersonSessionByHash", got, personSessionInUTC(ps))
	if !got.Active(base.Add(time.Hour)) || got.Active(base.Add(8*time.Hour)) {
		t.Fatal("a session is active exactly until it expires")
	}
	_, err = s.PersonSessionByHash(ctx, hash("nobody"))
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.RevokePersonSession(ctx, hash("nobody"), base), warden.ENotFound)
	at := base.Add(time.Minute)
	if err := s.RevokePersonSession(ctx, ps.Hash, at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokePersonSession(ctx, ps.Hash, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = s.PersonSessionByHash(ctx, ps.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if !got.RevokedAt.Equal(at) || got.Active(base.Add(2*time.Minute)) {
		t.Fatalf("RevokedAt = %v, want %v and the session ended", got.RevokedAt, at)
	}
}

func testPersonSessionsPruned(t *testing.T, s warden.Store) {
	ctx := t.Context()
	old, live := newPersonSession("old"), newPersonSession("live")
	old.ExpiresAt = base.Add(time.Hour)
	for _, ps := range []*warden.PersonSession{old, live} {
		if err := s.CreatePersonSession(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	later := newPersonSession("later")
	later.CreatedAt, later.ExpiresAt = base.Add(26*time.Hour), base.Add(30*time.Hour)
	if err := s.CreatePersonSession(ctx, later); err != nil {
		t.Fatal(err)
	}
	_, err := s.PersonSessionByHash(ctx, old.Hash)
	wantCode(t, err, warden.ENotFound)
	if _, err := s.PersonSessionByHash(ctx, live.Hash); err != nil {
		t.Fatalf("a session that ended less than a day ago was deleted: %v", err)
	}
}

func testSignInFlow(t *testing.T, s warden.Store) {
	ctx := t.Context()
	f := &warden.SignInFlow{Hash: hash("state"), Kind: "oidc", Data: []byte(`{"a":1}`), ExpiresAt: base.Add(10 * time.Minute)}
	if err := s.CreateSignInFlow(ctx, f, base); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.CreateSignInFlow(ctx, f, base), warden.EConflict)
	got, err := s.SignInFlow(ctx, f.Hash, "oidc", base)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != `{"a":1}` || !got.ExpiresAt.Equal(f.ExpiresAt) {
		t.Fatalf("SignInFlow = %+v", got)
	}
	_, err = s.SignInFlow(ctx, f.Hash, "device", base)
	wantCode(t, err, warden.ENotFound) // the kind is part of the name
	_, err = s.SignInFlow(ctx, f.Hash, "oidc", f.ExpiresAt)
	wantCode(t, err, warden.ENotFound) // expired
	wantCode(t, s.UpdateSignInFlow(ctx, f.Hash, "oidc", []byte(`{}`), f.ExpiresAt), warden.ENotFound)
	if err := s.UpdateSignInFlow(ctx, f.Hash, "oidc", []byte(`{"a":2}`), base); err != nil {
		t.Fatal(err)
	}
	_, err = s.TakeSignInFlow(ctx, f.Hash, "oidc", f.ExpiresAt.Add(time.Second))
	wantCode(t, err, warden.ENotFound)
	got, err = s.TakeSignInFlow(ctx, f.Hash, "oidc", base)
	if err != nil || string(got.Data) != `{"a":2}` {
		t.Fatalf("TakeSignInFlow = %+v, %v", got, err)
	}
	_, err = s.SignInFlow(ctx, f.Hash, "oidc", base)
	wantCode(t, err, warden.ENotFound)
	// An expired step is deleted when another is created.
	other := &warden.SignInFlow{Hash: hash("other"), Kind: "oidc", Data: []byte(`{}`), ExpiresAt: base.Add(time.Minute)}
	if err := s.CreateSignInFlow(ctx, other, base); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSignInFlow(ctx, &warden.SignInFlow{Hash: hash("third"), Kind: "oidc", Data: []byte(`{}`), ExpiresAt: base.Add(time.Hour)}, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSignInFlow(ctx, other, base); err != nil {
		t.Fatalf("the expired step was not deleted: %v", err)
	}
}

func testSignInFlowTakenOnce(t *testing.T, s warden.Store) {
	ctx := t.Context()
	f := &warden.SignInFlow{Hash: hash("code"), Kind: "cli_code", Data: []byte(`{}`), ExpiresAt: base.Add(time.Minute)}
	if err := s.CreateSignInFlow(ctx, f, base); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for range 8 {
		wg.Go(func() {
			if _, err := s.TakeSignInFlow(ctx, f.Hash, "cli_code", base); err == nil {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if taken != 1 {
		t.Fatalf("the step was taken %d times, want once", taken)
	}
}

// testLivePersonSessions: a person's live sessions are those of their email neither expired nor
// revoked; the OAuth server refreshes an admin's grant only while one exists.
func testLivePersonSessions(t *testing.T, s warden.Store) {
	ctx := t.Context()
	live := newPersonSession("carol")
	live.Role = warden.RoleAdmin
	revoked := newPersonSession("carol")
	revoked.Hash = hash("revoked session of carol")
	expired := newPersonSession("carol")
	expired.Hash, expired.ExpiresAt = hash("expired session of carol"), base.Add(time.Hour)
	other := newPersonSession("dave")
	for _, ps := range []*warden.PersonSession{live, revoked, expired, other} {
		if err := s.CreatePersonSession(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokePersonSession(ctx, revoked.Hash, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.LivePersonSessions(ctx, "carol@example.com", base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Hash) != string(live.Hash) || got[0].Role != warden.RoleAdmin {
		t.Fatalf("live sessions of carol: %+v, want only the live one", got)
	}
	if got, err := s.LivePersonSessions(ctx, "nobody@example.com", base); err != nil || len(got) != 0 {
		t.Fatalf("live sessions of nobody: %v %v", got, err)
	}
}
