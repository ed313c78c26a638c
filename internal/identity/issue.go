package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/wardenhq/warden"
)

// tokenType is the JWT typ of an access token (RFC 9068), so that no other JWT signed by the
// same key (there is none today) could ever pass as one.
const tokenType = "at+jwt"

// IssueRequest is what an agent asks for at the token endpoint.
type IssueRequest struct {
	// Scope is the space-separated OAuth scope, copied into the token.
	Scope string
	// SessionID is the session the client asks for; empty means a new session. The token's
	// sid is warden's, bound to the agent and the person it acts for (session.go): this is
	// that sid when the agent was given it for the same person, else one derived from it.
	SessionID string
	// TTL is the token's lifetime; zero means Config.TokenTTL. It is capped at Config.MaxTokenTTL
	// and at the end of the agent's identity.
	TTL time.Duration
	// OnBehalfOf is the person the agent acts for, the subject of a token exchange (as returned by
	// VerifySubjectToken). The token's sub is then the person and act.sub the agent.
	OnBehalfOf string
	// Person is the person the agent acts for in the authorization code flow of an interactive
	// MCP client (internal/oauthas): sub stays the agent and the person is the "obo" claim.
	// Exclusive with OnBehalfOf.
	Person string
	// Resource (RFC 8707) replaces Config.Audience as the token's audience: warden's /mcp or
	// /mcp/<tool> under the issuer, the one endpoint the token is for (MCPResource).
	Resource string
}

// Issued is a newly issued access token.
type Issued struct {
	Token     string
	Claims    *warden.Claims
	ExpiresIn int64 // seconds, for the token response's expires_in
}

// tokenClaims is the wire form of warden.Claims: JWT dates are seconds since the epoch
// (NumericDate), and aud may be a string or an array.
type tokenClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	SessionID string           `json:"sid"`
	Epoch     int64            `json:"epoch"`
	Scope     string           `json:"scope,omitempty"`
	Actor     *warden.Actor    `json:"act,omitempty"`
	Person    string           `json:"obo,omitempty"`
}

// Issue signs an access token for agent a, which the caller has just authenticated. The token
// carries the agent's current epoch, so any later suspend, kill or secret rotation kills it.
func (s *Service) Issue(ctx context.Context, a *warden.Agent, r IssueRequest) (*Issued, error) {
	if a == nil || a.ID == "" {
		return nil, errors.New("identity: issue: no agent")
	}
	now := s.cfg.Clock.Now()
	if err := refusal(a, now); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	kr := s.keys.Load()
	if kr.signer == nil {
		return nil, warden.Errorf(warden.EUnavailable, "no signing key: an admin must rotate the signing keys")
	}

	ttl := r.TTL
	if ttl == 0 {
		ttl = s.cfg.TokenTTL
	}
	ttl = min(ttl, s.cfg.MaxTokenTTL)
	// JWT dates are whole seconds; truncating here makes the returned claims equal what
	// VerifyToken will later return.
	iat := now.Truncate(time.Second).UTC()
	exp := iat.Add(ttl.Truncate(time.Second))
	if !a.ExpiresAt.IsZero() && a.ExpiresAt.Before(exp) {
		exp = a.ExpiresAt.Truncate(time.Second).UTC()
	}
	if !exp.After(iat) {
		return nil, unauthenticated("agent identity expired; renew it", nil)
	}

	aud := s.cfg.Audience
	if r.Resource != "" {
		if !MCPResource(s.cfg.Issuer, r.Resource) {
			return nil, warden.Errorf(warden.EInvalid, "resource must be this server's /mcp or /mcp/<tool>")
		}
		aud = r.Resource
	}
	person := r.OnBehalfOf
	if r.Person != "" {
		person = r.Person
	}
	c := &warden.Claims{
		Issuer:    s.cfg.Issuer,
		Subject:   a.ID,
		Audience:  []string{aud},
		ExpiresAt: exp,
		IssuedAt:  iat,
		NotBefore: iat,
		ID:        warden.NewID("tok_"),
		ClientID:  a.ID,
		SessionID: sessionFor(a.ID, person, r.SessionID),
		Epoch:     a.Epoch,
		Scope:     r.Scope,
		Person:    r.Person,
	}
	if r.OnBehalfOf != "" {
		c.Subject = r.OnBehalfOf
		c.Actor = &warden.Actor{Subject: a.ID}
	}
	token, err := jwt.Signed(kr.signer).Claims(wireClaims(c)).Serialize()
	if err != nil {
		return nil, fmt.Errorf("identity: sign token: %w", err)
	}
	return &Issued{Token: token, Claims: cloneClaims(c), ExpiresIn: exp.Unix() - now.Unix()}, nil
}

const (
	maxSubjectLen    = 255
	maxScopeLen      = 1024
	maxPrintableRune = 0x7e
)

func (r IssueRequest) validate() error {
	if r.TTL < 0 {
		return warden.Errorf(warden.EInvalid, "token lifetime must be positive")
	}
	if len(r.Scope) > maxScopeLen || !ValidScope(r.Scope) {
		return warden.Errorf(warden.EInvalid, "invalid scope: use space-separated printable ASCII tokens without quotes or backslashes")
	}
	if r.SessionID != "" && !warden.ValidSessionID(r.SessionID) {
		return warden.Errorf(warden.EInvalid, "invalid session id: use up to %d printable ASCII characters without spaces", warden.MaxSessionID)
	}
	if len(r.OnBehalfOf) > maxSubjectLen || !visibleASCIIOrUTF8(r.OnBehalfOf) {
		return warden.Errorf(warden.EInvalid, "invalid subject to act for")
	}
	if len(r.Person) > maxSubjectLen || !visibleASCIIOrUTF8(r.Person) || r.Person != "" && r.OnBehalfOf != "" {
		return warden.Errorf(warden.EInvalid, "invalid person to act for")
	}
	return nil
}

// ValidScope reports whether scope is empty or space-separated scope tokens as RFC 6749
// section 3.3 defines them: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
func ValidScope(scope string) bool {
	if scope == "" {
		return true
	}
	for tok := range strings.SplitSeq(scope, " ") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c < 0x21 || c > maxPrintableRune || c == '"' || c == '\\' {
				return false
			}
		}
	}
	return true
}

// visibleASCIIOrUTF8 admits what an identity provider may put in sub (an email address, a
// name in any script) but no control characters, which could forge lines in logs.
func visibleASCIIOrUTF8(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func wireClaims(c *warden.Claims) *tokenClaims {
	return &tokenClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  jwt.Audience(c.Audience),
		ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		NotBefore: jwt.NewNumericDate(c.NotBefore),
		ID:        c.ID,
		ClientID:  c.ClientID,
		SessionID: c.SessionID,
		Epoch:     c.Epoch,
		Scope:     c.Scope,
		Actor:     c.Actor,
		Person:    c.Person,
	}
}

// cloneClaims gives each caller its own copy, so no caller can change what the cache holds.
// The copy and what it points to share one allocation: this runs on every verification.
func cloneClaims(c *warden.Claims) *warden.Claims {
	box := &struct {
		claims warden.Claims
		actor  warden.Actor
		aud    [1]string
	}{claims: *c}
	if len(c.Audience) == 1 {
		box.aud[0] = c.Audience[0]
		box.claims.Audience = box.aud[:]
	} else {
		box.claims.Audience = append([]string(nil), c.Audience...)
	}
	if c.Actor != nil {
		box.actor = *c.Actor
		box.claims.Actor = &box.actor
	}
	return &box.claims
}

// MCPResource reports whether resource names one of warden's MCP endpoints under issuer:
// issuer/mcp or issuer/mcp/<tool>. Such a token is good at that endpoint only
// (gateway.Pipeline.Authenticate holds it).
func MCPResource(issuer, resource string) bool {
	rest, ok := strings.CutPrefix(resource, strings.TrimRight(issuer, "/")+"/mcp")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	name, ok := strings.CutPrefix(rest, "/")
	return ok && warden.ValidateName("tool", name) == nil
}
