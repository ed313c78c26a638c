// Package apiclient calls warden's HTTP API the way every client of it does: JSON in, JSON out,
// and an error answer turned into a *warden.Error with the server's code and message. The CLI
// and bench/drill are both built on it.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/httpapi"
)

// MaxAnswer bounds what is read from a server: a policy set of 10,000 policies comes back whole.
const MaxAnswer = 64 << 20

// Client is one caller of the API.
type Client struct {
	Base      string // the server's URL, without a trailing slash
	Token     string // sent as a Bearer token
	HTTP      *http.Client
	UserAgent string
	// Unreachable is what to tell a person when the server does not answer, after "cannot
	// reach warden at BASE: ".
	Unreachable string
}

// Do sends in as JSON (when not nil) and decodes the JSON answer into out (when not nil).
func (c Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return warden.Errorf(warden.EInvalid, "bad server address %q: %v", c.Base, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("User-Agent", c.UserAgent)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return warden.WrapError(warden.EUnavailable, fmt.Sprintf("cannot reach warden at %s: %s", c.Base, c.Unreachable), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return warden.WrapError(warden.EUnavailable, "reading the server's answer", err)
	}
	if resp.StatusCode >= 300 {
		return Error(resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return warden.WrapError(warden.EInternal, "the server's answer to "+method+" "+path+" is not the JSON expected", err)
	}
	return nil
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

// Error turns an error answer (status and body) into a *warden.Error: the code and message of
// the body's {"error": {"code", "message"}}, or, when there is none, a code from the status.
func Error(status int, data []byte) error {
	var body httpapi.ErrorBody
	code, ok := codeByStatus[status]
	if !ok {
		code = warden.EInternal
	}
	if err := json.Unmarshal(data, &body); err != nil || body.Error.Message == "" {
		return &warden.Error{Code: code, Message: fmt.Sprintf("server answered %d %s", status, http.StatusText(status)), Err: errors.New(http.StatusText(status))}
	}
	if body.Error.Code != "" {
		code = body.Error.Code
	}
	return &warden.Error{Code: code, Message: body.Error.Message, Err: errors.New(http.StatusText(status))}
}
