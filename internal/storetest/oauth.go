package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var oauthTests = []storeTest{
	{"Clients", testOAuthClients},
	{"CodeSingleUse", testAuthorizationCodeSingleUse},
	{"RefreshRotation", testRefreshRotation},
}

func testOAuthClients(t *testing.T, s warden.Store) {
	ctx := t.Context()
	c := &warden.OAuthClient{ID: "cli_1", Name: "Inspector", RedirectURIs: []string{"http://127.0.0.1/cb", "https://a.example/cb"}, CreatedAt: time.Unix(100, 0).UTC()}
	if err := s.CreateOAuthClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOAuthClient(ctx, c); warden.ErrorCode(err) != warden.EConflict {
		t.Fatalf("second create: %v, want EConflict", err)
	}
	got, err := s.OAuthClient(ctx, "cli_1")
	if err != nil || got.Name != c.Name || !slices.Equal(got.RedirectURIs, c.RedirectURIs) || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("OAuthClient = %+v, %v", got, err)
	}
	if _, err := s.OAuthClient(ctx, "cli_2"); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("unknown client: %v", err)
	}
	if n, err := s.CountOAuthClients(ctx); n != 1 || err != nil {
		t.Fatalf("CountOAuthClients = %d, %v", n, err)
	}
}

// testAuthorizationCodeSingleUse: of concurrent takes of one code exactly one gets it; an
// expired code is never returned.
func testAuthorizationCodeSingleUse(t *testing.T, s warden.Store) {
	ctx := t.Context()
	now := time.Unix(1000, 0)
	code := &warden.AuthorizationCode{Hash: "h1", ClientID: "cli_1", RedirectURI: "http://127.0.0.1/cb", AgentID: "agt_1",
		Person: "ann@example.com", Role: warden.RoleOperator, Resource: "http://w/mcp", CodeChallenge: "x", ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthorizationCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan *warden.AuthorizationCode, 4)
	for range 4 {
		wg.Go(func() {
			c, _ := s.TakeAuthorizationCode(ctx, "h1", now)
			results <- c
		})
	}
	wg.Wait()
	close(results)
	taken := 0
	for c := range results {
		if c != nil {
			taken++
			if c.Person != code.Person || c.Role != code.Role || c.AgentID != code.AgentID || c.CodeChallenge != "x" {
				t.Fatalf("taken code %+v", c)
			}
		}
	}
	if taken != 1 {
		t.Fatalf("a code was taken %d times, want once", taken)
	}
	late := *code
	late.Hash = "h2"
	if err := s.CreateAuthorizationCode(ctx, &late); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeAuthorizationCode(ctx, "h2", now.Add(time.Minute)); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("expired code: %v, want ENotFound", err)
	}
}

// testRefreshRotation: a token is used once; the second use says reused; revoking the family
// makes every token of it reused; prune forgets expired ones.
func testRefreshRotation(t *testing.T, s warden.Store) {
	ctx := t.Context()
	now := time.Unix(1000, 0).UTC()
	rt := &warden.RefreshToken{Hash: "r1", Family: "f1", ClientID: "cli_1", AgentID: "agt_1", Person: "ann@example.com", Role: warden.RoleAdmin,
		Resource: "http://w/mcp", Scope: "mcp", CreatedAt: now, AuthAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	got, reused, err := s.UseRefreshToken(ctx, "r1", now.Add(time.Second))
	if err != nil || reused || got.Family != "f1" || got.Role != warden.RoleAdmin || !got.ExpiresAt.Equal(rt.ExpiresAt) || !got.UsedAt.IsZero() {
		t.Fatalf("first use = %+v, %v, %v", got, reused, err)
	}
	if _, reused, err := s.UseRefreshToken(ctx, "r1", now.Add(2*time.Second)); err != nil || !reused {
		t.Fatalf("second use: reused %v, %v; want reused", reused, err)
	}
	next := *rt
	next.Hash = "r2"
	if err := s.CreateRefreshToken(ctx, &next); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RevokeRefreshFamily(ctx, "f1", now); n != 2 || err != nil {
		t.Fatalf("RevokeRefreshFamily = %d, %v; want 2", n, err)
	}
	if _, reused, err := s.UseRefreshToken(ctx, "r2", now); err != nil || !reused {
		t.Fatalf("a revoked token: reused %v, %v; want reused", reused, err)
	}
	if _, _, err := s.UseRefreshToken(ctx, "nope", now); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("unknown token: %v", err)
	}
	if n, err := s.PruneOAuth(ctx, now.Add(2*time.Hour)); n != 2 || err != nil {
		t.Fatalf("PruneOAuth = %d, %v; want 2", n, err)
	}
}
