package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// This file is the API a person (or bench and drill) calls with an admin token.

func agentPath(name string) string { return "/v1/agents/" + url.PathEscape(name) }

// Whoami returns the principal the client's admin token names.
func (c *Client) Whoami(ctx context.Context) (*warden.Principal, error) {
	var p warden.Principal
	return &p, c.Do(ctx, http.MethodGet, "/v1/whoami", nil, &p)
}

// Agents lists the agents.
func (c *Client) Agents(ctx context.Context) ([]*warden.Agent, error) {
	return call[[]*warden.Agent](ctx, c, http.MethodGet, "/v1/agents", nil)
}

// Agent returns one agent.
func (c *Client) Agent(ctx context.Context, name string) (*warden.Agent, error) {
	var a warden.Agent
	return &a, c.Do(ctx, http.MethodGet, agentPath(name), nil, &a)
}

// CreateAgent creates an agent; the answer holds its client secret, shown this once.
func (c *Client) CreateAgent(ctx context.Context, spec apitype.AgentSpec) (*apitype.CreatedAgent, error) {
	var out apitype.CreatedAgent
	return &out, c.Do(ctx, http.MethodPost, "/v1/agents", spec, &out)
}

// DeleteAgent deletes an agent.
func (c *Client) DeleteAgent(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, agentPath(name), nil, nil)
}

// Kill kills an agent: its tokens, sessions, calls in flight and sandboxes end now.
func (c *Client) Kill(ctx context.Context, name string, req apitype.KillRequest) (*apitype.KillReport, error) {
	var r apitype.KillReport
	return &r, c.Do(ctx, http.MethodPost, agentPath(name)+"/kill", req, &r)
}

// Lockdown stops every agent's calls at or above a risk.
func (c *Client) Lockdown(ctx context.Context, req apitype.LockdownRequest) (*apitype.KillReport, error) {
	var r apitype.KillReport
	return &r, c.Do(ctx, http.MethodPost, "/v1/lockdown", req, &r)
}

// LiftLockdown ends a lockdown and returns the state after it.
func (c *Client) LiftLockdown(ctx context.Context, reason string) (*warden.Lockdown, error) {
	var l warden.Lockdown
	return &l, c.Do(ctx, http.MethodPost, "/v1/lockdown/lift", apitype.ReasonRequest{Reason: reason}, &l)
}

// LockdownState returns the lockdown in force (Active false when there is none).
func (c *Client) LockdownState(ctx context.Context) (*warden.Lockdown, error) {
	var l warden.Lockdown
	return &l, c.Do(ctx, http.MethodGet, "/v1/lockdown", nil, &l)
}

// Tools lists the registered tools.
func (c *Client) Tools(ctx context.Context) ([]*warden.Tool, error) {
	return call[[]*warden.Tool](ctx, c, http.MethodGet, "/v1/tools", nil)
}

// AddTool registers a tool; an MCP server's tools are pinned then (ToolAdded.Manifests).
func (c *Client) AddTool(ctx context.Context, spec apitype.ToolSpec) (*apitype.ToolAdded, error) {
	return call[*apitype.ToolAdded](ctx, c, http.MethodPost, "/v1/tools", spec)
}

// RemoveTool removes a tool.
func (c *Client) RemoveTool(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, toolPath(name), nil, nil)
}

// ApplyPolicies replaces the people-written policy files.
func (c *Client) ApplyPolicies(ctx context.Context, req apitype.PolicyApply) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.Do(ctx, http.MethodPost, "/v1/policies", req, &ps)
}

// SetBudget creates or replaces a budget.
func (c *Client) SetBudget(ctx context.Context, spec apitype.BudgetSpec) (*warden.Budget, error) {
	var b warden.Budget
	return &b, c.Do(ctx, http.MethodPost, "/v1/budgets", spec, &b)
}

// DeleteBudget deletes a budget.
func (c *Client) DeleteBudget(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/budgets/"+url.PathEscape(id), nil, nil)
}

// Replicas lists the replicas of the fleet as the answering replica sees them.
func (c *Client) Replicas(ctx context.Context) (*apitype.Replicas, error) {
	r, err := call[apitype.Replicas](ctx, c, http.MethodGet, "/v1/replicas", nil)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Runners lists the sandboxes registered with the server.
func (c *Client) Runners(ctx context.Context) ([]apitype.RunnerInfo, error) {
	return call[[]apitype.RunnerInfo](ctx, c, http.MethodGet, "/v1/runners", nil)
}

// AuditEvents returns one page of the audit events the query q of GET /v1/audit/events selects,
// and the seq of the newest event of the log when the server answered, or -1 when it did not
// say.
func (c *Client) AuditEvents(ctx context.Context, q url.Values) ([]*warden.AuditEvent, int64, error) {
	p, err := c.AuditSearch(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	return p.Events, p.Head, nil
}

// AuditPage is one page of an audit search.
type AuditPage struct {
	Events []*warden.AuditEvent
	Head   int64  // the newest seq of the log when the server answered; -1: not said
	Total  string // how many events the whole search matches ("100000+": at least); "": not said
}

// AuditSearch returns one page of the audit events the query q of GET /v1/audit/events selects,
// with the log's head and the search's total.
func (c *Client) AuditSearch(ctx context.Context, q url.Values) (*AuditPage, error) {
	p := &AuditPage{}
	h, err := c.DoHeader(ctx, http.MethodGet, "/v1/audit/events?"+q.Encode(), nil, &p.Events)
	if err != nil {
		return nil, err
	}
	p.Head, err = strconv.ParseInt(h.Get(apitype.AuditHeadHeader), 10, 64)
	if err != nil || p.Head < 0 {
		p.Head = -1
	}
	p.Total = h.Get(apitype.AuditTotalHeader)
	return p, nil
}

// FollowAudit follows GET /v1/audit/stream with the query q, calling fn for each event, and
// reconnects with Last-Event-ID after the server or the network drops the stream, so that no
// event is missed or repeated. It returns when ctx ends, fn fails, the server refuses the
// stream, or the server stays unreachable for 30 attempts a second apart.
func (c *Client) FollowAudit(ctx context.Context, q url.Values, fn func(*warden.AuditEvent) error) error {
	lastID := ""
	for failures := 0; ; {
		opened := false
		err := c.Stream(ctx, "/v1/audit/stream?"+q.Encode(), lastID, func() { opened = true }, func(ev Event) error {
			if ev.Comment || (ev.Name != apitype.AuditEventName && ev.Name != "message") {
				return nil
			}
			var e warden.AuditEvent
			if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
				return &streamError{warden.WrapError(warden.EInternal, "the stream sent an event that is not JSON", err)}
			}
			lastID = ev.ID
			if err := fn(&e); err != nil {
				return &streamError{err}
			}
			return nil
		})
		var se *streamError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &se):
			return se.err
		case !opened && (warden.ErrorCode(err) != warden.EUnavailable || failures >= 30):
			return err
		case !opened:
			failures++
		default:
			failures = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// streamError carries the handler's own error out of ReadEvents, apart from an error reading
// the stream, after which FollowAudit reconnects.
type streamError struct{ err error }

func (e *streamError) Error() string { return "stream handler" }
