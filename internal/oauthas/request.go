package oauthas

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// Limits on what a client may send.
const (
	maxParam       = 2048 // any one authorization request parameter
	maxState       = 1024
	maxScope       = 1024
	maxRedirects   = 10
	maxClientName  = 100
	maxRegisterReq = 16 << 10
)

// authRequest is a validated authorization request.
type authRequest struct {
	ClientID    string `json:"c"`
	RedirectURI string `json:"r"`
	State       string `json:"s,omitempty"`
	Challenge   string `json:"p"`
	Resource    string `json:"a"`
	Scope       string `json:"o,omitempty"`
}

// pageError is an error shown on warden's page: the redirect URI is not known to be the
// client's, so nothing is sent there (RFC 6749 §4.1.2.1).
type pageError struct{ msg string }

func (e *pageError) Error() string { return e.msg }

// redirectError is an error the client receives at its validated redirect URI.
type redirectError struct {
	code, description string
}

func (e *redirectError) Error() string { return e.code + ": " + e.description }

var (
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)       // base64url of SHA-256, unpadded
	verifierRE  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`) // RFC 7636 §4.1
	schemeRE    = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)
)

// parseAuthorize validates an authorization request's parameters against the client lookup
// finds. Until the redirect URI is validated every error is a *pageError; after, a
// *redirectError. validResource says whether a resource is one of warden's.
func parseAuthorize(q url.Values, lookup func(id string) *warden.OAuthClient, validResource func(string) bool, defaultResource string) (*authRequest, *warden.OAuthClient, error) {
	for k, v := range q {
		if len(v) > 1 {
			return nil, nil, &pageError{"parameter " + safe(k) + " is repeated"}
		}
		if len(v[0]) > maxParam {
			return nil, nil, &pageError{"parameter " + safe(k) + " is too long"}
		}
	}
	id := q.Get("client_id")
	if id == "" {
		return nil, nil, &pageError{"client_id is required"}
	}
	c := lookup(id)
	if c == nil {
		return nil, nil, &pageError{"unknown client; register it first"}
	}
	redirect := q.Get("redirect_uri")
	switch {
	case redirect == "" && len(c.RedirectURIs) == 1:
		redirect = c.RedirectURIs[0]
	case redirect == "":
		return nil, nil, &pageError{"redirect_uri is required"}
	case !redirectMatches(c.RedirectURIs, redirect):
		return nil, nil, &pageError{"redirect_uri is not one the client registered"}
	}
	r := &authRequest{ClientID: c.ID, RedirectURI: redirect, State: q.Get("state")}
	if len(r.State) > maxState {
		return nil, nil, &pageError{"state is too long"}
	}
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return r, c, &redirectError{"invalid_request", "response_type is required"}
	default:
		return r, c, &redirectError{"unsupported_response_type", "only response_type code is supported"}
	}
	switch q.Get("code_challenge_method") {
	case "S256":
	case "", "plain":
		return r, c, &redirectError{"invalid_request", "PKCE with code_challenge_method S256 is required"}
	default:
		return r, c, &redirectError{"invalid_request", "code_challenge_method must be S256"}
	}
	r.Challenge = q.Get("code_challenge")
	if !challengeRE.MatchString(r.Challenge) {
		return r, c, &redirectError{"invalid_request", "code_challenge must be the base64url SHA-256 of the verifier"}
	}
	r.Resource = q.Get("resource")
	if r.Resource == "" {
		r.Resource = defaultResource
	}
	if !validResource(r.Resource) {
		return r, c, &redirectError{"invalid_target", "resource must be this server's /mcp or /mcp/<tool>"}
	}
	r.Scope = q.Get("scope")
	if r.Scope != "" && (len(r.Scope) > maxScope || !identity.ValidScope(r.Scope)) {
		return r, c, &redirectError{"invalid_scope", "scope must be space-separated printable tokens"}
	}
	return r, c, nil
}

// redirectMatches: exact string match, except that a loopback http redirect URI may use any
// port (RFC 8252 §7.3): a native client listens on whichever port it gets.
func redirectMatches(registered []string, uri string) bool {
	if slices.Contains(registered, uri) {
		return true
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || !loopbackHost(u.Hostname()) {
		return false
	}
	for _, reg := range registered {
		ru, err := url.Parse(reg)
		if err != nil || ru.Scheme != "http" || !loopbackHost(ru.Hostname()) {
			continue
		}
		if ru.Hostname() == u.Hostname() && ru.EscapedPath() == u.EscapedPath() && ru.RawQuery == u.RawQuery && ru.User == nil && u.User == nil {
			return true
		}
	}
	return false
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Schemes a redirect URI may never use: they run code, read files or are not a redirect.
var refusedSchemes = []string{"javascript", "data", "file", "vbscript", "blob", "about", "ftp", "ws", "wss", "mailto"}

// validRedirect checks one redirect URI a client registers: https; http only to a loopback
// address (RFC 8252 §7.3); or a native app's private-use scheme (RFC 8252 §7.1, e.g.
// cursor://…, com.example.app:/cb). No fragment, no user info.
func validRedirect(raw string) error {
	if len(raw) > maxParam {
		return warden.Errorf(warden.EInvalid, "redirect URI too long")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || !schemeRE.MatchString(u.Scheme) {
		return warden.Errorf(warden.EInvalid, "redirect URI %s is not an absolute URI", safe(raw))
	}
	if u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return warden.Errorf(warden.EInvalid, "redirect URI %s may have no fragment or user info", safe(raw))
	}
	switch {
	case u.Scheme == "https":
		if u.Host == "" {
			return warden.Errorf(warden.EInvalid, "redirect URI %s has no host", safe(raw))
		}
	case u.Scheme == "http":
		if !loopbackHost(u.Hostname()) {
			return warden.Errorf(warden.EInvalid, "redirect URI %s: http only to a loopback address (127.0.0.1, [::1], localhost); use https", safe(raw))
		}
	case slices.Contains(refusedSchemes, u.Scheme):
		return warden.Errorf(warden.EInvalid, "redirect URI scheme %s is not allowed", u.Scheme)
	}
	return nil
}

// safe cuts a client's value to something fit to show or log.
func safe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 200 {
			b.WriteString("…")
			break
		}
		if r < ' ' || r == 0x7f {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
