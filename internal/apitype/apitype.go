// Package apitype holds the request and response types of warden's HTTP API: what the server's
// handlers decode and encode and what package apiclient sends and reads. It imports nothing of
// warden's but the domain package, so a client never links server code for a wire type.
package apitype

import "github.com/wardenhq/warden"

// ErrorBody is the JSON shape of every non-OAuth error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// OAuthError is an RFC 6749 §5.2 error, the shape of the errors of /oauth2/*.
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// ReasonRequest carries a person's reason for a change of state.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// RenewRequest carries an identity's new lifetime.
type RenewRequest struct {
	TTL string `json:"ttl"`
}

// CreatedAgent is the answer to creating an agent or rotating its secret: the only time the
// client secret is shown.
type CreatedAgent struct {
	*warden.Agent
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// AgentSelf is the answer of GET /v1/agent/self: the agent a token names.
type AgentSelf struct {
	Agent *warden.Agent `json:"agent"`
}

// CreatedAdminToken is the answer to creating an admin token: the only time it is shown.
type CreatedAdminToken struct {
	*warden.AdminToken
	Token string `json:"token"`
}

// AdminTokenSpec is a request for a named admin token.
type AdminTokenSpec struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Email is the address of the person who holds the token; separation of duties in approvals
	// compares it with an agent's owner. Optional.
	Email string `json:"email,omitempty"`
}

// AgentSpec is what a person declares when creating an agent.
type AgentSpec struct {
	Name    string            `json:"name"`
	Owner   string            `json:"owner"`
	Purpose string            `json:"purpose"`
	TTL     string            `json:"ttl,omitempty"` // "90d", "720h"; default 90 days
	Labels  map[string]string `json:"labels,omitempty"`
	// Skills, in `warden apply` only, are the skills the agent may load (Cedar skill.load):
	// when given (even as []), exactly these; when absent (null), the agent's skill grants are
	// left as they are. Elsewhere it must be absent.
	Skills []string `json:"skills"`
}

// ToolSpec is what a person declares when registering a tool: exactly one of MCP, MCPCommand,
// HTTP and NPM says how warden reaches it, or Actions alone declare a decision-only tool.
type ToolSpec struct {
	Name          string            `json:"name" yaml:"name"`
	MCP           string            `json:"mcp,omitempty" yaml:"mcp"`
	MCPCommand    string            `json:"mcp_command,omitempty" yaml:"mcp_command"`
	HTTP          string            `json:"http,omitempty" yaml:"http"`
	Risk          string            `json:"risk,omitempty" yaml:"risk"`
	Secret        string            `json:"secret,omitempty" yaml:"secret"`
	Inject        string            `json:"inject,omitempty" yaml:"inject"`
	SecretEnv     map[string]string `json:"secret_env,omitempty" yaml:"secret_env"`
	Routes        []string          `json:"routes,omitempty" yaml:"routes"`
	SensitiveArgs []string          `json:"sensitive_args,omitempty" yaml:"sensitive_args"`
	// Labels are free-form, but for the keys output, data and effect: the flow labels of the
	// whole tool (warden.ValidateFlowLabel).
	Labels map[string]string `json:"labels,omitempty" yaml:"labels"`
	// ActionLabels are flow labels of single actions, by action: {send_email: {effect: external}}.
	// They override Labels; an action must be one of an HTTP tool's routes, or an MCP tool name.
	ActionLabels map[string]map[string]string `json:"action_labels,omitempty" yaml:"action_labels"`
	// Approval lists the actions that always wait for a person's approval, whatever policy
	// says; "*" means every action.
	Approval []string `json:"approval,omitempty" yaml:"approval"`
	// ReadOnly and AllowHosts loosen a local command's sandbox: more host paths it may read,
	// and the HOST[:PORT] patterns it may reach through warden's egress proxy.
	ReadOnly   []string `json:"read_only,omitempty" yaml:"read_only"`
	AllowHosts []string `json:"allow_hosts,omitempty" yaml:"allow_hosts"`
	// NPM is a local MCP server from the npm registry, "NAME@VERSION" with an exact version
	// (the fourth way to reach a tool): warden verifies and installs it, and runs Bin, or its
	// only or default bin. AllowUnsigned (admins) accepts a package no trusted publisher's
	// provenance vouches for; UnsignedReason is required with it.
	NPM            string `json:"npm,omitempty" yaml:"npm"`
	Bin            string `json:"bin,omitempty" yaml:"bin"`
	AllowUnsigned  bool   `json:"allow_unsigned,omitempty" yaml:"allow_unsigned"`
	UnsignedReason string `json:"unsigned_reason,omitempty" yaml:"unsigned_reason"`
	// Actions make a decision-only tool (the fifth kind, with no upstream at all): warden
	// decides its calls on POST /v1/authorize and never reaches it.
	Actions []ToolActionSpec `json:"actions,omitempty" yaml:"actions"`
}

// ToolActionSpec declares one action of a decision-only tool: its risk ("" is the tool's), its
// flow labels (output, data, effect), and the JSON Schema of its arguments, if any.
type ToolActionSpec struct {
	Name        string            `json:"name" yaml:"name"`
	Risk        string            `json:"risk,omitempty" yaml:"risk"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels"`
	InputSchema map[string]any    `json:"input_schema,omitempty" yaml:"input_schema"`
}

// ToolLabelsRequest changes the flow labels of a tool (PATCH /v1/tools/{name}/labels): of the
// whole tool, or of one action. Set and Unset name only the flow labels output, data and effect;
// an unset label falls back to the tool's, the MCP annotations' or the default.
type ToolLabelsRequest struct {
	Action string            `json:"action,omitempty"`
	Set    map[string]string `json:"set,omitempty"`
	Unset  []string          `json:"unset,omitempty"`
}

// ToolView is a tool as GET /v1/tools/{name} shows it: the tool and the flow labels of its
// actions, resolved by the server as the gateway resolves them, so every client shows the same.
type ToolView struct {
	*warden.Tool
	// Flow has a row for each action warden knows of: an HTTP tool's route actions; an MCP tool's
	// pinned tools and the actions an admin labelled, then one row with Other set for every
	// other action. The built-in egress tool has none.
	Flow []ActionFlow `json:"flow"`
}

// ActionFlow is the resolved flow labels of one action of a tool.
type ActionFlow struct {
	Action string `json:"action,omitempty"`
	// Method gives an HTTP action its default effect (GET: none): a reading method only when
	// every route of the action reads.
	Method string `json:"method,omitempty"`
	// Other: the row of every action without a row of its own (Action is "").
	Other bool `json:"other,omitempty"`
	// Manifest is the state of an MCP tool's pinned manifest, whose annotations are read
	// (warden.ManifestPinned, ManifestHeld or ManifestRemoved); "" when none is stored.
	Manifest string            `json:"manifest,omitempty"`
	Labels   warden.FlowLabels `json:"labels"`
}

// ToolStateRequest enables or disables a tool.
type ToolStateRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ToolDisabled answers a disable: the tool and how many calls in flight were cancelled.
type ToolDisabled struct {
	*warden.Tool
	CallsCancelled int `json:"calls_cancelled"`
	// Replicas is what each live replica did with the change, this one first (KillReport's).
	Replicas []ReplicaAck `json:"replicas,omitempty"`
}

// SecretRequest carries a secret's value, on its one way in.
type SecretRequest struct {
	Value string `json:"value"`
}
