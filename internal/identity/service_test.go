package identity_test

import (
	"crypto/sha256"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

func jwksKIDs(t *testing.T, svc *identity.Service) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(svc.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

func TestRotateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldKID, _ := e.signingKey()
	before := e.issue(identity.IssueRequest{})
	other := e.replica()

	e.clock.Advance(time.Minute)
	k, err := e.svc.RotateKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID == oldKID || k.Sealed != nil || !k.RetiredAt.IsZero() {
		t.Fatalf("rotated key = %+v", k)
	}
	after := e.issue(identity.IssueRequest{})
	if kid := decodeSegment(t, after.Token, 0)["kid"]; kid != k.ID {
		t.Fatalf("new token signed by %v, want %s", kid, k.ID)
	}
	if got := jwksKIDs(t, e.svc); !slices.Equal(got, []string{oldKID, k.ID}) {
		t.Fatalf("JWKS kids = %v, want old then new", got)
	}
	for _, tok := range []string{before.Token, after.Token} {
		if _, err := e.replica().VerifyToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.VerifyToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}

	// A replica that has not refreshed does not know the new key yet; after a refresh it does,
	// and it signs with it too.
	_, err = other.VerifyToken(ctx, after.Token)
	wantRefused(t, err, warden.EUnauthenticated, "unknown key")
	if err := other.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := other.VerifyToken(ctx, after.Token); err != nil {
		t.Fatal(err)
	}
	iss, err := other.Issue(ctx, e.agent, identity.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodeSegment(t, iss.Token, 0)["kid"]; kid != k.ID {
		t.Fatalf("the other replica signs with %v after refresh, want %s", kid, k.ID)
	}

	// Once every token of the old key has expired, the key goes: from the JWKS, the keyring
	// and the store.
	e.clock.Advance(time.Hour + 31*time.Second)
	if got := jwksKIDs(t, e.svc); !slices.Equal(got, []string{k.ID}) {
		t.Fatalf("JWKS kids after the window = %v", got)
	}
	if err := e.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := e.store.SigningKeys(ctx)
	if len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("store keeps %d keys", len(keys))
	}
}

func TestRetiredKeyStopsVerifyingAfterWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	oldKID, oldPriv := e.signingKey()
	if _, err := e.svc.RotateKeys(ctx); err != nil {
		t.Fatal(err)
	}
	// A token signed with the retired key late in its window (a replica that had not yet seen
	// the rotation) is good while the window lasts, then refused, cached or not, even though
	// its own exp is later.
	e.clock.Advance(59 * time.Minute)
	e.agent = e.update(func(a *warden.Agent) {}) // keep the agent fresh in the snapshot
	late := signEd25519(t, oldPriv, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": oldKID}, with(e.claims(), "exp", e.clock.Now().Add(time.Hour).Unix()))
	if _, err := e.svc.VerifyToken(ctx, late); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	fresh := signEd25519(t, oldPriv, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": oldKID}, e.claims())
	for name, tok := range map[string]string{"cached": late, "uncached": fresh} {
		_, err := e.svc.VerifyToken(ctx, tok)
		if err == nil {
			t.Fatalf("%s token of a retired key accepted", name)
		}
		wantRefused(t, err, warden.EUnauthenticated, "retired key")
	}
	// Once the store has dropped the key, the cached token names an unknown key.
	if err := e.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.VerifyToken(ctx, late)
	wantRefused(t, err, warden.EUnauthenticated, "unknown key")
}

func TestNewCreatesOneKeyAndReusesIt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.replica()
	e.replica()
	keys, _ := e.store.SigningKeys(ctx)
	if len(keys) != 1 {
		t.Fatalf("%d keys after three starts", len(keys))
	}
	if !e.svc.Ready() {
		t.Fatal("not ready")
	}
}

func TestNewWithWrongMasterKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wrong := make([]byte, 32)
	_, err := identity.New(ctx, e.store, wrong, e.cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthenticateClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(a *warden.Agent)
		id     func(e *env) string
		secret func(e *env) string
		want   string // "" means success
	}{
		{"good", nil, nil, nil, ""},
		{"wrong secret", nil, nil, func(e *env) string { return e.secret + "x" }, "invalid client credentials"},
		{"empty secret", nil, nil, func(e *env) string { return "" }, "invalid client credentials"},
		{"unknown client", nil, func(e *env) string { return "agt_nobody" }, nil, "invalid client credentials"},
		{"empty client id", nil, func(e *env) string { return "" }, nil, "invalid client credentials"},
		{"another agent's secret", nil, nil, func(e *env) string { _, s := e.addAgent("other"); return s }, "invalid client credentials"},
		{"suspended", func(a *warden.Agent) { a.Status = warden.AgentSuspended }, nil, nil, "agent is suspended"},
		{"killed", func(a *warden.Agent) { a.Status = warden.AgentKilled }, nil, nil, "agent is killed"},
		{"expired", func(a *warden.Agent) { a.ExpiresAt = t0 }, nil, nil, "agent identity expired; renew it"},
		// Without the secret, nobody learns that the agent is suspended.
		{"suspended, wrong secret", func(a *warden.Agent) { a.Status = warden.AgentSuspended }, nil, func(e *env) string { return "wsec_guess" }, "invalid client credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.change != nil {
				e.update(tt.change)
			}
			id, secret := e.agent.ID, e.secret
			if tt.id != nil {
				id = tt.id(e)
			}
			if tt.secret != nil {
				secret = tt.secret(e)
			}
			a, err := e.svc.AuthenticateClient(ctx, id, secret)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a.ID != e.agent.ID {
					t.Fatalf("authenticated %s", a.ID)
				}
				return
			}
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
			if secret != "" && strings.Contains(err.Error(), secret) {
				t.Fatal("the error repeats the secret")
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		by          func(e *env) string
		token       func(e *env, valid string) string
		wantRevoked bool
	}{
		{"by the agent itself", func(e *env) string { return e.agent.ID }, nil, true},
		{"by an admin", func(e *env) string { return "" }, nil, true},
		{"by another agent", func(e *env) string { a, _ := e.addAgent("other"); return a.ID }, nil, false},
		{"an invalid token", func(e *env) string { return "" }, func(e *env, valid string) string { return badSignature(t, valid) }, false},
		{"a forged token naming the caller", func(e *env) string { return "agt_attacker" }, func(e *env, valid string) string {
			parts := strings.Split(valid, ".")
			parts[1] = b64json(t, with(decodeSegment(t, valid, 1), "client_id", "agt_attacker", "sub", "agt_attacker"))
			return strings.Join(parts, ".")
		}, false},
		{"an expired token", func(e *env) string { return "" }, func(e *env, valid string) string {
			e.clock.Advance(11 * time.Minute)
			return valid
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			valid := e.issue(identity.IssueRequest{}).Token
			tok := valid
			if tt.token != nil {
				tok = tt.token(e, valid)
			}
			c, err := e.svc.Revoke(ctx, tok, tt.by(e))
			if err != nil {
				t.Fatal(err)
			}
			stored, _ := e.store.RevokedTokens(ctx, time.Time{})
			_, verr := e.svc.VerifyToken(ctx, valid)
			if !tt.wantRevoked {
				if c != nil || len(stored) != 0 {
					t.Fatalf("revoked: claims %v, stored %d", c, len(stored))
				}
				if verr != nil && !strings.Contains(verr.Error(), "expired") {
					t.Fatalf("the token no longer verifies: %v", verr)
				}
				return
			}
			if c == nil || c.ClientID != e.agent.ID {
				t.Fatalf("claims = %+v", c)
			}
			if len(stored) != 1 || stored[0].ID != c.ID || stored[0].AgentID != e.agent.ID || !stored[0].ExpiresAt.Equal(c.ExpiresAt) {
				t.Fatalf("stored = %+v", stored)
			}
			wantRefused(t, verr, warden.EUnauthenticated, "token revoked")
			// Revoking twice is fine.
			if _, err := e.svc.Revoke(ctx, tok, tt.by(e)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRefreshFollowsOtherReplicas: a change made through one replica reaches another at its
// next refresh (Run calls Refresh every RefreshInterval).
func TestRefreshFollowsOtherReplicas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(e *env, b *identity.Service, token string)
		want   string
	}{
		{"suspend", func(e *env, b *identity.Service, _ string) {
			a, _ := e.store.UpdateAgent(ctx, e.agent.Name, func(a *warden.Agent) error { a.Status = warden.AgentSuspended; a.Epoch++; return nil })
			b.ObserveAgent(a)
		}, "agent is suspended"},
		{"revoke", func(e *env, b *identity.Service, token string) {
			if c, err := b.Revoke(ctx, token, ""); c == nil || err != nil {
				t.Fatalf("Revoke = %v, %v", c, err)
			}
		}, "token revoked"},
		{"delete", func(e *env, b *identity.Service, _ string) {
			if err := e.store.DeleteAgent(ctx, e.agent.Name); err != nil {
				t.Fatal(err)
			}
			b.ForgetAgent(e.agent.ID)
		}, "agent not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.replica()
			token := e.issue(identity.IssueRequest{}).Token
			if _, err := e.svc.VerifyToken(ctx, token); err != nil {
				t.Fatal(err)
			}
			tt.change(e, b, token)
			_, err := b.VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
			if err := e.svc.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
		})
	}
}

// TestRefreshKeepsChangesMadeWhileReading: a refresh that read the store just before a suspend
// must not publish its older view over the suspend this replica has already applied.
func TestRefreshKeepsChangesMadeWhileReading(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(e *env)
		want   string
	}{
		{"suspend", func(e *env) {
			e.update(func(a *warden.Agent) { a.Status = warden.AgentSuspended; a.Epoch++ })
		}, "agent is suspended"},
		{"delete", func(e *env) {
			if err := e.store.DeleteAgent(ctx, e.agent.Name); err != nil {
				t.Fatal(err)
			}
			e.svc.ForgetAgent(e.agent.ID)
		}, "agent not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			token := e.issue(identity.IssueRequest{}).Token
			var once sync.Once
			e.store.onAgents = func() { once.Do(func() { tt.change(e) }) }
			if err := e.svc.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			_, err := e.svc.VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
			// The next refresh reads the change from the store.
			if err := e.svc.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
		})
	}
}

func TestRunRefreshesUntilCanceled(t *testing.T) {
	t.Parallel()
	const interval = 5 * time.Millisecond
	e := newEnv(t, func(c *identity.Config) { c.RefreshInterval = interval })
	b := e.replica()
	token := e.issue(identity.IssueRequest{}).Token
	// Each refresh reads the agents; the second read of two ticks in a row begins only once
	// the first refresh has published what it read.
	read := make(chan struct{}, 1)
	e.store.mu.Lock()
	e.store.onAgents = func() { read <- struct{}{} }
	e.store.mu.Unlock()
	runCtx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(runCtx) }()
	if err := e.clock.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}

	a, _ := e.store.UpdateAgent(ctx, e.agent.Name, func(a *warden.Agent) error { a.Status = warden.AgentKilled; a.Epoch++; return nil })
	b.ObserveAgent(a)
	if _, err := e.svc.VerifyToken(ctx, token); err != nil {
		t.Fatalf("the kill reached this replica before any refresh: %v", err)
	}
	for range 2 {
		e.clock.Advance(interval)
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not refresh when its interval passed")
		}
	}
	_, err := e.svc.VerifyToken(ctx, token)
	wantRefused(t, err, warden.EUnauthenticated, "agent is killed")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRevocationsArePruned(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.issue(identity.IssueRequest{}).Token
	if _, err := e.svc.Revoke(ctx, token, ""); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(11 * time.Minute)
	if err := e.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if stored, _ := e.store.RevokedTokens(ctx, time.Time{}); len(stored) != 0 {
		t.Fatalf("store keeps %d revocations of expired tokens", len(stored))
	}
	_, err := e.svc.VerifyToken(ctx, token)
	wantRefused(t, err, warden.EUnauthenticated, "token expired")
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(c *identity.Config)
		want string
	}{
		{"no issuer", func(c *identity.Config) { c.Issuer = "" }, "issuer"},
		{"issuer not a URL", func(c *identity.Config) { c.Issuer = "warden" }, "http or https"},
		{"issuer with query", func(c *identity.Config) { c.Issuer = "https://w.example?x=1" }, "no query"},
		{"ttl over max", func(c *identity.Config) { c.TokenTTL = 2 * time.Hour }, "longer than the maximum"},
		{"ttl under a second", func(c *identity.Config) { c.TokenTTL = time.Millisecond }, "shorter than a second"},
		{"negative ttl", func(c *identity.Config) { c.TokenTTL = -time.Minute }, "positive"},
		{"skew too large", func(c *identity.Config) { c.ClockSkew = time.Hour }, "clock skew"},
		{"trusted issuer without keys", func(c *identity.Config) {
			c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: "https://idp.example"}}
		}, "exactly one of"},
		{"trusted issuer with both key sources", func(c *identity.Config) {
			c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: "https://idp.example", JWKSFile: "x", JWKSURL: "https://idp.example/jwks"}}
		}, "exactly one of"},
		{"trusted issuer over plain http", func(c *identity.Config) {
			c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: "https://idp.example", JWKSURL: "http://idp.example/jwks"}}
		}, "https"},
		{"trusted issuer twice", func(c *identity.Config) {
			ti := identity.TrustedIssuer{Issuer: "https://idp.example", JWKSURL: "https://idp.example/jwks"}
			c.TrustedIssuers = []identity.TrustedIssuer{ti, ti}
		}, "twice"},
		{"warden trusting itself", func(c *identity.Config) {
			c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: testIssuer, JWKSURL: "https://idp.example/jwks"}}
		}, "warden itself"},
		{"missing JWKS file", func(c *identity.Config) {
			c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: "https://idp.example", JWKSFile: "/nonexistent/jwks.json"}}
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := identity.Config{Issuer: testIssuer}
			tt.cfg(&cfg)
			_, err := identity.New(ctx, newFakeStore(), make([]byte, 32), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := identity.New(ctx, newFakeStore(), make([]byte, 16), identity.Config{Issuer: testIssuer}, nil); err == nil {
		t.Fatal("a 16-byte master key was accepted")
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s, h := identity.NewSecret(identity.AgentSecretPrefix)
		if !regexp.MustCompile(`^wsec_[A-Za-z0-9_-]{43}$`).MatchString(s) {
			t.Fatalf("secret %q", s)
		}
		want := sha256.Sum256([]byte(s))
		if string(h) != string(want[:]) || string(identity.HashSecret(s)) != string(want[:]) {
			t.Fatal("hash is not the SHA-256 of the secret")
		}
		if seen[s] {
			t.Fatal("secret repeated")
		}
		seen[s] = true
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	prev := ""
	for range 100 {
		id := warden.NewID("agt_")
		if !regexp.MustCompile(`^agt_[0-9a-hjkmnp-tv-z]{26}$`).MatchString(id) {
			t.Fatalf("id %q", id)
		}
		if id == prev {
			t.Fatal("id repeated")
		}
		prev = id
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b, err := json.Marshal(e.svc.Metadata("https://warden.example/"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                 testIssuer,
		"token_endpoint":         "https://warden.example/oauth2/token",
		"jwks_uri":               "https://warden.example/.well-known/jwks.json",
		"introspection_endpoint": "https://warden.example/oauth2/introspect",
		"revocation_endpoint":    "https://warden.example/oauth2/revoke",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	for k, v := range map[string][]any{
		"grant_types_supported":                 {"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
		"response_types_supported":              {},
	} {
		got, _ := m[k].([]any)
		if got == nil || !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if md := e.svc.Metadata("").(*identity.ServerMetadata); md.TokenEndpoint != testIssuer+identity.TokenPath {
		t.Errorf("default base: %s", md.TokenEndpoint)
	}
}

// TestConcurrentUse runs verifications against every kind of writer at once; under -race it
// checks that the lock-free read path shares nothing it should not.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokens := make([]string, 8)
	for i := range tokens {
		tokens[i] = e.issue(identity.IssueRequest{}).Token
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := i; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				// Refusals are expected once the writers below get going; panics and races are not.
				_, _ = e.svc.VerifyToken(ctx, tokens[j%len(tokens)])
			}
		})
	}
	writers := []func(){
		func() { e.update(func(a *warden.Agent) { a.Epoch++ }) },
		func() { _, _ = e.svc.Revoke(ctx, tokens[0], "") },
		func() { _ = e.svc.Refresh(ctx) },
		func() { _, _ = e.svc.RotateKeys(ctx) },
		func() { e.addAgent("agent-" + warden.NewID("")[20:]) },
		func() { e.svc.ForgetAgent("agt_unknown") },
		func() { _ = e.svc.JWKS() },
	}
	for range 20 {
		for _, w := range writers {
			w()
		}
	}
	close(stop)
	wg.Wait()
}
