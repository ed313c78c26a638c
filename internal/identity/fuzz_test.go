package identity_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/seal"
)

// The fuzz targets build everything from fixed seeds. The fuzzer runs the target in several
// processes; with random keys a token valid in one would be invalid in the next, and "only the
// known valid tokens are accepted" could not be checked.

func fixedKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b + byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func newFuzzService(f *testing.F, cfg identity.Config) (*identity.Service, ed25519.PrivateKey) {
	f.Helper()
	store := newFakeStore()
	master := make([]byte, 32)
	priv := fixedKey(1)
	sealed, err := seal.Seal(master, priv.Seed(), []byte("key_fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	if err := store.CreateSigningKey(ctx, &warden.SigningKey{
		ID: "key_fuzz", Algorithm: "EdDSA", Public: priv.Public().(ed25519.PublicKey), Sealed: sealed, CreatedAt: t0,
	}); err != nil {
		f.Fatal(err)
	}
	if err := store.CreateAgent(ctx, &warden.Agent{
		ID: "agt_fuzz", Name: "fuzz", Status: warden.AgentActive, Epoch: 3, CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour),
	}); err != nil {
		f.Fatal(err)
	}
	cfg.Issuer = testIssuer
	cfg.Clock = clock.NewFake(t0)
	svc, err := identity.New(ctx, store, master, cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	return svc, priv
}

func FuzzVerifyToken(f *testing.F) {
	svc, priv := newFuzzService(f, identity.Config{})
	hdr := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "key_fuzz"}
	claims := map[string]any{
		"iss": testIssuer, "sub": "agt_fuzz", "aud": testIssuer, "exp": t0.Unix() + 600, "iat": t0.Unix(), "nbf": t0.Unix(),
		"jti": "tok_fuzz", "client_id": "agt_fuzz", "sid": "ses_fuzz", "epoch": 3,
	}
	valid := map[string]bool{}
	for _, c := range []map[string]any{
		claims,
		with(claims, "sub", "alice@example.com", "act", map[string]any{"sub": "agt_fuzz"}),
		with(claims, "aud", []string{"x", testIssuer}, "scope", "tools:read"),
	} {
		tok := signEd25519(f, priv, hdr, c)
		if _, err := svc.VerifyToken(ctx, tok); err != nil {
			f.Fatalf("seed token refused: %v", err)
		}
		valid[tok] = true
		f.Add(tok)
		// Mutations of every kind of position: header, payload, signature, separators.
		for _, i := range []int{0, 5, len(tok) / 2, strings.IndexByte(tok, '.'), strings.LastIndexByte(tok, '.'), len(tok) - 1} {
			b := []byte(tok)
			b[i] ^= 0x01
			f.Add(string(b))
		}
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
		f.Add(nonCanonical(tok))
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(b64json(f, map[string]any{"alg": "none", "kid": "key_fuzz"}) + "." + b64json(f, claims) + ".")
	f.Add(hs256(f, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": "key_fuzz"}, claims, priv.Public().(ed25519.PublicKey)))
	f.Add(signEd25519(f, fixedKey(9), hdr, claims))

	f.Fuzz(func(t *testing.T, token string) {
		c, err := svc.VerifyToken(ctx, token)
		if err == nil {
			if !valid[token] {
				t.Fatalf("accepted a token that was never signed: %q -> %+v", token, c)
			}
			return
		}
		if code := warden.ErrorCode(err); code != warden.EUnauthenticated {
			t.Fatalf("refusal with code %s: %v", code, err)
		}
	})
}

func FuzzVerifySubjectToken(f *testing.F) {
	idpKey := fixedKey(7)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: idpKey.Public(), KeyID: "idp", Algorithm: "EdDSA", Use: "sig"}}})
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		f.Fatal(err)
	}
	svc, wardenKey := newFuzzService(f, identity.Config{
		TrustedIssuers: []identity.TrustedIssuer{{Issuer: "https://idp.example", JWKSFile: path, Audience: "warden"}},
	})
	hdr := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": "idp"}
	claims := map[string]any{"iss": "https://idp.example", "sub": "alice", "aud": "warden", "exp": t0.Unix() + 300, "iat": t0.Unix()}
	valid := map[string]bool{}
	for _, tok := range []string{
		signEd25519(f, idpKey, hdr, claims),
		signEd25519(f, idpKey, hdr, with(claims, "aud", []string{"warden", "other"}, "sub", "bob")),
		signEd25519(f, idpKey, with(hdr, "kid", nil), claims), // one key fits: no kid needed
	} {
		if _, _, err := svc.VerifySubjectToken(ctx, tok); err != nil {
			f.Fatalf("seed token refused: %v", err)
		}
		valid[tok] = true
		f.Add(tok)
		for _, i := range []int{0, len(tok) / 2, len(tok) - 1} {
			b := []byte(tok)
			b[i] ^= 0x01
			f.Add(string(b))
		}
	}
	f.Add("")
	f.Add(b64json(f, map[string]any{"alg": "none"}) + "." + b64json(f, claims) + ".")
	f.Add(signEd25519(f, wardenKey, hdr, claims))

	f.Fuzz(func(t *testing.T, token string) {
		sub, _, err := svc.VerifySubjectToken(ctx, token)
		if err == nil {
			if !valid[token] {
				t.Fatalf("accepted a subject token that was never signed: %q -> %q", token, sub)
			}
			return
		}
		if code := warden.ErrorCode(err); code != warden.EInvalid {
			t.Fatalf("refusal with code %s: %v", code, err)
		}
	})
}
