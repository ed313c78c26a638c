package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/wardenhq/warden"
)

// maxTokenLen bounds the work an unauthenticated caller can cause; warden's tokens are about
// 600 bytes.
const maxTokenLen = 4096

// strictBase64 refuses non-canonical encodings (stray trailing bits). Without it a token
// could be changed into a different string that still verifies.
var strictBase64 = base64.RawURLEncoding.Strict()

// VerifyToken checks an access token at an enforcement point; it implements
// warden.TokenVerifier. The signature is checked once per token and cached by the token's
// SHA-256; expiry, revocation and the agent's status and epoch are checked on every call
// against in-memory state, so a kill takes effect on the next call. Every refusal is
// EUnauthenticated with a message that names the reason.
func (s *Service) VerifyToken(ctx context.Context, token string) (*warden.Claims, error) {
	if len(token) > maxTokenLen {
		// Before hashing: the size of the work must not be the caller's choice.
		return nil, unauthenticated("token too large", nil)
	}
	now := s.cfg.Clock.Now()
	kr := s.keys.Load()
	h := tokenHash(token)
	e := s.cache.get(h)
	if e == nil {
		var err error
		if e, err = s.verifySigned(token, kr, now); err != nil {
			return nil, err
		}
		if err := s.checkTimes(&e.claims, now); err != nil {
			return nil, err
		}
		s.cache.put(h, e, now.Add(-s.cfg.ClockSkew))
	} else {
		// A cached verification is worth no more than the key that made it.
		if err := s.checkKey(kr.verify[e.kid], now); err != nil {
			return nil, err
		}
		if err := s.checkTimes(&e.claims, now); err != nil {
			return nil, err
		}
	}
	if err := s.checkLive(&e.claims, now); err != nil {
		return nil, err
	}
	return cloneClaims(&e.claims), nil
}

// tokenHash hashes a typical token through a stack buffer: converting it to a []byte would put
// a copy of every token on the heap, on the path every call takes. The buffer is small so that
// it does not grow the stack of every request's goroutine.
func tokenHash(token string) [sha256.Size]byte {
	var buf [1024]byte
	if len(token) <= len(buf) {
		return sha256.Sum256(append(buf[:0], token...))
	}
	return sha256.Sum256([]byte(token))
}

// jwsHeader is the protected header of a warden token. Crit is kept only to refuse it: warden
// understands no extension, and RFC 7515 requires refusing a critical one not understood.
type jwsHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// verifySigned checks everything about a token that cannot change over time: its form, the
// algorithm (before any cryptography), the key, the signature, issuer, audience and the
// presence and consistency of the claims.
//
// It parses the compact JWS itself rather than through go-jose: go-jose decodes base64
// leniently and verifies over a re-encoding, which would accept altered tokens, and this is
// the path every uncached call takes.
func (s *Service) verifySigned(token string, kr *keyring, now time.Time) (*cachedToken, error) {
	seg, err := splitCompact(token, maxTokenLen)
	if err != nil {
		return nil, err
	}
	// The header warden's own signer writes is recognised as a whole; any other is parsed and
	// checked field by field.
	key := kr.headers[seg.encodedHeader]
	if key == nil {
		var hdr jwsHeader
		if err := json.Unmarshal(seg.header, &hdr); err != nil {
			return nil, unauthenticated("malformed token", err)
		}
		if hdr.Alg != algEdDSA {
			return nil, unauthenticated("token algorithm not accepted", nil)
		}
		if !strings.EqualFold(hdr.Typ, tokenType) && !strings.EqualFold(hdr.Typ, "application/"+tokenType) {
			return nil, unauthenticated("not an access token", nil)
		}
		if len(hdr.Crit) != 0 {
			return nil, unauthenticated("token has critical header extensions", nil)
		}
		key = kr.verify[hdr.Kid]
	}
	if err := s.checkKey(key, now); err != nil {
		return nil, err
	}
	if len(seg.signature) != ed25519.SignatureSize || !ed25519.Verify(key.public, seg.signingInput, seg.signature) {
		return nil, unauthenticated("token signature invalid", nil)
	}
	var wc verifiedClaims
	if err := json.Unmarshal(seg.payload, &wc); err != nil {
		return nil, unauthenticated("malformed token claims", err)
	}
	e := &cachedToken{kid: key.kid}
	if err := s.checkStatic(&wc.tokenClaims, []string(wc.Audience), &e.claims); err != nil {
		return nil, err
	}
	return e, nil
}

// verifiedClaims is how VerifyToken decodes claims: as tokenClaims, with an audience that
// decodes a single string without go-jose's second, generic JSON decoding.
type verifiedClaims struct {
	tokenClaims
	Audience audience `json:"aud"`
}

// audience is jwt.Audience, decoded faster in the common case: one string, as warden issues.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return (*jwt.Audience)(a).UnmarshalJSON(b)
}

func (s *Service) checkKey(k *verifyKey, now time.Time) error {
	switch {
	case k == nil:
		return unauthenticated("token signed by an unknown key", nil)
	case !k.verifiesAt(now, s.keyVerifyWindow()):
		return unauthenticated("token signed by a retired key", nil)
	}
	return nil
}

type compactJWS struct {
	header, payload, signature []byte
	encodedHeader              string // the first segment as sent
	signingInput               []byte // the first two segments as sent: what the signature covers
}

// splitCompact decodes a JWS in compact serialization: exactly three segments of canonical
// unpadded base64url, nothing else (no whitespace, which base64 decoders would skip). The
// decoded segments and the signing input share one allocation.
func splitCompact(token string, maxLen int) (compactJWS, error) {
	if token == "" {
		return compactJWS{}, unauthenticated("no token", nil)
	}
	if len(token) > maxLen {
		return compactJWS{}, unauthenticated("token too large", nil)
	}
	dots := 0
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return compactJWS{}, unauthenticated("malformed token", nil)
		}
	}
	if dots != 2 {
		return compactJWS{}, unauthenticated("malformed token", nil)
	}
	h, rest, _ := strings.Cut(token, ".")
	p, sig, _ := strings.Cut(rest, ".")
	// One allocation holds a copy of the token, whose first two segments are the signing input,
	// and the three decoded segments.
	buf := make([]byte, len(token)+strictBase64.DecodedLen(len(h))+strictBase64.DecodedLen(len(p))+strictBase64.DecodedLen(len(sig)))
	raw, free := buf[:len(token):len(token)], buf[len(token):]
	copy(raw, token)
	signed := len(h) + 1 + len(p)
	out := compactJWS{encodedHeader: h, signingInput: raw[:signed:signed]}
	var err error
	if out.header, free, err = decodeSegment(free, raw[:len(h)]); err != nil || len(out.header) == 0 {
		return compactJWS{}, unauthenticated("malformed token", err)
	}
	if out.payload, free, err = decodeSegment(free, raw[len(h)+1:signed]); err != nil || len(out.payload) == 0 {
		return compactJWS{}, unauthenticated("malformed token", err)
	}
	if out.signature, _, err = decodeSegment(free, raw[signed+1:]); err != nil {
		return compactJWS{}, unauthenticated("malformed token", err)
	}
	return out, nil
}

// decodeSegment decodes one segment into the front of buf and returns it and the rest of buf.
func decodeSegment(buf, seg []byte) (decoded, rest []byte, err error) {
	n, err := strictBase64.Decode(buf, seg)
	if err != nil {
		return nil, nil, err
	}
	return buf[:n:n], buf[n:], nil
}

// checkStatic turns wire claims into c if they are complete and meant for this service.
func (s *Service) checkStatic(wc *tokenClaims, aud []string, c *warden.Claims) error {
	switch {
	case wc.Issuer != s.cfg.Issuer:
		return unauthenticated("wrong issuer", nil)
	case !slices.Contains(aud, s.cfg.Audience) && !(len(aud) == 1 && MCPResource(s.cfg.Issuer, aud[0])):
		return unauthenticated("wrong audience", nil)
	case wc.ExpiresAt == nil || wc.IssuedAt == nil || wc.NotBefore == nil:
		return unauthenticated("token lacks exp, iat or nbf", nil)
	case wc.ID == "" || wc.ClientID == "" || wc.Subject == "" || wc.SessionID == "":
		return unauthenticated("token lacks jti, client_id, sub or sid", nil)
	}
	// The agent is the principal; sub may differ from it only when act names it.
	if wc.Actor == nil && wc.Subject != wc.ClientID || wc.Actor != nil && wc.Actor.Subject != wc.ClientID {
		return unauthenticated("token subject does not match its client", nil)
	}
	if wc.Actor != nil && wc.Person != "" {
		return unauthenticated("token names two people to act for", nil)
	}
	*c = warden.Claims{
		Issuer:    wc.Issuer,
		Subject:   wc.Subject,
		Audience:  aud,
		ExpiresAt: wc.ExpiresAt.Time().UTC(),
		IssuedAt:  wc.IssuedAt.Time().UTC(),
		NotBefore: wc.NotBefore.Time().UTC(),
		ID:        wc.ID,
		ClientID:  wc.ClientID,
		SessionID: wc.SessionID,
		Epoch:     wc.Epoch,
		Scope:     wc.Scope,
		Actor:     wc.Actor,
		Person:    wc.Person,
	}
	if c.ExpiresAt.Sub(c.IssuedAt) > s.cfg.MaxTokenTTL {
		return unauthenticated("token lifetime exceeds the maximum", nil)
	}
	return nil
}

// checkTimes applies exp, nbf and iat with the configured leeway for clock skew.
func (s *Service) checkTimes(c *warden.Claims, now time.Time) error {
	skew := s.cfg.ClockSkew
	switch {
	case !now.Before(c.ExpiresAt.Add(skew)):
		return unauthenticated("token expired", nil)
	case now.Add(skew).Before(c.NotBefore):
		return unauthenticated("token not yet valid", nil)
	case now.Add(skew).Before(c.IssuedAt):
		return unauthenticated("token issued in the future", nil)
	}
	return nil
}

// checkLive applies what can change after issue without changing the token: revocation and
// the agent's status, lifetime and epoch, read from this replica's snapshots.
func (s *Service) checkLive(c *warden.Claims, now time.Time) error {
	if s.revoked.Load().contains(c.ID) {
		return unauthenticated("token revoked", nil)
	}
	st, ok := s.kill.Load().Agent(c.ClientID)
	if !ok {
		return unauthenticated("agent not found", nil)
	}
	if msg := st.Refusal(now); msg != "" {
		return unauthenticated(msg, nil)
	}
	switch {
	case c.Epoch < st.Epoch:
		return unauthenticated("token from an older epoch", nil)
	case c.Epoch > st.Epoch:
		// Another replica raised the epoch and issued this token before this one refreshed:
		// refuse until it has caught up, rather than trust a state it has not seen.
		return unauthenticated("token from an epoch this server has not seen yet; retry", nil)
	}
	return nil
}
