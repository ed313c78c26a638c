package warden

import (
	"context"
	"encoding/json"
	"strconv"
	"time"
)

// Risk is how much harm a tool can do; policy and approvals key on it.
type Risk string

const (
	RiskLow      Risk = "low"
	RiskMedium   Risk = "medium"
	RiskHigh     Risk = "high"
	RiskCritical Risk = "critical"
)

// ParseRisk validates a risk level; "" is medium.
func ParseRisk(s string) (Risk, error) {
	switch Risk(s) {
	case "":
		return RiskMedium, nil
	case RiskLow, RiskMedium, RiskHigh, RiskCritical:
		return Risk(s), nil
	}
	return "", Errorf(EInvalid, "unknown risk %q: use low, medium, high or critical", s)
}

// Level orders risks: low 1 … critical 4.
func (r Risk) Level() int {
	switch r {
	case RiskLow:
		return 1
	case RiskMedium:
		return 2
	case RiskHigh:
		return 3
	case RiskCritical:
		return 4
	}
	return 0
}

// ToolKind says how warden reaches a tool's upstream.
type ToolKind string

const (
	ToolMCP        ToolKind = "mcp"         // a remote MCP server over streamable HTTP
	ToolMCPCommand ToolKind = "mcp_command" // a local MCP server warden starts and speaks to over stdio
	ToolHTTP       ToolKind = "http"        // a plain HTTP API with declared routes
	// ToolDecisionOnly is a tool warden never reaches: its caller asks POST /v1/authorize and
	// acts itself. It declares its actions (Tool.Actions); /mcp and /http refuse it.
	ToolDecisionOnly ToolKind = "decision_only"
	// ToolEgress is the built-in tool "egress" of the sandboxes' egress proxy: every outbound
	// connection is its action "net.connect" on the resource "host:port". It is always
	// registered and never stored.
	ToolEgress ToolKind = "egress"
)

// EgressTool is the built-in egress tool.
var EgressTool = &Tool{Name: "egress", Kind: ToolEgress, Risk: RiskMedium}

// EgressConnect is the egress tool's one action.
const EgressConnect = "net.connect"

// Tool is an upstream an agent reaches only through warden.
type Tool struct {
	Name    string   `json:"name"`
	Kind    ToolKind `json:"kind"`
	URL     string   `json:"url,omitempty"`     // mcp and http
	Command []string `json:"command,omitempty"` // mcp_command
	Risk    Risk     `json:"risk"`
	// Secret names the secret injected upstream through the Inject header template
	// ("Authorization: Bearer {{secret}}"), or through SecretEnv for a local command.
	Secret    string            `json:"secret,omitempty"`
	Inject    string            `json:"inject,omitempty"`
	SecretEnv map[string]string `json:"secret_env,omitempty"` // env var → secret name
	// Routes map HTTP requests to actions and resources:
	// "POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}".
	Routes []string `json:"routes,omitempty"`
	// SensitiveArgs names arguments whose values are always redacted in the audit log.
	SensitiveArgs []string `json:"sensitive_args,omitempty"`
	// Approval lists the actions that always wait for a person's approval, whatever policy says;
	// "*" means every action of the tool.
	Approval []string `json:"approval,omitempty"`
	// Sandbox loosens the sandbox of a local MCP server (mcp_command); nil: the defaults.
	Sandbox *ToolSandbox `json:"sandbox,omitempty"`
	// Package is what a local MCP server runs, pinned when the tool was added; nil for remote
	// tools. Its Digest is what a quarantine of the server's package names.
	Package *ToolPackage `json:"package,omitempty"`
	// Labels are free-form labels; the keys output, data and effect are the flow labels of the
	// whole tool (flow.go).
	Labels map[string]string `json:"labels,omitempty"`
	// Actions are the actions of a decision-only tool, the only ones its calls may name.
	Actions []ToolAction `json:"actions,omitempty"`
	// ActionLabels are flow labels of single actions, by action: they override Labels.
	ActionLabels map[string]map[string]string `json:"action_labels,omitempty"`
	Disabled     bool                         `json:"disabled"`
	CreatedAt    time.Time                    `json:"created_at"`
	UpdatedAt    time.Time                    `json:"updated_at"`
}

// ToolAction is one declared action of a decision-only tool.
type ToolAction struct {
	Name string `json:"name"`
	// Risk is the action's own risk; "" is the tool's.
	Risk Risk `json:"risk,omitempty"`
	// InputSchema is the JSON Schema of the action's arguments (docs/policies.md lists the
	// keywords warden reads); nil: any JSON object.
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// Action returns the declared action of that name, or nil.
func (t *Tool) Action(name string) *ToolAction {
	for i := range t.Actions {
		if t.Actions[i].Name == name {
			return &t.Actions[i]
		}
	}
	return nil
}

// ActionRisk is the risk of one action: a decision-only tool's action may declare its own,
// every other action has the tool's.
func (t *Tool) ActionRisk(action string) Risk {
	if a := t.Action(action); a != nil && a.Risk != "" {
		return a.Risk
	}
	return t.Risk
}

// MaxRisk is the highest risk of any call to the tool: its own, or a decision-only tool's
// riskiest action's. What holds a tool by risk without knowing the action — a lockdown from a
// risk up — goes by it, so that a critical action of a low tool is not left out.
func (t *Tool) MaxRisk() Risk {
	r := t.Risk
	for _, a := range t.Actions {
		if a.Risk.Level() > r.Level() {
			r = a.Risk
		}
	}
	return r
}

// Package sources of a local MCP server.
const (
	PackageNPM     = "npm"     // installed from the npm registry by warden (tool add --npm)
	PackageCommand = "command" // the files of an --mcp-command, as they were when it was added
)

// ToolPackage pins what a local MCP server runs.
type ToolPackage struct {
	// Source is PackageNPM or PackageCommand.
	Source string `json:"source"`
	// Digest ("sha256:…") is the package's identity: over the npm tarball's bytes, or over the
	// command's resolved files (PackageFile digests, in order). A quarantine names it.
	Digest string `json:"digest"`
	// NPM: the package's exact name and version, the registry's dist.integrity the tarball
	// matched, the bin the server runs, and what its provenance attestation proved ("" when the
	// package has none).
	Name       string `json:"name,omitempty"`
	Version    string `json:"version,omitempty"`
	Integrity  string `json:"integrity,omitempty"`
	Bin        string `json:"bin,omitempty"`
	Provenance string `json:"provenance,omitempty"`
	// Files are the command's resolved files (PackageCommand), or the installed entry point (NPM).
	Files []PackageFile `json:"files,omitempty"`
	// LockDigest ("sha256:…") names the package-lock.json npm wrote when the package was
	// installed at add (NPM): every dependency's version, resolved URL and integrity. The lock's
	// bytes are kept in the store (PackageLockStore), and every later install uses them. ""
	// for a package added before locks were kept: its dependencies are resolved at each install.
	LockDigest string `json:"lock_digest,omitempty"`
	// LockPackages is how many packages the lock installs, the package itself included.
	LockPackages int `json:"lock_packages,omitempty"`
}

// PackageLockStore keeps the dependency locks of npm packages (ToolPackage.LockDigest), by
// the sha256 digest of their bytes.
type PackageLockStore interface {
	// PutPackageLock stores a lock under its digest, which must be the sha256 of its bytes
	// (EInvalid otherwise); storing one already there changes nothing.
	PutPackageLock(ctx context.Context, digest string, lock []byte) error
	// PackageLock returns the lock stored under digest (ENotFound when none is).
	PackageLock(ctx context.Context, digest string) ([]byte, error)
}

// EventToolPackageChanged records that a local MCP server was not started because the files
// its command runs are not the ones pinned when the tool was added.
const EventToolPackageChanged = "tool.package_changed"

// PackageFile is one file of a package and its digest ("sha256:…").
type PackageFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
}

// ToolSandbox is what a local MCP server may reach beyond its sandbox's defaults (no network,
// its own workspace, the system directories and its command read-only).
type ToolSandbox struct {
	// ReadOnly are more host paths it may read, at the same path.
	ReadOnly []string `json:"read_only,omitempty"`
	// AllowHosts are the HOST[:PORT] patterns it may connect to, through warden's egress proxy
	// ("*.example.com" for subdomains).
	AllowHosts []string `json:"allow_hosts,omitempty"`
}

// Request is one action an agent asks to take, resolved by an enforcement point into the terms
// policy judges.
type Request struct {
	Agent      *Agent
	Tool       *Tool
	Action     string         // tool-local action: the MCP tool name, or the HTTP route's action
	Resource   string         // what the route or the arguments name; "" means the tool itself
	Arguments  map[string]any // decoded JSON arguments
	SessionID  string
	OnBehalfOf string
	Time       time.Time
	// BodyUninspected says that part of the call goes upstream unparsed (an HTTP request body
	// that is not JSON): policy sees context.body_inspected false. The zero value is a call whose
	// arguments are all there is to it (MCP, the decision API).
	BodyUninspected bool
	// Flow is what the call's session had read and which arguments came from untrusted output
	// (context.labels, context.session, context.taint); nil: nothing known, a fresh session with
	// the default labels.
	Flow *FlowFacts
}

// Decision is what warden decided about a Request.
type Decision struct {
	ID            string   `json:"decision_id"`
	Effect        string   `json:"effect"` // allow, deny or approval_required
	Reason        string   `json:"reason"` // a stable code: policy_allow, no_matching_policy, forbidden_by_policy, budget_exceeded, …
	Message       string   `json:"message,omitempty"`
	Policies      []string `json:"policies,omitempty"` // the determining policy ids
	PolicyVersion int64    `json:"policy_version,omitempty"`
	// Errors are the policies that failed to evaluate for the request, whether or not they
	// changed the outcome: a permit that fails does not apply, a forbid that fails denies.
	Errors []PolicyError `json:"errors,omitempty"`
}

// PolicyError is a policy that failed to evaluate for a request, and why (reading a missing
// attribute, comparing a String with a Long, overflow).
type PolicyError struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
}

// ToolStore keeps registered tools.
type ToolStore interface {
	CreateTool(ctx context.Context, t *Tool) error
	Tool(ctx context.Context, name string) (*Tool, error)
	Tools(ctx context.Context) ([]*Tool, error)
	UpdateTool(ctx context.Context, name string, fn func(t *Tool) error) (*Tool, error)
	DeleteTool(ctx context.Context, name string) error
}

// MaxMCPToolName is the longest tool name the MCP specification allows.
const MaxMCPToolName = 128

// ValidateMCPToolName checks a name by the tool-name rule of the MCP specification (2025-11-25,
// "Tool names"): 1 to 128 characters, each an ASCII letter, digit, '_', '-' or '.'; names are
// case-sensitive. Warden holds every MCP tool name to it — those an admin declares and those an
// agent calls — because an upstream may trim, fold case or stop at a NUL: "transfer " or
// "Transfer" must never reach a server that would run "transfer" under a name policy did not
// judge.
func ValidateMCPToolName(name string) error {
	if name == "" || len(name) > MaxMCPToolName {
		return Errorf(EInvalid, "invalid MCP tool name %s: use 1-128 ASCII letters, digits, '_', '-' and '.'", quoteName(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return Errorf(EInvalid, "invalid MCP tool name %s: use 1-128 ASCII letters, digits, '_', '-' and '.'", quoteName(name))
		}
	}
	return nil
}

// quoteName quotes a name for an error message, cut short: it may be anything a caller sent.
func quoteName(name string) string {
	if len(name) > 80 {
		name = name[:80] + "…"
	}
	return strconv.QuoteToASCII(name)
}

// MaxActionLen is the longest action a route or a budget may name.
const MaxActionLen = 128

// ValidateAction checks a tool-local action as routes and budgets name it: 1 to 128 ASCII
// letters, digits, '.', '_', '/' or '-'. (An MCP tool's actions are its tool names, a subset:
// ValidateMCPToolName.) Nothing that could read differently to a person, a policy and an
// upstream — spaces, quotes, ':' that Cedar's action ids use — gets in.
func ValidateAction(action string) error {
	if action == "" || len(action) > MaxActionLen {
		return actionError(action)
	}
	for i := 0; i < len(action); i++ {
		c := action[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return actionError(action)
		}
	}
	return nil
}

func actionError(action string) error {
	return Errorf(EInvalid, "invalid action %s: use 1-128 ASCII letters, digits, '.', '_', '/' or '-'", quoteName(action))
}

// NeedsApproval reports whether the tool declares that action always needs a person's approval.
func (t *Tool) NeedsApproval(action string) bool {
	for _, a := range t.Approval {
		if a == "*" || a == action {
			return true
		}
	}
	return false
}
