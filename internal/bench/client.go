package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/killswitch"
)

// client speaks warden's admin API with an admin token, and its OAuth token endpoint with an
// agent's client credentials: everything bench and drill set up goes through the same API the
// CLI uses, so they run alike against `--self` and against a server someone else runs.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(base, token string, tr http.RoundTripper) *client {
	return &client{base: strings.TrimSuffix(base, "/"), token: token, http: &http.Client{Timeout: 60 * time.Second, Transport: tr}}
}

// maxAnswer bounds what is read from the server.
const maxAnswer = apiclient.MaxAnswer

// do is apiclient's call, with the method and path in any error, since a drill makes many calls.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	err := apiclient.Client{
		Base: c.base, Token: c.token, HTTP: c.http, UserAgent: "warden-bench",
		Unreachable: "is it running? (set --addr or WARDEN_ADDR, or use --self)",
	}.Do(ctx, method, path, in, out)
	var e *warden.Error
	if errors.As(err, &e) && e.Err != nil && warden.ErrorCode(err) != warden.EUnavailable {
		return &warden.Error{Code: e.Code, Message: method + " " + path + ": " + e.Message, Err: e.Err}
	}
	return err
}

func agentPath(name string) string { return "/v1/agents/" + url.PathEscape(name) }

func (c *client) createAgent(ctx context.Context, spec admin.AgentSpec) (*httpapi.CreatedAgent, error) {
	var out httpapi.CreatedAgent
	return &out, c.do(ctx, http.MethodPost, "/v1/agents", spec, &out)
}

func (c *client) deleteAgent(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, agentPath(name), nil, nil)
}

func (c *client) agents(ctx context.Context) ([]*warden.Agent, error) {
	var out []*warden.Agent
	return out, c.do(ctx, http.MethodGet, "/v1/agents", nil, &out)
}

func (c *client) addTool(ctx context.Context, spec admin.ToolSpec) error {
	return c.do(ctx, http.MethodPost, "/v1/tools", spec, nil)
}

func (c *client) removeTool(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tools/"+url.PathEscape(name), nil, nil)
}

func (c *client) tools(ctx context.Context) ([]*warden.Tool, error) {
	var out []*warden.Tool
	return out, c.do(ctx, http.MethodGet, "/v1/tools", nil, &out)
}

// latestPolicies returns the policy set in force, or an empty one at version 0 when none was
// ever applied.
func (c *client) latestPolicies(ctx context.Context) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	err := c.do(ctx, http.MethodGet, "/v1/policies/latest", nil, &ps)
	if warden.ErrorCode(err) == warden.ENotFound {
		return &warden.PolicySet{Files: map[string]string{}}, nil
	}
	if ps.Files == nil {
		ps.Files = map[string]string{}
	}
	return &ps, err
}

func (c *client) applyPolicies(ctx context.Context, req admin.PolicyApply) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.do(ctx, http.MethodPost, "/v1/policies", req, &ps)
}

func (c *client) setBudget(ctx context.Context, spec admin.BudgetSpec) (*warden.Budget, error) {
	var b warden.Budget
	return &b, c.do(ctx, http.MethodPost, "/v1/budgets", spec, &b)
}

func (c *client) deleteBudget(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/budgets/"+url.PathEscape(id), nil, nil)
}

func (c *client) kill(ctx context.Context, name, reason string) (*killswitch.Report, error) {
	var r killswitch.Report
	return &r, c.do(ctx, http.MethodPost, agentPath(name)+"/kill", httpapi.KillRequest{Reason: reason}, &r)
}

func (c *client) lockdown(ctx context.Context, reason string) (*killswitch.Report, error) {
	var r killswitch.Report
	return &r, c.do(ctx, http.MethodPost, "/v1/lockdown", httpapi.LockdownRequest{Reason: reason}, &r)
}

func (c *client) lift(ctx context.Context, reason string) error {
	return c.do(ctx, http.MethodPost, "/v1/lockdown/lift", httpapi.ReasonRequest{Reason: reason}, nil)
}

func (c *client) lockdownState(ctx context.Context) (warden.Lockdown, error) {
	var l warden.Lockdown
	return l, c.do(ctx, http.MethodGet, "/v1/lockdown", nil, &l)
}

// runner is a sandbox registered with the server, as GET /v1/runners lists it.
type runner struct {
	ID        string `json:"id"`
	Agent     string `json:"agent"`
	PID       int    `json:"pid"`
	Connected bool   `json:"connected"`
}

func (c *client) runners(ctx context.Context) ([]runner, error) {
	var out []runner
	return out, c.do(ctx, http.MethodGet, "/v1/runners", nil, &out)
}

// events returns every audit event the filter q (query parameters of GET /v1/audit/events,
// without limit and after) selects, page by page.
func (c *client) events(ctx context.Context, q url.Values) ([]*warden.AuditEvent, error) {
	var all []*warden.AuditEvent
	var after int64
	for {
		page := url.Values{}
		for k, v := range q {
			page[k] = v
		}
		page.Set("limit", "1000")
		if after > 0 {
			page.Set("after", fmt.Sprint(after))
		}
		var evs []*warden.AuditEvent
		if err := c.do(ctx, http.MethodGet, "/v1/audit/events?"+page.Encode(), nil, &evs); err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(evs) < 1000 {
			return all, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// agentToken gets an access token for an agent with the client credentials grant.
func (c *client) agentToken(ctx context.Context, clientID, secret string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", warden.WrapError(warden.EUnavailable, "getting an agent token", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &tok) != nil || tok.AccessToken == "" {
		return "", warden.Errorf(warden.EUnauthenticated, "the token endpoint refused the agent's credentials: %d %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return tok.AccessToken, nil
}
