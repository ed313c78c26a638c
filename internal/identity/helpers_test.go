package identity_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/seal"
)

const testIssuer = "http://127.0.0.1:8787"

// testClockSkew is warden's default leeway (config.Default), which the tests assume.
const testClockSkew = 30 * time.Second

// t0 is the test clock's start: a fixed instant keeps minted tokens byte-for-byte stable.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newClock returns the test clock (whose Now is lock-free, so that benchmarks measure the
// service, not the clock).
func newClock(t time.Time) *clock.Fake { return clock.NewFake(t) }

// env is one warden replica over a fake store, with one active agent.
type env struct {
	t      testing.TB
	store  *fakeStore
	master []byte
	clock  *clock.Fake
	cfg    identity.Config
	svc    *identity.Service
	agent  *warden.Agent
	secret string
}

func newEnv(t testing.TB, opts ...func(*identity.Config)) *env {
	t.Helper()
	e := &env{t: t, store: newFakeStore(), master: make([]byte, 32), clock: newClock(t0)}
	for i := range e.master {
		e.master[i] = byte(i)
	}
	e.cfg = identity.Config{Issuer: testIssuer, ClockSkew: testClockSkew, Clock: e.clock}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.agent, e.secret = e.addAgent("build-bot")
	e.svc = e.replica()
	return e
}

// replica starts another service on the same store, as a second warden server would.
func (e *env) replica(opts ...func(*identity.Config)) *identity.Service {
	e.t.Helper()
	cfg := e.cfg
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := identity.New(context.Background(), e.store, e.master, cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return svc
}

func (e *env) addAgent(name string) (*warden.Agent, string) {
	e.t.Helper()
	secret, hash := identity.NewSecret(identity.AgentSecretPrefix)
	now := e.clock.Now()
	a := &warden.Agent{
		ID: warden.NewID("agt_"), Name: name, Owner: "alice@example.com", Status: warden.AgentActive,
		Epoch: 1, SecretHash: hash, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
	}
	if err := e.store.CreateAgent(context.Background(), a); err != nil {
		e.t.Fatal(err)
	}
	if e.svc != nil {
		e.svc.ObserveAgent(a)
	}
	return a, secret
}

// update changes the agent in the store and tells the service, as the agent service does.
func (e *env) update(fn func(a *warden.Agent)) *warden.Agent {
	e.t.Helper()
	a, err := e.store.UpdateAgent(context.Background(), e.agent.Name, func(a *warden.Agent) error {
		fn(a)
		a.UpdatedAt = e.clock.Now()
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc.ObserveAgent(a)
	return a
}

func (e *env) issue(r identity.IssueRequest) *identity.Issued {
	e.t.Helper()
	iss, err := e.svc.Issue(context.Background(), e.agent, r)
	if err != nil {
		e.t.Fatal(err)
	}
	return iss
}

// signingKey opens the current signing key the way the service does, so tests can sign
// arbitrary tokens with a key the service trusts.
func (e *env) signingKey() (string, ed25519.PrivateKey) {
	e.t.Helper()
	keys, err := e.store.SigningKeys(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	k := keys[len(keys)-1]
	seed, err := seal.Open(e.master, k.Sealed, []byte(k.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	return k.ID, ed25519.NewKeyFromSeed(seed)
}

// claims are the claims of a valid token of the env's agent at the current time.
func (e *env) claims() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{
		"iss": testIssuer, "sub": e.agent.ID, "aud": testIssuer, "exp": now + 600, "iat": now, "nbf": now,
		"jti": "tok_test", "client_id": e.agent.ID, "sid": "ses_test", "epoch": e.agent.Epoch,
	}
}

// mint signs a token with the env's current signing key. Header and claims are given whole so a
// test can make any token it needs.
func (e *env) mint(header map[string]any, claims map[string]any) string {
	e.t.Helper()
	kid, priv := e.signingKey()
	if header == nil {
		header = map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
	}
	return signEd25519(e.t, priv, header, claims)
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func signEd25519(t testing.TB, priv ed25519.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := b64json(t, header) + "." + b64json(t, claims)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(input)))
}

// with returns a copy of m with the given changes; a nil value deletes the key.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// wantRefused fails unless err is a *warden.Error of the code whose message contains msg.
func wantRefused(t testing.TB, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s %q", code, msg)
	}
	if got := warden.ErrorCode(err); got != code {
		t.Fatalf("code = %s (%v); want %s", got, err, code)
	}
	if got := warden.ErrorMessage(err); !strings.Contains(got, msg) {
		t.Fatalf("message = %q; want it to contain %q", got, msg)
	}
}

func decodeSegment(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// badSignature returns token with one bit of its signature flipped.
func badSignature(t testing.TB, token string) string {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	sig[10] ^= 0x01
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}
