package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

var ctx = context.Background()

func TestIssueVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		req     identity.IssueRequest
		agentTo time.Duration // remaining lifetime of the agent identity; 0 keeps 30 days
		wantTTL int64
		check   func(t *testing.T, e *env, c *warden.Claims)
	}{
		{name: "default ttl", wantTTL: 600},
		{name: "requested ttl", req: identity.IssueRequest{TTL: 5 * time.Minute}, wantTTL: 300},
		{name: "ttl capped at the maximum", req: identity.IssueRequest{TTL: 24 * time.Hour}, wantTTL: 3600},
		{name: "ttl capped at the agent's expiry", agentTo: 90 * time.Second, wantTTL: 90},
		{
			name: "scope and session", req: identity.IssueRequest{Scope: "tools:read tools:write", SessionID: "ses_abc"}, wantTTL: 600,
			check: func(t *testing.T, e *env, c *warden.Claims) {
				// The client's session_id is a request: the sid is derived from it (session.go).
				if c.Scope != "tools:read tools:write" || !strings.HasPrefix(c.SessionID, "ses_") || c.SessionID == "ses_abc" {
					t.Fatalf("scope %q sid %q", c.Scope, c.SessionID)
				}
			},
		},
		{
			name: "new session when none given", wantTTL: 600,
			check: func(t *testing.T, e *env, c *warden.Claims) {
				if !strings.HasPrefix(c.SessionID, "ses_") {
					t.Fatalf("sid = %q", c.SessionID)
				}
			},
		},
		{
			name: "on behalf of a person", req: identity.IssueRequest{OnBehalfOf: "alice@example.com"}, wantTTL: 600,
			check: func(t *testing.T, e *env, c *warden.Claims) {
				if c.Subject != "alice@example.com" || c.Actor == nil || c.Actor.Subject != e.agent.ID {
					t.Fatalf("sub %q act %+v", c.Subject, c.Actor)
				}
				if c.AgentID() != e.agent.ID || c.OnBehalfOf() != "alice@example.com" {
					t.Fatalf("AgentID %q OnBehalfOf %q", c.AgentID(), c.OnBehalfOf())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.agentTo != 0 {
				e.agent = e.update(func(a *warden.Agent) { a.ExpiresAt = e.clock.Now().Add(tt.agentTo) })
			}
			e.clock.Advance(300 * time.Millisecond) // a clock between seconds, as in life
			iss := e.issue(tt.req)
			if iss.ExpiresIn != tt.wantTTL {
				t.Fatalf("ExpiresIn = %d, want %d", iss.ExpiresIn, tt.wantTTL)
			}
			hdr := decodeSegment(t, iss.Token, 0)
			kid, _ := e.signingKey()
			if hdr["alg"] != "EdDSA" || hdr["typ"] != "at+jwt" || hdr["kid"] != kid {
				t.Fatalf("header = %v", hdr)
			}
			c := iss.Claims
			if c.Issuer != testIssuer || !reflect.DeepEqual(c.Audience, []string{testIssuer}) || c.ClientID != e.agent.ID ||
				c.Epoch != e.agent.Epoch || !strings.HasPrefix(c.ID, "tok_") || c.ExpiresAt.Sub(c.IssuedAt) != time.Duration(tt.wantTTL)*time.Second {
				t.Fatalf("claims = %+v", c)
			}
			if tt.check != nil {
				tt.check(t, e, c)
			}
			// A replica that never saw the token verifies its signature; the issuer's own check
			// the second time is a cache hit. Both must give back exactly what was issued.
			for _, svc := range []*identity.Service{e.replica(), e.svc, e.svc} {
				got, err := svc.VerifyToken(ctx, iss.Token)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, iss.Claims) {
					t.Fatalf("verified claims differ:\n got %+v\nwant %+v", got, iss.Claims)
				}
			}
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(a *warden.Agent)
		req    identity.IssueRequest
		code   string
		msg    string
	}{
		{"suspended agent", func(a *warden.Agent) { a.Status = warden.AgentSuspended }, identity.IssueRequest{}, warden.EUnauthenticated, "agent is suspended"},
		{"killed agent", func(a *warden.Agent) { a.Status = warden.AgentKilled }, identity.IssueRequest{}, warden.EUnauthenticated, "agent is killed"},
		{"expired agent", func(a *warden.Agent) { a.ExpiresAt = t0.Add(-time.Second) }, identity.IssueRequest{}, warden.EUnauthenticated, "agent identity expired; renew it"},
		{"agent expiring within the second", func(a *warden.Agent) { a.ExpiresAt = t0.Add(500 * time.Millisecond) }, identity.IssueRequest{}, warden.EUnauthenticated, "agent identity expired"},
		{"negative ttl", nil, identity.IssueRequest{TTL: -time.Second}, warden.EInvalid, "lifetime"},
		{"scope with a quote", nil, identity.IssueRequest{Scope: `a"b`}, warden.EInvalid, "scope"},
		{"scope with a double space", nil, identity.IssueRequest{Scope: "a  b"}, warden.EInvalid, "scope"},
		{"session id with a newline", nil, identity.IssueRequest{SessionID: "ses\nforged log line"}, warden.EInvalid, "session id"},
		{"session id too long", nil, identity.IssueRequest{SessionID: strings.Repeat("s", 129)}, warden.EInvalid, "session id"},
		{"subject with a control character", nil, identity.IssueRequest{OnBehalfOf: "alice\x1b[31m"}, warden.EInvalid, "subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.agent
			if tt.change != nil {
				a = e.update(tt.change)
			}
			iss, err := e.svc.Issue(ctx, a, tt.req)
			if err == nil {
				t.Fatalf("issued %+v", iss.Claims)
			}
			wantRefused(t, err, tt.code, tt.msg)
		})
	}
}

// nonCanonical changes the last character of a base64url segment so that only its unused
// trailing bits change: a lenient decoder yields the same bytes.
func nonCanonical(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[i|1])
}

func hs256(t testing.TB, header, claims map[string]any, secret []byte) string {
	input := b64json(t, header) + "." + b64json(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerifyTokenRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token func(e *env) string
		want  string
	}{
		{"empty", func(e *env) string { return "" }, "no token"},
		{"garbage", func(e *env) string { return "not a token" }, "malformed token"},
		{"two segments", func(e *env) string {
			tok := e.issue(identity.IssueRequest{}).Token
			return tok[:strings.LastIndexByte(tok, '.')]
		}, "malformed token"},
		{"four segments", func(e *env) string { return e.issue(identity.IssueRequest{}).Token + ".AAAA" }, "malformed token"},
		{"trailing newline", func(e *env) string { return e.issue(identity.IssueRequest{}).Token + "\n" }, "malformed token"},
		{"padded segment", func(e *env) string { return e.issue(identity.IssueRequest{}).Token + "==" }, "malformed token"},
		{"non-canonical signature encoding", func(e *env) string {
			return nonCanonical(e.issue(identity.IssueRequest{}).Token)
		}, "malformed token"},
		{"non-canonical payload encoding", func(e *env) string {
			parts := strings.Split(e.issue(identity.IssueRequest{}).Token, ".")
			parts[1] = nonCanonical(parts[1])
			return strings.Join(parts, ".")
		}, ""},
		{"too large", func(e *env) string {
			return e.mint(nil, with(e.claims(), "scope", strings.Repeat("a", 5000)))
		}, "token too large"},
		{"alg none", func(e *env) string {
			kid, _ := e.signingKey()
			return b64json(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}) + "." + b64json(t, e.claims()) + "."
		}, "token algorithm not accepted"},
		{"alg None", func(e *env) string {
			kid, _ := e.signingKey()
			return b64json(t, map[string]any{"alg": "None", "kid": kid}) + "." + b64json(t, e.claims()) + "."
		}, "token algorithm not accepted"},
		{"HS256 keyed with the raw public key", func(e *env) string {
			kid, priv := e.signingKey()
			return hs256(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, e.claims(), priv.Public().(ed25519.PublicKey))
		}, "token algorithm not accepted"},
		{"HS256 keyed with the published JWKS", func(e *env) string {
			kid, _ := e.signingKey()
			return hs256(t, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, e.claims(), e.svc.JWKS())
		}, "token algorithm not accepted"},
		{"RS256 header", func(e *env) string {
			kid, priv := e.signingKey()
			return signEd25519(t, priv, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": kid}, e.claims())
		}, "token algorithm not accepted"},
		{"no typ", func(e *env) string {
			kid, _ := e.signingKey()
			return e.mint(map[string]any{"alg": "EdDSA", "kid": kid}, e.claims())
		}, "not an access token"},
		{"id token typ", func(e *env) string {
			kid, _ := e.signingKey()
			return e.mint(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}, e.claims())
		}, "not an access token"},
		{"critical header extension", func(e *env) string {
			kid, _ := e.signingKey()
			return e.mint(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "crit": []string{"x-ext"}, "x-ext": 1}, e.claims())
		}, "critical header"},
		{"tampered payload", func(e *env) string {
			parts := strings.Split(e.issue(identity.IssueRequest{}).Token, ".")
			parts[1] = b64json(t, with(decodeSegment(t, strings.Join(parts, "."), 1), "scope", "admin"))
			return strings.Join(parts, ".")
		}, "token signature invalid"},
		{"tampered header", func(e *env) string {
			parts := strings.Split(e.issue(identity.IssueRequest{}).Token, ".")
			parts[0] = b64json(t, with(decodeSegment(t, strings.Join(parts, "."), 0), "typ", "application/at+jwt"))
			return strings.Join(parts, ".")
		}, "token signature invalid"},
		{"truncated signature", func(e *env) string {
			parts := strings.Split(e.issue(identity.IssueRequest{}).Token, ".")
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			parts[2] = base64.RawURLEncoding.EncodeToString(sig[:len(sig)-1])
			return strings.Join(parts, ".")
		}, "token signature invalid"},
		{"unknown kid", func(e *env) string {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			return signEd25519(t, priv, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "key_unknown"}, e.claims())
		}, "token signed by an unknown key"},
		{"key not in the keyring, with a known kid", func(e *env) string {
			kid, _ := e.signingKey()
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			return signEd25519(t, priv, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}, e.claims())
		}, "token signature invalid"},
		{"wrong issuer", func(e *env) string { return e.mint(nil, with(e.claims(), "iss", "https://evil.example")) }, "wrong issuer"},
		{"issued by a replica configured for another issuer", func(e *env) string {
			other := e.replica(func(c *identity.Config) { c.Issuer = "https://other.example" })
			iss, err := other.Issue(ctx, e.agent, identity.IssueRequest{})
			if err != nil {
				t.Fatal(err)
			}
			return iss.Token
		}, "wrong issuer"},
		{"other audience", func(e *env) string { return e.mint(nil, with(e.claims(), "aud", "https://other.example")) }, "wrong audience"},
		{"other audiences", func(e *env) string {
			return e.mint(nil, with(e.claims(), "aud", []string{"https://a.example", "https://b.example"}))
		}, "wrong audience"},
		{"expired", func(e *env) string {
			tok := e.issue(identity.IssueRequest{}).Token
			e.clock.Advance(10*time.Minute + 30*time.Second)
			return tok
		}, "token expired"},
		{"nbf in the future", func(e *env) string {
			return e.mint(nil, with(e.claims(), "nbf", e.clock.Now().Add(2*time.Minute).Unix()))
		}, "token not yet valid"},
		{"iat in the future", func(e *env) string {
			return e.mint(nil, with(e.claims(), "iat", e.clock.Now().Add(2*time.Minute).Unix()))
		}, "token issued in the future"},
		{"lifetime over the maximum", func(e *env) string {
			return e.mint(nil, with(e.claims(), "exp", e.clock.Now().Add(2*time.Hour).Unix()))
		}, "lifetime exceeds the maximum"},
		{"no exp", func(e *env) string { return e.mint(nil, with(e.claims(), "exp", nil)) }, "lacks exp"},
		{"exp as a string", func(e *env) string { return e.mint(nil, with(e.claims(), "exp", "tomorrow")) }, "malformed token claims"},
		{"no jti", func(e *env) string { return e.mint(nil, with(e.claims(), "jti", nil)) }, "lacks jti"},
		{"no client_id", func(e *env) string { return e.mint(nil, with(e.claims(), "client_id", nil)) }, "lacks jti"},
		{"sub names another agent", func(e *env) string {
			return e.mint(nil, with(e.claims(), "sub", "agt_someoneelse"))
		}, "subject does not match"},
		{"act names another agent", func(e *env) string {
			return e.mint(nil, with(e.claims(), "sub", "alice", "act", map[string]any{"sub": "agt_someoneelse"}))
		}, "subject does not match"},
		{"payload is not an object", func(e *env) string {
			kid, priv := e.signingKey()
			input := b64json(t, map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}) + "." + base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`))
			return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(input)))
		}, "malformed token claims"},
		{"unknown agent", func(e *env) string {
			return e.mint(nil, with(e.claims(), "sub", "agt_nobody", "client_id", "agt_nobody"))
		}, "agent not found"},
		{"epoch newer than this replica knows", func(e *env) string {
			return e.mint(nil, with(e.claims(), "epoch", e.agent.Epoch+1))
		}, "epoch this server has not seen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tok := tt.token(e)
			c, err := e.svc.VerifyToken(ctx, tok)
			if tt.want == "" {
				// A lenient decoder maps this change onto the same bytes; whatever the
				// refusal, the altered string must not verify.
				if err == nil {
					t.Fatalf("accepted an altered token: %+v", c)
				}
				return
			}
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
			if strings.Contains(err.Error(), tok) && tok != "" {
				t.Fatal("the error repeats the token")
			}
		})
	}
}

// TestVerifyTokenAccepts keeps the refusals above honest: the same helpers make tokens that pass.
func TestVerifyTokenAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token func(e *env) string
	}{
		{"minted with valid claims", func(e *env) string { return e.mint(nil, e.claims()) }},
		{"audience in an array", func(e *env) string {
			return e.mint(nil, with(e.claims(), "aud", []string{"https://a.example", testIssuer}))
		}},
		{"typ with media type prefix", func(e *env) string {
			kid, _ := e.signingKey()
			return e.mint(map[string]any{"alg": "EdDSA", "typ": "application/at+jwt", "kid": kid}, e.claims())
		}},
		{"expired within the clock skew", func(e *env) string {
			tok := e.issue(identity.IssueRequest{}).Token
			e.clock.Advance(10*time.Minute + 29*time.Second)
			return tok
		}},
		{"nbf within the clock skew", func(e *env) string {
			return e.mint(nil, with(e.claims(), "nbf", e.clock.Now().Add(20*time.Second).Unix()))
		}},
		{"acting for a person", func(e *env) string {
			return e.mint(nil, with(e.claims(), "sub", "alice", "act", map[string]any{"sub": e.agent.ID}))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if _, err := e.svc.VerifyToken(ctx, tt.token(e)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestVerifyTokenRefusesAfterChange covers what can change after a token was issued. Each
// change is checked on the replica that made it (which has the token cached) and on a replica
// that starts afterwards (which reads the store and checks the signature afresh).
func TestVerifyTokenRefusesAfterChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(e *env, token string)
		want   string
	}{
		{"revoked", func(e *env, token string) {
			if c, err := e.svc.Revoke(ctx, token, ""); err != nil || c == nil {
				t.Fatalf("Revoke = %v, %v", c, err)
			}
		}, "token revoked"},
		{"agent suspended", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.Status = warden.AgentSuspended; a.Epoch++ })
		}, "agent is suspended"},
		{"agent suspended without an epoch raise", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.Status = warden.AgentSuspended })
		}, "agent is suspended"},
		{"agent killed", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.Status = warden.AgentKilled; a.Epoch++ })
		}, "agent is killed"},
		{"secret rotated: older epoch", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.Epoch++ })
		}, "token from an older epoch"},
		{"suspended then resumed: older epoch", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.Status = warden.AgentSuspended; a.Epoch++ })
			e.clock.Advance(time.Second)
			e.update(func(a *warden.Agent) { a.Status = warden.AgentActive })
		}, "token from an older epoch"},
		{"agent identity expired", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.ExpiresAt = e.clock.Now().Add(-time.Second) })
		}, "agent identity expired; renew it"},
		{"agent identity ran out", func(e *env, _ string) {
			e.update(func(a *warden.Agent) { a.ExpiresAt = e.clock.Now().Add(time.Minute) })
			e.clock.Advance(time.Minute)
		}, "agent identity expired; renew it"},
		{"token expired", func(e *env, _ string) {
			e.clock.Advance(10*time.Minute + 30*time.Second)
		}, "token expired"},
		{"agent deleted", func(e *env, _ string) {
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
			for range 2 { // miss, then hit
				if _, err := e.svc.VerifyToken(ctx, token); err != nil {
					t.Fatal(err)
				}
			}
			tt.change(e, token)
			_, err := e.svc.VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
			_, err = e.replica().VerifyToken(ctx, token)
			wantRefused(t, err, warden.EUnauthenticated, tt.want)
		})
	}
}

// TestCacheHitChecksAgentState proves that the second verification is served from the cache
// and that the cache does not skip the agent's status.
func TestCacheHitChecksAgentState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.issue(identity.IssueRequest{}).Token
	if _, err := e.svc.VerifyToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	if st := e.svc.CacheStats(); st.Misses != 1 || st.Hits != 0 || st.Entries != 1 {
		t.Fatalf("after the first check: %+v", st)
	}
	e.update(func(a *warden.Agent) { a.Status = warden.AgentSuspended })
	_, err := e.svc.VerifyToken(ctx, token)
	wantRefused(t, err, warden.EUnauthenticated, "agent is suspended")
	if st := e.svc.CacheStats(); st.Misses != 1 || st.Hits != 1 {
		t.Fatalf("the refusal did not come from a cache hit: %+v", st)
	}
	// And the hit path gives the token back once the agent may act again.
	e.update(func(a *warden.Agent) { a.Status = warden.AgentActive })
	if _, err := e.svc.VerifyToken(ctx, token); err != nil {
		t.Fatal(err)
	}
	if st := e.svc.CacheStats(); st.Misses != 1 || st.Hits != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestVerifiedClaimsAreCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.issue(identity.IssueRequest{}).Token
	c, err := e.svc.VerifyToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	c.ClientID, c.Audience[0], c.Epoch = "agt_other", "changed", 99
	again, err := e.svc.VerifyToken(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if again.ClientID != e.agent.ID || again.Audience[0] != testIssuer || again.Epoch != e.agent.Epoch {
		t.Fatalf("a caller's change reached the cache: %+v", again)
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *identity.Config) { c.CacheSize = 64 })
	for range 500 {
		if _, err := e.svc.VerifyToken(ctx, e.issue(identity.IssueRequest{}).Token); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.svc.CacheStats().Entries; n > 64 || n == 0 {
		t.Fatalf("cache holds %d entries, want 1..64", n)
	}
	e.clock.Advance(time.Hour)
	if err := e.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.svc.CacheStats().Entries; n != 0 {
		t.Fatalf("after expiry the cache holds %d entries", n)
	}
}

func TestObserveAgentIgnoresOlderState(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.issue(identity.IssueRequest{}).Token
	stale := *e.agent
	e.update(func(a *warden.Agent) { a.Status = warden.AgentKilled; a.Epoch++ })
	e.svc.ObserveAgent(&stale) // a late call from a slower writer
	_, err := e.svc.VerifyToken(ctx, token)
	wantRefused(t, err, warden.EUnauthenticated, "agent is killed")
}

func TestJWKSFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(e.svc.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	kid, priv := e.signingKey()
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys", len(set.Keys))
	}
	k := set.Keys[0]
	x := base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	if k["kid"] != kid || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["x"] != x {
		t.Fatalf("jwk = %v", k)
	}
	if _, ok := k["d"]; ok {
		t.Fatal("the JWKS holds the private key")
	}
	var parsed jose.JSONWebKeySet
	if err := json.Unmarshal(e.svc.JWKS(), &parsed); err != nil || !parsed.Keys[0].IsPublic() {
		t.Fatalf("go-jose reads %v, %v", parsed, err)
	}
}

// Warden's own tokens carry exactly the header VerifyToken recognises whole; if the signer's
// output changed, verification would still be correct, only slower, and this test says so.
func TestIssuedHeaderIsRecognised(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	token := e.issue(identity.IssueRequest{}).Token
	seg, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatal(err)
	}
	if want := identity.EncodedHeader(hdr.Kid); seg != want {
		t.Fatalf("issued header %s (%s), want %s", seg, raw, want)
	}
}

// TestClockSkewZeroIsZero pins issue 12 #13: tokens.clock_skew 0s was replaced by 30s, so a
// token lived half a minute past its exp. Zero leeway refuses a token one second past exp,
// whether the token is in the cache or verified afresh.
func TestClockSkewZeroIsZero(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		skew     time.Duration
		past     time.Duration // how long after exp the token is presented
		accepted bool
	}{
		{"zero skew, one second past exp", 0, time.Second, false},
		{"zero skew, at exp", 0, 0, false},
		{"zero skew, one second before exp", 0, -time.Second, true},
		{"default skew, one second past exp", testClockSkew, time.Second, true},
		{"default skew, past the skew", testClockSkew, testClockSkew, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *identity.Config) { c.ClockSkew = tt.skew })
			iss := e.issue(identity.IssueRequest{})
			if _, err := e.svc.VerifyToken(ctx, iss.Token); err != nil { // now in the cache
				t.Fatal(err)
			}
			e.clock.Advance(iss.Claims.ExpiresAt.Sub(e.clock.Now()) + tt.past)
			for name, svc := range map[string]*identity.Service{"cached": e.svc, "fresh replica": e.replica()} {
				_, err := svc.VerifyToken(ctx, iss.Token)
				if tt.accepted && err != nil {
					t.Fatalf("%s: refused: %v", name, err)
				}
				if !tt.accepted {
					wantRefused(t, err, warden.EUnauthenticated, "expired")
				}
			}
		})
	}
}
