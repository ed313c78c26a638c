package warden

import (
	"context"
	"time"
)

// Events of warden as the OAuth authorization server of interactive MCP clients
// (internal/oauthas, docs/oauth.md).
const (
	EventOAuthRegister      = "oauth.register"       // a client registered itself (RFC 7591)
	EventOAuthGrant         = "oauth.grant"          // a person approved a client to act as an agent: a code was issued
	EventOAuthDeny          = "oauth.deny"           // a person denied a client, or the request was refused
	EventOAuthCodeRedeem    = "oauth.code.redeem"    // a code was exchanged for tokens, or refused
	EventOAuthRefresh       = "oauth.refresh"        // a refresh token was rotated, or refused
	EventOAuthRefreshReused = "oauth.refresh.reused" // a used refresh token came back: its whole family is revoked
)

// OAuthClient is a client that registered itself at the registration endpoint (RFC 7591): a
// public client (no secret) that sends people through the authorization code flow with PKCE.
type OAuthClient struct {
	ID           string    `json:"client_id"`
	Name         string    `json:"client_name"`
	RedirectURIs []string  `json:"redirect_uris"`
	CreatedAt    time.Time `json:"created_at"`
}

// AuthorizationCode is the one-use code of the authorization code flow, kept by its hash.
type AuthorizationCode struct {
	Hash          string // hex SHA-256 of the code
	ClientID      string
	RedirectURI   string
	AgentID       string
	Person        string // the signed-in person's email, whom the agent will act for
	Role          Role   // the person's role when they consented
	Epoch         int64  // the agent's epoch at the consent: a kill, suspension or rotation since ends the grant
	Resource      string // RFC 8707: the token's audience
	Scope         string
	CodeChallenge string // RFC 7636, S256
	ExpiresAt     time.Time
}

// RefreshToken is a refresh token of the authorization code flow, kept by its hash. Each use
// rotates it: the token is marked used and a new one of the same family issued; a used one
// presented again revokes the whole family.
type RefreshToken struct {
	Hash      string // hex SHA-256 of the token
	Family    string // every token rotated from one authorization shares it
	ClientID  string
	AgentID   string
	Person    string
	Role      Role
	Epoch     int64 // the agent's epoch at the consent: a kill, suspension or rotation since ends the family
	Resource  string
	Scope     string
	CreatedAt time.Time // this token's issue
	AuthAt    time.Time // the family's authorization: the absolute lifetime counts from it
	ExpiresAt time.Time // the absolute end of the family
	UsedAt    time.Time // when it was rotated; zero while it is the family's current token
	RevokedAt time.Time
}

// OAuthStore keeps registered clients, authorization codes and refresh tokens.
type OAuthStore interface {
	// CreateOAuthClient stores a registered client; CountOAuthClients bounds how many exist.
	CreateOAuthClient(ctx context.Context, c *OAuthClient) error
	OAuthClient(ctx context.Context, id string) (*OAuthClient, error)
	CountOAuthClients(ctx context.Context) (int, error)
	// CreateAuthorizationCode stores a code; TakeAuthorizationCode returns it and deletes it in
	// one step, so a code is redeemed at most once (ENotFound after, or after it expired at now).
	CreateAuthorizationCode(ctx context.Context, c *AuthorizationCode) error
	TakeAuthorizationCode(ctx context.Context, hash string, now time.Time) (*AuthorizationCode, error)
	// CreateRefreshToken stores a refresh token.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// UseRefreshToken marks the token used at now and returns it as it was. reused is true, and
	// nothing changes, when it was already used or revoked. ENotFound when no such token exists.
	UseRefreshToken(ctx context.Context, hash string, now time.Time) (t *RefreshToken, reused bool, err error)
	// RevokeRefreshFamily revokes every token of a family and returns how many were live.
	RevokeRefreshFamily(ctx context.Context, family string, now time.Time) (int, error)
	// PruneOAuth deletes codes and refresh tokens that expired before t.
	PruneOAuth(ctx context.Context, before time.Time) (int, error)
}
