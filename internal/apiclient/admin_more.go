package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// The rest of the admin API, as the CLI calls it.

func approvalPath(id string) string { return "/v1/approvals/" + url.PathEscape(id) }
func toolPath(name string) string   { return "/v1/tools/" + url.PathEscape(name) }

// agentChange posts to one of an agent's state changes (suspend, resume, renew) and returns
// the agent after it.
func (c *Client) agentChange(ctx context.Context, name, change string, body any) (*warden.Agent, error) {
	var a warden.Agent
	return &a, c.Do(ctx, http.MethodPost, agentPath(name)+"/"+change, body, &a)
}

// SuspendAgent suspends an agent until it is resumed.
func (c *Client) SuspendAgent(ctx context.Context, name, reason string) (*warden.Agent, error) {
	return c.agentChange(ctx, name, "suspend", apitype.ReasonRequest{Reason: reason})
}

// ResumeAgent resumes a suspended agent.
func (c *Client) ResumeAgent(ctx context.Context, name, reason string) (*warden.Agent, error) {
	return c.agentChange(ctx, name, "resume", apitype.ReasonRequest{Reason: reason})
}

// RenewAgent gives an agent a new lifetime from now ("" for the default).
func (c *Client) RenewAgent(ctx context.Context, name, ttl string) (*warden.Agent, error) {
	return c.agentChange(ctx, name, "renew", apitype.RenewRequest{TTL: ttl})
}

// RotateSecret gives an agent a new client secret, shown this once.
func (c *Client) RotateSecret(ctx context.Context, name string) (*apitype.CreatedAgent, error) {
	var out apitype.CreatedAgent
	return &out, c.Do(ctx, http.MethodPost, agentPath(name)+"/rotate-secret", struct{}{}, &out)
}

// RestoreAgent undoes a kill with a new credential, shown this once.
func (c *Client) RestoreAgent(ctx context.Context, name, reason string) (*apitype.CreatedAgent, error) {
	var out apitype.CreatedAgent
	return &out, c.Do(ctx, http.MethodPost, agentPath(name)+"/restore", apitype.ReasonRequest{Reason: reason}, &out)
}

// Quarantine stops every artifact of a digest.
func (c *Client) Quarantine(ctx context.Context, req apitype.QuarantineRequest) (*apitype.QuarantineReport, error) {
	var q apitype.QuarantineReport
	return &q, c.Do(ctx, http.MethodPost, "/v1/quarantine", req, &q)
}

// CreateAdminToken creates a named admin token; the answer holds it, shown this once.
func (c *Client) CreateAdminToken(ctx context.Context, spec apitype.AdminTokenSpec) (*apitype.CreatedAdminToken, error) {
	var out apitype.CreatedAdminToken
	return &out, c.Do(ctx, http.MethodPost, "/v1/admin/tokens", spec, &out)
}

// AdminTokens lists the admin tokens (never their values).
func (c *Client) AdminTokens(ctx context.Context) ([]*warden.AdminToken, error) {
	return call[[]*warden.AdminToken](ctx, c, http.MethodGet, "/v1/admin/tokens", nil)
}

// RevokeAdminToken revokes a named admin token.
func (c *Client) RevokeAdminToken(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/admin/tokens/"+url.PathEscape(name), nil, nil)
}

// RotateKey makes a new token signing key current.
func (c *Client) RotateKey(ctx context.Context) (*warden.SigningKey, error) {
	var k warden.SigningKey
	return &k, c.Do(ctx, http.MethodPost, "/v1/keys/rotate", struct{}{}, &k)
}

// Keys lists the token signing keys.
func (c *Client) Keys(ctx context.Context) ([]*warden.SigningKey, error) {
	return call[[]*warden.SigningKey](ctx, c, http.MethodGet, "/v1/keys", nil)
}

// Apply applies (or, with DryRun, plans) a warden.yaml document.
func (c *Client) Apply(ctx context.Context, req apitype.ApplyRequest) (*apitype.Plan, error) {
	var plan apitype.Plan
	return &plan, c.Do(ctx, http.MethodPost, "/v1/apply", req, &plan)
}

// Budgets returns an agent's budgets with their use now.
func (c *Client) Budgets(ctx context.Context, agent string) ([]apitype.BudgetStatus, error) {
	return call[[]apitype.BudgetStatus](ctx, c, http.MethodGet, agentPath(agent)+"/budgets", nil)
}

// Approvals lists the approval requests of a status ("" for pending, "open", "all").
func (c *Client) Approvals(ctx context.Context, status string) ([]*apitype.ApprovalView, error) {
	return call[[]*apitype.ApprovalView](ctx, c, http.MethodGet, "/v1/approvals?status="+url.QueryEscape(status), nil)
}

// Approval returns one approval request with the agent's recent actions.
func (c *Client) Approval(ctx context.Context, id string) (*apitype.ApprovalView, error) {
	var out apitype.ApprovalView
	return &out, c.Do(ctx, http.MethodGet, approvalPath(id), nil, &out)
}

// Approve approves a held call.
func (c *Client) Approve(ctx context.Context, id string, req apitype.ApproveRequest) (*warden.Approval, error) {
	var a warden.Approval
	return &a, c.Do(ctx, http.MethodPost, approvalPath(id)+"/approve", req, &a)
}

// Reject rejects a held call.
func (c *Client) Reject(ctx context.Context, id string, req apitype.RejectRequest) (*warden.Approval, error) {
	var a warden.Approval
	return &a, c.Do(ctx, http.MethodPost, approvalPath(id)+"/reject", req, &a)
}

// PolicyVersions lists the policy versions.
func (c *Client) PolicyVersions(ctx context.Context) ([]*warden.PolicySet, error) {
	return call[[]*warden.PolicySet](ctx, c, http.MethodGet, "/v1/policies", nil)
}

// PolicyVersion returns one version of the policies by its number, or "latest".
func (c *Client) PolicyVersion(ctx context.Context, version string) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.Do(ctx, http.MethodGet, "/v1/policies/"+url.PathEscape(version), nil, &ps)
}

// RollbackPolicies makes an earlier version's files the next version.
func (c *Client) RollbackPolicies(ctx context.Context, req apitype.RollbackRequest) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.Do(ctx, http.MethodPost, "/v1/policies/rollback", req, &ps)
}

// TestPolicies runs policy test cases; nothing is stored.
func (c *Client) TestPolicies(ctx context.Context, req apitype.PolicyTest) ([]apitype.PolicyCaseResult, error) {
	return call[[]apitype.PolicyCaseResult](ctx, c, http.MethodPost, "/v1/policies/test", req)
}

// Replay decides recorded sessions, or the audit log's tool calls, again with candidate
// policies or the ones in force; nothing is stored.
func (c *Client) Replay(ctx context.Context, req apitype.ReplayRequest) (*apitype.ReplayReport, error) {
	var rep apitype.ReplayReport
	return &rep, c.Do(ctx, http.MethodPost, "/v1/replay", req, &rep)
}

// PolicySchema returns the Cedar schema policies are validated against.
func (c *Client) PolicySchema(ctx context.Context) (*apitype.PolicySchema, error) {
	return call[*apitype.PolicySchema](ctx, c, http.MethodGet, "/v1/policies/schema", nil)
}

// ExplainPolicy decides one request and says how.
func (c *Client) ExplainPolicy(ctx context.Context, req apitype.PolicyCase) (*apitype.Explanation, error) {
	var x apitype.Explanation
	return &x, c.Do(ctx, http.MethodPost, "/v1/policies/explain", req, &x)
}

// Tool returns one registered tool, with the flow labels of its actions resolved.
func (c *Client) Tool(ctx context.Context, name string) (*apitype.ToolView, error) {
	return call[*apitype.ToolView](ctx, c, http.MethodGet, toolPath(name), nil)
}

// LabelTool sets or unsets flow labels of a tool or of one of its actions.
func (c *Client) LabelTool(ctx context.Context, name string, req apitype.ToolLabelsRequest) (*apitype.ToolView, error) {
	return call[*apitype.ToolView](ctx, c, http.MethodPatch, toolPath(name)+"/labels", req)
}

// DisableTool disables a tool for every agent and cancels its calls in flight.
func (c *Client) DisableTool(ctx context.Context, name, reason string) (*apitype.ToolDisabled, error) {
	var out apitype.ToolDisabled
	return &out, c.Do(ctx, http.MethodPost, toolPath(name)+"/disable", apitype.ToolStateRequest{Reason: reason}, &out)
}

// EnableTool enables a disabled tool.
func (c *Client) EnableTool(ctx context.Context, name, reason string) (*warden.Tool, error) {
	var t warden.Tool
	return &t, c.Do(ctx, http.MethodPost, toolPath(name)+"/enable", apitype.ToolStateRequest{Reason: reason}, &t)
}

// PutSecret stores a secret's value; the answer never holds it.
func (c *Client) PutSecret(ctx context.Context, name, value string) (*warden.Secret, error) {
	var s warden.Secret
	return &s, c.Do(ctx, http.MethodPut, "/v1/secrets/"+url.PathEscape(name), apitype.SecretRequest{Value: value}, &s)
}

// Secrets lists the secrets (never their values).
func (c *Client) Secrets(ctx context.Context) ([]*warden.Secret, error) {
	return call[[]*warden.Secret](ctx, c, http.MethodGet, "/v1/secrets", nil)
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), nil, nil)
}

// VerifyAudit verifies the audit log in the server's store.
func (c *Client) VerifyAudit(ctx context.Context, req apitype.VerifyRequest) (*apitype.VerifyReport, error) {
	var r apitype.VerifyReport
	return &r, c.Do(ctx, http.MethodPost, "/v1/audit/verify", req, &r)
}

// SignCheckpoint signs a checkpoint of the audit log as it is now.
func (c *Client) SignCheckpoint(ctx context.Context) (*apitype.CheckpointResponse, error) {
	var cp apitype.CheckpointResponse
	return &cp, c.Do(ctx, http.MethodPost, "/v1/audit/checkpoint", nil, &cp)
}

// VerifierKey returns the key that verifies the audit log's checkpoints.
func (c *Client) VerifierKey(ctx context.Context) (*apitype.VerifierKeyResponse, error) {
	var k apitype.VerifierKeyResponse
	return &k, c.Do(ctx, http.MethodGet, "/v1/audit/key", nil, &k)
}

// ExportAudit streams the audit events the query q selects, in q's format (jsonl or ocsf): the
// body, which the caller reads as it comes and closes. An export is not bounded by MaxAnswer.
func (c *Client) ExportAudit(ctx context.Context, q url.Values) (io.ReadCloser, error) {
	resp, err := c.Send(ctx, http.MethodGet, "/v1/audit/export?"+q.Encode(), nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ToolManifests lists the pinned manifests of an MCP tool, held ones with their diffs and
// findings.
func (c *Client) ToolManifests(ctx context.Context, tool string) ([]*warden.ToolManifest, error) {
	return call[[]*warden.ToolManifest](ctx, c, http.MethodGet, toolPath(tool)+"/manifests", nil)
}

// ScanToolManifests scans an MCP tool's pinned and held manifests.
func (c *Client) ScanToolManifests(ctx context.Context, tool string) (*apitype.ToolScan, error) {
	return call[*apitype.ToolScan](ctx, c, http.MethodGet, toolPath(tool)+"/scan", nil)
}

// AcceptManifests pins the held manifests of an MCP tool (of one MCP tool name when name is
// not "").
func (c *Client) AcceptManifests(ctx context.Context, tool string, req apitype.ManifestAcceptRequest) ([]*warden.ToolManifest, error) {
	return call[[]*warden.ToolManifest](ctx, c, http.MethodPost, toolPath(tool)+"/manifests/accept", req)
}

// Suggest asks for the smallest grants that cover what an agent did since a time (an RFC 3339
// time or a duration ago; "" is the server's default of 30 days) and its unused grants.
func (c *Client) Suggest(ctx context.Context, agent, since string) (*apitype.SuggestReport, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	var rep apitype.SuggestReport
	return &rep, c.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(agent)+"/suggest?"+q.Encode(), nil, &rep)
}
