package cli

import (
	"context"
	"errors"
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
)

// client calls the warden HTTP API with an admin token.
type client struct {
	base  string
	token string
	http  *http.Client
}

// maxResponse bounds what the CLI reads from a server.
const maxResponse = apiclient.MaxAnswer

// do sends a JSON request and decodes the JSON answer into out (if not nil). An API error comes
// back as a *warden.Error with the server's code and message.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	err := apiclient.Client{
		Base: c.base, Token: c.token, HTTP: c.http, UserAgent: "warden-cli/" + Version,
		Unreachable: "is 'warden serve' running? (set --addr or WARDEN_ADDR)",
	}.Do(ctx, method, path, in, out)
	return withTokenHint(err)
}

// apiError turns an error answer into a *warden.Error, as do does.
func apiError(status int, data []byte) error { return withTokenHint(apiclient.Error(status, data)) }

// withTokenHint tells a person where the CLI's credential comes from when the server refused it.
func withTokenHint(err error) error {
	var e *warden.Error
	if errors.As(err, &e) && e.Code == warden.EUnauthenticated {
		return &warden.Error{Code: e.Code, Message: e.Message + " (check WARDEN_TOKEN or DATA/admin.token)", Err: e.Err}
	}
	return err
}
