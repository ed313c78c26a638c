package warden

import (
	"context"
	"time"
)

// PersonSession is a person's signed-in session (internal/people): in a browser (a cookie) or in
// the CLI (a bearer token). The token is shown once; only its SHA-256 is stored. The role is the
// one the sign-in mapped; it holds until the session ends.
type PersonSession struct {
	Hash      []byte    `json:"-"`
	Kind      string    `json:"kind"`  // SessionBrowser or SessionCLI
	Name      string    `json:"name"`  // who signed in: the verified email, or the admin token's name (break-glass)
	Email     string    `json:"email"` // the verified email; "" for a break-glass session of a token without one
	Role      Role      `json:"role"`
	Via       string    `json:"via"` // "oidc" or "admin_token"
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Kinds of person sessions.
const (
	SessionBrowser = "browser"
	SessionCLI     = "cli"
)

// Active reports whether the session may be used at now: not revoked and not expired.
func (s *PersonSession) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Principal is the person the session names.
func (s *PersonSession) Principal() *Principal {
	return &Principal{Name: s.Name, Role: s.Role, Email: s.Email}
}

// SignInFlow is one step of a sign-in in progress (internal/people): an OIDC login waiting for
// the provider's answer, a one-time code for the CLI, a device code. It is named by the SHA-256 of
// its secret (state, code, device code, user code), holds what the next step needs, and is
// short-lived; a step that must happen once takes it (read and delete in one statement).
type SignInFlow struct {
	Hash      []byte    `json:"-"`
	Kind      string    `json:"kind"`
	Data      []byte    `json:"-"` // JSON of the people package's own type for the kind
	ExpiresAt time.Time `json:"expires_at"`
}

// PersonStore keeps people's sessions and sign-ins in progress.
type PersonStore interface {
	// CreatePersonSession stores a new session; a taken hash is EConflict. Sessions that ended
	// more than a day ago may be deleted on the way.
	CreatePersonSession(ctx context.Context, s *PersonSession) error
	// PersonSessionByHash returns the session with the given hash, ended or not (ENotFound if none).
	PersonSessionByHash(ctx context.Context, hash []byte) (*PersonSession, error)
	// RevokePersonSession ends the session at the given time (ENotFound if none); revoking again
	// keeps the first time.
	RevokePersonSession(ctx context.Context, hash []byte, at time.Time) error
	// LivePersonSessions returns the sessions of the given email that have neither expired nor
	// been revoked at now.
	LivePersonSessions(ctx context.Context, email string, now time.Time) ([]*PersonSession, error)

	// CreateSignInFlow stores a step of a sign-in; a taken hash is EConflict. Steps expired at
	// f's creation time may be deleted on the way.
	CreateSignInFlow(ctx context.Context, f *SignInFlow, now time.Time) error
	// SignInFlow returns the step of the given hash and kind unless it expired at now (ENotFound).
	SignInFlow(ctx context.Context, hash []byte, kind string, now time.Time) (*SignInFlow, error)
	// UpdateSignInFlow replaces the data of a step that has not expired at now (ENotFound).
	UpdateSignInFlow(ctx context.Context, hash []byte, kind string, data []byte, now time.Time) error
	// TakeSignInFlow deletes the step and returns it, unless it expired at now (ENotFound): of
	// two callers taking the same step, one gets it.
	TakeSignInFlow(ctx context.Context, hash []byte, kind string, now time.Time) (*SignInFlow, error)
}
