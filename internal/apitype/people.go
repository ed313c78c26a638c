package apitype

import "time"

// Sign-in of people for the CLI (internal/people; docs/people.md). `warden login` gets a session
// token (wps_…) either by the loopback flow (POST /login/cli/token with the one-time code the
// browser brought back and the PKCE verifier) or by the device flow (POST /login/device/code,
// then POST /login/device/token until the person confirmed the code in a browser).

// LoginCodeRequest exchanges the loopback flow's one-time code for a session.
type LoginCodeRequest struct {
	Code         string `json:"code"`
	CodeVerifier string `json:"code_verifier"`
}

// LoginSession is a person's new CLI session; the token is shown once.
type LoginSession struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Name      string    `json:"name"`
	Email     string    `json:"email,omitempty"`
	Role      string    `json:"role"`
}

// DeviceCode starts the device flow (RFC 8628's fields): the person opens VerificationURI
// (or VerificationURIComplete) in any browser, signs in and confirms UserCode.
type DeviceCode struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"` // seconds
	Interval                int    `json:"interval"`   // seconds between polls
}

// DeviceTokenRequest asks whether the device code was confirmed.
type DeviceTokenRequest struct {
	DeviceCode string `json:"device_code"`
}

// DeviceToken answers a poll: status "pending" (ask again after Interval seconds) or
// "approved" with the session. A refused or expired code is an error.
type DeviceToken struct {
	Status   string        `json:"status"`
	Interval int           `json:"interval,omitempty"`
	Session  *LoginSession `json:"session,omitempty"`
}
