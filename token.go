package warden

import (
	"context"
	"time"
)

// Claims are the claims of a warden access token (a JWT signed with EdDSA, RFC 9068 profile).
//
// For an agent acting as itself, Subject is the agent's ID. For an agent acting for a person
// (RFC 8693 token exchange), Subject is the person and Actor names the agent. A token from the
// authorization code flow (an interactive MCP client, internal/oauthas) names the agent as
// Subject and the person who consented in Person ("obo"). Either way the agent stays the
// principal that policy judges and OnBehalfOf returns the person.
type Claims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  []string  `json:"aud"`
	ExpiresAt time.Time `json:"exp"`
	IssuedAt  time.Time `json:"iat"`
	NotBefore time.Time `json:"nbf"`
	ID        string    `json:"jti"`
	ClientID  string    `json:"client_id"` // the agent's ID
	SessionID string    `json:"sid"`
	Epoch     int64     `json:"epoch"`
	Scope     string    `json:"scope,omitempty"`
	Actor     *Actor    `json:"act,omitempty"`
	Person    string    `json:"obo,omitempty"` // the person an agent acts for, when Subject is the agent
}

// Actor is the RFC 8693 "act" claim: the party acting for the subject.
type Actor struct {
	Subject string `json:"sub"`
}

// AgentID returns the ID of the agent that holds the token.
func (c *Claims) AgentID() string { return c.ClientID }

// OnBehalfOf returns the person the agent acts for, or "" when it acts as itself.
func (c *Claims) OnBehalfOf() string {
	if c.Actor != nil {
		return c.Subject
	}
	return c.Person
}

// TokenVerifier checks an access token at an enforcement point: signature, expiry, audience,
// issuer, revocation, and the agent's current status and epoch. Any failure is EUnauthenticated.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (*Claims, error)
}

// SigningKey is a key that signs access tokens. The private half is stored encrypted under the
// master key; Public is the raw Ed25519 public key.
type SigningKey struct {
	ID        string    `json:"kid"`
	Algorithm string    `json:"alg"`
	Public    []byte    `json:"-"`
	Sealed    []byte    `json:"-"` // the private key, AES-256-GCM under the master key
	CreatedAt time.Time `json:"created_at"`
	// RetiredAt is when a newer key took over signing. A retired key keeps verifying until the
	// last token it signed has expired.
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

// KeyStore keeps token signing keys.
type KeyStore interface {
	// CreateSigningKey stores a new key and retires every key that was signing, in one transaction.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// SigningKeys lists every key, oldest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// DeleteSigningKeysRetiredBefore removes keys retired before t; they verify nothing any more.
	DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error)
}

// RevokedToken records one access token revoked before its expiry (RFC 7009).
type RevokedToken struct {
	ID        string    `json:"jti"`
	AgentID   string    `json:"agent_id"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at"`
}

// RevocationStore keeps revoked token IDs until the tokens would have expired anyway.
type RevocationStore interface {
	// RevokeToken records a revocation; revoking twice is not an error.
	RevokeToken(ctx context.Context, r *RevokedToken) error
	// RevokedTokens lists revocations of tokens that expire after t.
	RevokedTokens(ctx context.Context, after time.Time) ([]*RevokedToken, error)
	// PruneRevokedTokens forgets revocations of tokens that expired before t.
	PruneRevokedTokens(ctx context.Context, before time.Time) (int, error)
}

// MaxSessionID bounds a session id: a token's sid, the Warden-Session header, the decision
// API's session.
const MaxSessionID = 128

// ValidSessionID reports whether s may name a session: 1 to MaxSessionID printable ASCII
// characters without spaces. The same rule holds for a token's requested sid and for the
// sessions an agent names at the gateway, so that one id means one session everywhere.
func ValidSessionID(s string) bool {
	if s == "" || len(s) > MaxSessionID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
