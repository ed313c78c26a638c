package identity_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// testIdP is a person's identity provider: it signs ID tokens and publishes its JWKS.
type testIdP struct {
	t      testing.TB
	issuer string
	alg    jose.SignatureAlgorithm
	keys   map[string]crypto.Signer // by kid
	public []jose.JSONWebKey
}

func newIdP(t testing.TB, issuer string, alg jose.SignatureAlgorithm) *testIdP {
	p := &testIdP{t: t, issuer: issuer, alg: alg, keys: map[string]crypto.Signer{}}
	p.addKey("idp-key-1")
	return p
}

func (p *testIdP) addKey(kid string) {
	var k crypto.Signer
	var err error
	switch p.alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case jose.RS256:
		k = pooledRSAKey()
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.keys[kid] = k
	p.public = append(p.public, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(p.alg), Use: "sig"})
}

// rsaPool hands out a few 2048-bit keys in turn: generating one per IdP would make the tests
// slow, and no test needs more than six different keys at once.
var (
	rsaPoolOnce sync.Once
	rsaPool     [6]*rsa.PrivateKey
	rsaNext     atomic.Int32
)

func pooledRSAKey() *rsa.PrivateKey {
	rsaPoolOnce.Do(func() {
		for i := range rsaPool {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaPool[i] = k
		}
	})
	return rsaPool[int(rsaNext.Add(1))%len(rsaPool)]
}

func (p *testIdP) jwks() []byte {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: p.public})
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func (p *testIdP) writeJWKS(dir string) string {
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, p.jwks(), 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func (p *testIdP) serve() (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(p.jwks())
	}))
	p.t.Cleanup(srv.Close)
	return srv, &hits
}

// sign makes a token with the named key; claims override the defaults of a valid ID token.
func (p *testIdP) sign(kid string, now time.Time, overrides map[string]any) string {
	claims := map[string]any{
		"iss": p.issuer, "sub": "alice@example.com", "aud": "warden",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	for k, v := range overrides {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: p.alg, Key: jose.JSONWebKey{Key: p.keys[kid], KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

func TestVerifySubjectToken(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256} {
		for _, source := range []string{"file", "url"} {
			t.Run(string(alg)+"/"+source, func(t *testing.T) {
				idp := newIdP(t, "https://idp.example", alg)
				ti := identity.TrustedIssuer{Issuer: idp.issuer, Audience: "warden"}
				if source == "file" {
					ti.JWKSFile = idp.writeJWKS(t.TempDir())
				} else {
					srv, _ := idp.serve()
					ti.JWKSURL = srv.URL + "/jwks"
				}
				e := newEnv(t, func(c *identity.Config) { c.TrustedIssuers = []identity.TrustedIssuer{ti} })
				now := e.clock.Now()
				stranger := newIdP(t, "https://stranger.example", alg)
				impostor := newIdP(t, idp.issuer, alg) // same issuer name and kid, other key

				good := idp.sign("idp-key-1", now, nil)
				sub, iss, err := e.svc.VerifySubjectToken(ctx, good)
				if err != nil {
					t.Fatal(err)
				}
				if sub != "alice@example.com" || iss != idp.issuer {
					t.Fatalf("got %q %q", sub, iss)
				}

				refusals := []struct {
					name, token, want string
				}{
					{"unknown issuer", stranger.sign("idp-key-1", now, nil), "issuer is not trusted"},
					{"expired", idp.sign("idp-key-1", now, map[string]any{"exp": now.Add(-time.Minute).Unix()}), "subject token expired"},
					{"not yet valid", idp.sign("idp-key-1", now, map[string]any{"nbf": now.Add(time.Hour).Unix()}), "not yet valid"},
					{"no expiry", idp.sign("idp-key-1", now, map[string]any{"exp": nil}), "no expiry"},
					{"wrong audience", idp.sign("idp-key-1", now, map[string]any{"aud": "someone-else"}), "wrong audience"},
					{"no subject", idp.sign("idp-key-1", now, map[string]any{"sub": nil}), "no usable subject"},
					{"subject with a newline", idp.sign("idp-key-1", now, map[string]any{"sub": "alice\nadmin"}), "no usable subject"},
					{"bad signature", impostor.sign("idp-key-1", now, nil), "signature invalid"},
					{"tampered payload", tamper(t, good), "signature invalid"},
					{"unknown kid", func() string {
						idp2 := newIdP(t, idp.issuer, alg)
						idp2.addKey("idp-key-9")
						return idp2.sign("idp-key-9", now, nil)
					}(), "unknown key"},
					{"alg none", noneToken(t, idp.issuer, now), "algorithm not accepted"},
					{"HS256", hs256(t, map[string]any{"alg": "HS256", "kid": "idp-key-1"}, map[string]any{"iss": idp.issuer, "sub": "mallory", "exp": now.Add(time.Minute).Unix()}, idp.jwks()), "algorithm not accepted"},
					{"warden's own access token", e.issue(identity.IssueRequest{}).Token, "issuer is not trusted"},
					{"garbage", "eyJhbGciOi", "malformed"},
					{"trailing space", good + " ", "malformed"},
				}
				for _, r := range refusals {
					t.Run(r.name, func(t *testing.T) {
						sub, _, err := e.svc.VerifySubjectToken(ctx, r.token)
						if err == nil {
							t.Fatalf("accepted, subject %q", sub)
						}
						wantRefused(t, err, warden.EInvalid, r.want)
					})
				}
			})
		}
	}
}

func tamper(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	parts[1] = b64json(t, with(decodeSegment(t, token, 1), "sub", "admin@example.com"))
	return strings.Join(parts, ".")
}

func noneToken(t *testing.T, issuer string, now time.Time) string {
	return b64json(t, map[string]any{"alg": "none", "kid": "idp-key-1"}) + "." +
		b64json(t, map[string]any{"iss": issuer, "sub": "mallory", "exp": now.Add(time.Minute).Unix()}) + "."
}

// TestSubjectJWKSRefetch: a key the provider adds is fetched when a token names it, but
// unknown kids cause at most one fetch a minute.
func TestSubjectJWKSRefetch(t *testing.T) {
	idp := newIdP(t, "https://idp.example", jose.ES256)
	srv, hits := idp.serve()
	e := newEnv(t, func(c *identity.Config) {
		c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: idp.issuer, JWKSURL: srv.URL}}
	})
	now := e.clock.Now()
	if hits.Load() != 0 {
		t.Fatal("JWKS fetched before first use")
	}
	for range 3 {
		if _, _, err := e.svc.VerifySubjectToken(ctx, idp.sign("idp-key-1", now, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches for one key", n)
	}

	e.clock.Advance(2 * time.Minute)
	now = e.clock.Now()
	idp.addKey("idp-key-2")
	if _, _, err := e.svc.VerifySubjectToken(ctx, idp.sign("idp-key-2", now, nil)); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("%d fetches after a new key", n)
	}

	// A stream of tokens naming unknown keys: no more fetches within the minute.
	for range 5 {
		other := newIdP(t, idp.issuer, jose.ES256)
		other.addKey("rogue")
		_, _, err := e.svc.VerifySubjectToken(ctx, other.sign("rogue", now, nil))
		wantRefused(t, err, warden.EInvalid, "unknown key")
	}
	if n := hits.Load(); n != 2 {
		t.Fatalf("%d fetches: unknown kids are not rate limited", n)
	}
	e.clock.Advance(time.Minute)
	idp.addKey("idp-key-3")
	if _, _, err := e.svc.VerifySubjectToken(ctx, idp.sign("idp-key-3", e.clock.Now(), nil)); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectJWKSUnavailable(t *testing.T) {
	idp := newIdP(t, "https://idp.example", jose.ES256)
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write(idp.jwks())
	}))
	t.Cleanup(srv.Close)
	e := newEnv(t, func(c *identity.Config) {
		c.TrustedIssuers = []identity.TrustedIssuer{{Issuer: idp.issuer, JWKSURL: srv.URL}}
	})
	_, _, err := e.svc.VerifySubjectToken(ctx, idp.sign("idp-key-1", e.clock.Now(), nil))
	wantRefused(t, err, warden.EUnavailable, "unavailable")
	up.Store(true)
	e.clock.Advance(5 * time.Second)
	if _, _, err := e.svc.VerifySubjectToken(ctx, idp.sign("idp-key-1", e.clock.Now(), nil)); err != nil {
		t.Fatal(err)
	}
}

func TestTrustedIssuerJWKSFileChecks(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	private, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "k"}}})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	weak, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &small.PublicKey, KeyID: "k"}}})
	tests := []struct {
		name, content, want string
	}{
		{"private key", string(private), "not a public key"},
		{"not JSON", "{", "parse JWKS"},
		{"empty set", `{"keys":[]}`, "no usable signing key"},
		{"only a weak RSA key", string(weak), "no usable signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "jwks.json")
			os.WriteFile(path, []byte(tt.content), 0o600)
			cfg := identity.Config{Issuer: testIssuer, TrustedIssuers: []identity.TrustedIssuer{{Issuer: "https://idp.example", JWKSFile: path}}}
			_, err := identity.New(ctx, newFakeStore(), make([]byte, 32), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
