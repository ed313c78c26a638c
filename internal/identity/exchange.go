package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/wardenhq/warden"
)

// subjectAlgorithms are the algorithms accepted in a person's token: what identity providers
// use, and nothing symmetric (a shared secret would let the verifier mint tokens too).
var subjectAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

const (
	maxSubjectTokenLen = 16 << 10
	maxJWKSSize        = 1 << 20
	minRSABits         = 2048
	// jwksRefetchInterval limits fetches caused by tokens naming unknown keys: anyone can send
	// such a token, and each must not cost a request to the identity provider.
	jwksRefetchInterval = time.Minute
	// jwksRetryInterval spaces out attempts while no key has been fetched yet, so token exchange
	// comes back soon after the provider does.
	jwksRetryInterval = 5 * time.Second
	// jwksMaxAge makes a key the provider withdrew stop verifying within the hour.
	jwksMaxAge = time.Hour
)

// subjectIssuer holds the keys of one trusted issuer.
type subjectIssuer struct {
	cfg    TrustedIssuer
	client *http.Client
	log    *slog.Logger

	mu          sync.Mutex // held across a fetch so that concurrent misses fetch once
	keys        []jose.JSONWebKey
	fetchedAt   time.Time
	lastAttempt time.Time
}

func loadTrustedIssuers(list []TrustedIssuer, timeout time.Duration, log *slog.Logger) (map[string]*subjectIssuer, error) {
	out := make(map[string]*subjectIssuer, len(list))
	for _, ti := range list {
		si := &subjectIssuer{cfg: ti, log: log.With("issuer", ti.Issuer)}
		if ti.JWKSFile != "" {
			b, err := os.ReadFile(ti.JWKSFile)
			if err != nil {
				return nil, fmt.Errorf("identity: trusted issuer %q: %w", ti.Issuer, err)
			}
			if si.keys, err = parseJWKS(b); err != nil {
				return nil, fmt.Errorf("identity: trusted issuer %q: %s: %w", ti.Issuer, ti.JWKSFile, err)
			}
		} else {
			si.client = &http.Client{
				Timeout: timeout,
				// A redirect could lead from https to plain http, or to a host the operator
				// never named.
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
		}
		out[ti.Issuer] = si
	}
	return out, nil
}

// parseJWKS keeps the keys usable for signatures. A private key in the set is an error: the
// operator has published, or is about to publish, the provider's signing key.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("JWKS key %q is not a public key: give the public JWKS only", k.KeyID)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if rk, ok := k.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return keys, nil
}

// invalidGrant is how a bad subject token is refused: the token endpoint answers invalid_grant.
func invalidGrant(message string, cause error) error {
	return &warden.Error{Code: warden.EInvalid, Message: message, Err: cause}
}

// VerifySubjectToken checks a person's JWT from a trusted issuer (the subject_token of an
// RFC 8693 token exchange) and returns its subject and issuer. Any failure is EInvalid, except
// an issuer whose keys cannot be fetched at all, which is EUnavailable.
func (s *Service) VerifySubjectToken(ctx context.Context, token string) (subject, issuer string, err error) {
	// The same strict form as warden's own tokens, so a token has one spelling only.
	if _, err := splitCompact(token, maxSubjectTokenLen); err != nil {
		return "", "", invalidGrant("malformed subject token", err)
	}
	tok, err := jwt.ParseSigned(token, subjectAlgorithms)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return "", "", invalidGrant("subject token algorithm not accepted", err)
		}
		return "", "", invalidGrant("malformed subject token", err)
	}
	if len(tok.Headers) != 1 {
		return "", "", invalidGrant("malformed subject token", nil)
	}
	// The issuer is read before the signature is checked only to choose the keys to check it with.
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return "", "", invalidGrant("malformed subject token claims", err)
	}
	si := s.issuers[unverified.Issuer]
	if si == nil {
		return "", "", invalidGrant("subject token issuer is not trusted", nil)
	}
	now := s.cfg.Clock.Now()
	hdr := tok.Headers[0]
	key, err := si.key(ctx, hdr.KeyID, jose.SignatureAlgorithm(hdr.Algorithm), now)
	if err != nil {
		return "", "", err
	}
	var c jwt.Claims
	if err := tok.Claims(key, &c); err != nil {
		return "", "", invalidGrant("subject token signature invalid", err)
	}
	if c.Expiry == nil {
		return "", "", invalidGrant("subject token has no expiry", nil)
	}
	want := jwt.Expected{Issuer: si.cfg.Issuer, Time: now}
	if si.cfg.Audience != "" {
		want.AnyAudience = jwt.Audience{si.cfg.Audience}
	}
	if err := c.ValidateWithLeeway(want, s.cfg.ClockSkew); err != nil {
		return "", "", invalidGrant(subjectClaimsMessage(err), err)
	}
	if c.Subject == "" || len(c.Subject) > maxSubjectLen || !visibleASCIIOrUTF8(c.Subject) {
		return "", "", invalidGrant("subject token has no usable subject", nil)
	}
	return c.Subject, c.Issuer, nil
}

func subjectClaimsMessage(err error) string {
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return "subject token expired"
	case errors.Is(err, jwt.ErrNotValidYet):
		return "subject token not yet valid"
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return "subject token issued in the future"
	case errors.Is(err, jwt.ErrInvalidAudience):
		return "subject token has the wrong audience"
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return "subject token issuer is not trusted"
	}
	return "subject token claims invalid"
}

// key returns the public key that must have signed a token with the given kid and alg,
// fetching the issuer's JWKS when it has none yet, when its copy is old, or (at most once a
// minute) when the kid is unknown.
func (si *subjectIssuer) key(ctx context.Context, kid string, alg jose.SignatureAlgorithm, now time.Time) (any, error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.client != nil {
		interval := jwksRefetchInterval
		if si.keys == nil {
			interval = jwksRetryInterval
		}
		stale := si.fetchedAt.IsZero() || now.Sub(si.fetchedAt) > jwksMaxAge
		if (stale || findKey(si.keys, kid, alg) == nil) && now.Sub(si.lastAttempt) >= interval {
			si.lastAttempt = now
			// Not the caller's cancellation: a client that hangs up must not leave every other
			// caller without keys until the next attempt. The client's timeout bounds the fetch.
			if err := si.fetch(context.WithoutCancel(ctx), now); err != nil {
				si.log.Warn("JWKS fetch failed; keeping the keys fetched before", "err", err, "keys", len(si.keys))
			}
		}
	}
	k := findKey(si.keys, kid, alg)
	if k == nil {
		if si.keys == nil {
			return nil, warden.Errorf(warden.EUnavailable, "the subject token issuer's keys are unavailable; try again later")
		}
		return nil, invalidGrant("subject token signed by an unknown key", nil)
	}
	return k.Key, nil
}

func (si *subjectIssuer) fetch(ctx context.Context, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, si.cfg.JWKSURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := si.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch JWKS of %q: %w", si.cfg.Issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch JWKS of %q: %s", si.cfg.Issuer, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return fmt.Errorf("fetch JWKS of %q: %w", si.cfg.Issuer, err)
	}
	if len(b) > maxJWKSSize {
		return fmt.Errorf("fetch JWKS of %q: larger than %d bytes", si.cfg.Issuer, maxJWKSSize)
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return fmt.Errorf("fetch JWKS of %q: %w", si.cfg.Issuer, err)
	}
	si.keys, si.fetchedAt = keys, now
	return nil
}

// findKey picks the key for kid whose type fits alg, so that no key is used with an algorithm
// it was not made for. A token without kid is accepted only if exactly one key fits.
func findKey(keys []jose.JSONWebKey, kid string, alg jose.SignatureAlgorithm) *jose.JSONWebKey {
	var found *jose.JSONWebKey
	for i := range keys {
		k := &keys[i]
		if kid != "" && k.KeyID != kid || !keyFits(k, alg) {
			continue
		}
		if found != nil {
			return nil
		}
		found = k
	}
	return found
}

func keyFits(k *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256
	case *ecdsa.PublicKey:
		return alg == jose.ES256 && key.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}
