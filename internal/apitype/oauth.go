package apitype

import "github.com/wardenhq/warden"

// TokenResponse is the RFC 6749 §5.1 (and RFC 8693 §2.2.1) success response.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	IssuedTokenType string `json:"issued_token_type,omitempty"`
	RefreshToken    string `json:"refresh_token,omitempty"` // the authorization code flow (internal/oauthas)
}

// Introspection is the RFC 7662 response.
type Introspection struct {
	Active     bool          `json:"active"`
	Scope      string        `json:"scope,omitempty"`
	ClientID   string        `json:"client_id,omitempty"`
	Username   string        `json:"username,omitempty"` // the agent's name
	TokenType  string        `json:"token_type,omitempty"`
	Exp        int64         `json:"exp,omitempty"`
	Iat        int64         `json:"iat,omitempty"`
	Nbf        int64         `json:"nbf,omitempty"`
	Sub        string        `json:"sub,omitempty"`
	Aud        []string      `json:"aud,omitempty"`
	Iss        string        `json:"iss,omitempty"`
	Jti        string        `json:"jti,omitempty"`
	Sid        string        `json:"sid,omitempty"`
	Epoch      int64         `json:"epoch,omitempty"`
	Act        *warden.Actor `json:"act,omitempty"`
	OnBehalfOf string        `json:"on_behalf_of,omitempty"`
}
