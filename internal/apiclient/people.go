package apiclient

import (
	"context"
	"net/http"

	"github.com/wardenhq/warden/internal/apitype"
)

// LoginWithCode exchanges the loopback sign-in's one-time code and PKCE verifier for a session.
func (c *Client) LoginWithCode(ctx context.Context, req apitype.LoginCodeRequest) (*apitype.LoginSession, error) {
	return call[*apitype.LoginSession](ctx, c, http.MethodPost, "/login/cli/token", req)
}

// StartDeviceLogin asks for a device code and the user code a person confirms in a browser.
func (c *Client) StartDeviceLogin(ctx context.Context) (*apitype.DeviceCode, error) {
	return call[*apitype.DeviceCode](ctx, c, http.MethodPost, "/login/device/code", struct{}{})
}

// PollDeviceLogin asks whether the device code was confirmed.
func (c *Client) PollDeviceLogin(ctx context.Context, deviceCode string) (*apitype.DeviceToken, error) {
	return call[*apitype.DeviceToken](ctx, c, http.MethodPost, "/login/device/token", apitype.DeviceTokenRequest{DeviceCode: deviceCode})
}

// Logout ends the session the client's bearer is.
func (c *Client) Logout(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/logout", nil, nil)
}
