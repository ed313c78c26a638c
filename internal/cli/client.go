package cli

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

// client calls the warden HTTP API with an admin token.
type client struct {
	base  string
	token string
	http  *http.Client
}

// maxResponse bounds what the CLI reads from a server.
const maxResponse = 64 << 20

// do sends a JSON request and decodes the JSON answer into out (if not nil). An API error comes
// back as a *warden.Error with the server's code and message.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return warden.Errorf(warden.EInvalid, "bad server address %q: %v", c.base, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "warden-cli/"+Version)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return warden.WrapError(warden.EUnavailable, fmt.Sprintf("cannot reach warden at %s: is 'warden serve' running? (set --addr or WARDEN_ADDR)", c.base), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return warden.WrapError(warden.EUnavailable, "reading the server's answer", err)
	}
	if resp.StatusCode >= 300 {
		return apiError(resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return warden.WrapError(warden.EInternal, "the server's answer is not the JSON expected", err)
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

func apiError(status int, data []byte) error {
	var body httpapi.ErrorBody
	code, ok := codeByStatus[status]
	if !ok {
		code = warden.EInternal
	}
	if err := json.Unmarshal(data, &body); err != nil || body.Error.Message == "" {
		return warden.Errorf(code, "server answered %d %s", status, http.StatusText(status))
	}
	if body.Error.Code != "" {
		code = body.Error.Code
	}
	msg := body.Error.Message
	if code == warden.EUnauthenticated {
		msg += " (check WARDEN_TOKEN or DATA/admin.token)"
	}
	return &warden.Error{Code: code, Message: msg, Err: errors.New(http.StatusText(status))}
}
