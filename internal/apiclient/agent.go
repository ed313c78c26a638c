package apiclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// This file is the API an agent calls with its own access token: who it is, the decision API,
// and the runner API of `warden run`.

// AgentSelf returns the agent the client's token names.
func (c *Client) AgentSelf(ctx context.Context) (*warden.Agent, error) {
	var self apitype.AgentSelf
	if err := c.Do(ctx, http.MethodGet, "/v1/agent/self", nil, &self); err != nil {
		return nil, err
	}
	if self.Agent == nil {
		return nil, warden.Errorf(warden.EInternal, "the server's answer to GET /v1/agent/self names no agent")
	}
	return self.Agent, nil
}

// Authorize asks the decision API whether the agent may take an action. A decision that denies
// is an answer, not an error: the caller must obey its effect.
func (c *Client) Authorize(ctx context.Context, req apitype.AuthorizeRequest) (*apitype.AuthorizeResponse, error) {
	var out apitype.AuthorizeResponse
	return &out, c.Do(ctx, http.MethodPost, "/v1/authorize", req, &out)
}

// Outcome reports what came of an allowed decision.
func (c *Client) Outcome(ctx context.Context, decisionID string, o apitype.OutcomeRequest) error {
	return c.Do(ctx, http.MethodPost, "/v1/decisions/"+url.PathEscape(decisionID)+"/outcome", o, nil)
}

// RegisterRunner registers a sandbox about to start. The answer's secret authenticates the
// runner's report and deregistration.
func (c *Client) RegisterRunner(ctx context.Context, req apitype.RunnerRequest) (*apitype.RunnerRegistered, error) {
	var out apitype.RunnerRegistered
	if err := c.Do(ctx, http.MethodPost, "/v1/runners", req, &out); err != nil {
		return nil, err
	}
	if out.ID == "" || out.Secret == "" {
		return nil, warden.Errorf(warden.EUnavailable, "warden registered the runner without an id or secret")
	}
	return &out, nil
}

// ReportRunner reports how a sandbox ended, authenticated by the runner's own secret.
func (c *Client) ReportRunner(ctx context.Context, id, secret string, r apitype.RunnerReport) error {
	return c.WithToken(StaticToken(secret)).Do(ctx, http.MethodPost, "/v1/runners/"+url.PathEscape(id)+"/report", r, nil)
}

// DeregisterRunner says the runner is done, authenticated by its own secret.
func (c *Client) DeregisterRunner(ctx context.Context, id, secret string) error {
	return c.WithToken(StaticToken(secret)).Do(ctx, http.MethodDelete, "/v1/runners/"+url.PathEscape(id), nil, nil)
}

// ControlEvent is one event of a runner's control stream: a lease or a terminate with its
// data, or a keep-alive (Name "comment").
type ControlEvent struct {
	Name string
	apitype.RunnerControl
}

// RunnerControl follows the control stream of runner id, as Stream does. An event whose data is
// not the JSON expected still counts as word from the server, with empty data: a terminate is
// obeyed whatever its reason says.
func (c *Client) RunnerControl(ctx context.Context, id string, opened func(), fn func(ControlEvent) error) error {
	return c.Stream(ctx, "/v1/runners/"+url.PathEscape(id)+"/control", "", opened, func(ev Event) error {
		ce := ControlEvent{Name: ev.Name}
		if ev.Comment {
			ce.Name = "comment"
		} else {
			_ = json.Unmarshal([]byte(ev.Data), &ce.RunnerControl)
		}
		return fn(ce)
	})
}

// ClientCredentialsToken gets an agent's access token with the OAuth 2.0 client credentials
// grant (RFC 6749 §4.4), in session sessionID when it is not empty. It does not use the
// client's bearer: the credentials are the authentication.
func (c *Client) ClientCredentialsToken(ctx context.Context, clientID, secret, sessionID string) (*apitype.TokenResponse, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if sessionID != "" {
		form.Set("session_id", sessionID)
	}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	// RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic encoding.
	h.Set("Authorization", basicAuth(url.QueryEscape(clientID), url.QueryEscape(secret)))
	resp, err := c.WithToken(nil).Send(ctx, http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()), h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := c.readAll(resp.Body, http.MethodPost, "/oauth2/token")
	if err != nil {
		return nil, err
	}
	var tr apitype.TokenResponse
	if err := json.Unmarshal(data, &tr); err != nil || tr.AccessToken == "" {
		return nil, warden.Errorf(warden.EUnavailable, "warden's token endpoint answered without an access token")
	}
	return &tr, nil
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
