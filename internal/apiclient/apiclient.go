// Package apiclient is the one client of warden's HTTP API. The CLI, bench and drill, the
// runner's control channel, the egress proxy's decisions and the connect sidecar all call the
// server through it: one JSON path, one bearer, one bound on what is read, and every error
// answer turned into a *warden.Error with the server's code and message. The wire types are
// package apitype's.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// MaxAnswer bounds what is read of one answer: a policy set of 10,000 policies comes back
// whole. An answer over it is an error, never silently cut short.
const MaxAnswer = 64 << 20

// maxErrorAnswer bounds what is read of an error answer: a message, not a document.
const maxErrorAnswer = 64 << 10

// TokenSource returns the bearer token of the next request: an admin token, an agent's access
// token (fetched and renewed by its holder), or a runner's own secret.
type TokenSource func(ctx context.Context) (string, error)

// StaticToken is a token that never changes, such as an admin token.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// Client calls one warden server.
type Client struct {
	Base      string      // the server's URL, such as http://127.0.0.1:8787; a trailing slash is ignored
	Token     TokenSource // the bearer of every request; nil sends none
	HTTP      *http.Client
	UserAgent string
	// Unreachable is what to tell a person when the server does not answer, after "cannot
	// reach warden at BASE: ".
	Unreachable string
	// MaxAnswer bounds what is read of one answer; 0 means the package's MaxAnswer.
	MaxAnswer int64
	// NameCalls puts the method and path before the message of an error the server answered:
	// for a caller such as drill, which makes many calls and reports only the one that failed.
	NameCalls bool
	// CredentialHint is added to the message when the server refuses the credential (401):
	// where the caller's token comes from, so that a person knows what to fix.
	CredentialHint string
}

// WithToken returns a copy of c that authenticates with token instead: a runner reports with
// its own secret, which still works after a kill ended the agent's tokens.
func (c *Client) WithToken(token TokenSource) *Client {
	cp := *c
	cp.Token = token
	return &cp
}

// HTTPError is the cause of the *warden.Error of an error answer: the status the server gave.
type HTTPError struct{ Status int }

func (e *HTTPError) Error() string { return http.StatusText(e.Status) }

// Status returns the HTTP status of an error answer, or 0 when err is not one (the server was
// not reached, or the request was never sent).
func Status(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// Do sends in as JSON (when not nil) and decodes the JSON answer into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.DoHeader(ctx, method, path, in, out)
	return err
}

// call makes a request whose answer decodes into a T and returns it. (A `return out,
// c.Do(…, &out)` would leave to the compiler whether out is read before or after the call.)
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	err := c.Do(ctx, method, path, in, &out)
	return out, err
}

// DoHeader is Do that also returns the answer's header.
func (c *Client) DoHeader(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, warden.WrapError(warden.EInvalid, "encoding the request to "+method+" "+path, err)
		}
		body = bytes.NewReader(b)
	}
	h := http.Header{}
	if in != nil {
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.Send(ctx, method, path, body, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := c.readAll(resp.Body, method, path)
	if err != nil {
		return nil, err
	}
	if out == nil || len(data) == 0 {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, warden.WrapError(warden.EInternal, "the server's answer to "+method+" "+path+" is not the JSON expected", err)
	}
	return resp.Header, nil
}

// Send sends one request with the client's bearer and returns a 2xx answer, whose body the
// caller reads (as it comes, for an export or a stream) and closes. Any other answer is
// returned as the *warden.Error it carries.
func (c *Client) Send(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	base := strings.TrimSuffix(c.Base, "/")
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "bad server address %q: %v", c.Base, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Token != nil {
		token, err := c.Token(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := "cannot reach warden at " + base
		if c.Unreachable != "" {
			msg += ": " + c.Unreachable
		}
		return nil, warden.WrapError(warden.EUnavailable, msg, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorAnswer))
		e := Error(resp.StatusCode, data).(*warden.Error)
		if c.NameCalls {
			e.Message = method + " " + req.URL.Path + ": " + e.Message
		}
		if resp.StatusCode == http.StatusUnauthorized && c.CredentialHint != "" {
			e.Message += " (" + c.CredentialHint + ")"
		}
		return nil, e
	}
	return resp, nil
}

// readAll reads an answer, refusing one over the client's bound rather than cutting it.
func (c *Client) readAll(r io.Reader, method, path string) ([]byte, error) {
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = MaxAnswer
	}
	return readAtMost(r, limit, method, path)
}

// readAtMost reads an answer of at most limit bytes, refusing a longer one.
func readAtMost(r io.Reader, limit int64, method, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, warden.WrapError(warden.EUnavailable, "reading the server's answer to "+method+" "+path, err)
	}
	if int64(len(data)) > limit {
		return nil, warden.Errorf(warden.ETooLarge, "the server's answer to %s %s is over %d bytes", method, path, limit)
	}
	return data, nil
}

var codeByStatus = map[int]string{
	http.StatusBadRequest:            warden.EInvalid,
	http.StatusUnauthorized:          warden.EUnauthenticated,
	http.StatusForbidden:             warden.EForbidden,
	http.StatusNotFound:              warden.ENotFound,
	http.StatusConflict:              warden.EConflict,
	http.StatusRequestEntityTooLarge: warden.ETooLarge,
	http.StatusTooManyRequests:       warden.ERateLimited,
	http.StatusServiceUnavailable:    warden.EUnavailable,
}

// codeByOAuthError maps the RFC 6749 §5.2 errors of /oauth2/* to warden's codes.
var codeByOAuthError = map[string]string{
	"invalid_request":        warden.EInvalid,
	"invalid_client":         warden.EUnauthenticated,
	"invalid_grant":          warden.EUnauthenticated,
	"unauthorized_client":    warden.EForbidden,
	"unsupported_grant_type": warden.EInvalid,
	"invalid_scope":          warden.EInvalid,
	"invalid_target":         warden.EInvalid,
}

// Error turns an error answer (status and body) into a *warden.Error whose cause is the
// *HTTPError of the status: the code and message of the body's {"error": {"code", "message"}},
// or of an OAuth error {"error", "error_description"}, or, when there is neither, a code from
// the status.
func Error(status int, data []byte) error {
	cause := &HTTPError{Status: status}
	code, ok := codeByStatus[status]
	if !ok {
		code = warden.EInternal
	}
	var body apitype.ErrorBody
	if err := json.Unmarshal(data, &body); err == nil && body.Error.Message != "" {
		if body.Error.Code != "" {
			code = body.Error.Code
		}
		return &warden.Error{Code: code, Message: body.Error.Message, Err: cause}
	}
	var oauth apitype.OAuthError
	if err := json.Unmarshal(data, &oauth); err == nil && oauth.Error != "" {
		if c, ok := codeByOAuthError[oauth.Error]; ok {
			code = c
		}
		msg := oauth.Error
		if oauth.Description != "" {
			msg += ": " + oauth.Description
		}
		return &warden.Error{Code: code, Message: msg, Err: cause}
	}
	return &warden.Error{Code: code, Message: fmt.Sprintf("server answered %d %s", status, http.StatusText(status)), Err: cause}
}
