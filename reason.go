package warden

// Decision reasons: the stable codes in Decision.Reason and an audit event's decision.reason,
// and the error code an enforcement point answers a refused call with. Callers and SIEM rules
// branch on them, so a code, once given, keeps its meaning. docs/audit.md lists every one.
const (
	// Policy (package cedar).
	ReasonPolicyAllow      = "policy_allow"        // a permit matched and no forbid did
	ReasonApprovalWaived   = "approval_waived"     // as policy_allow, and a matching permit is @approval("waived")
	ReasonNoMatchingPolicy = "no_matching_policy"  // no permit matched: default deny
	ReasonForbidden        = "forbidden_by_policy" // a forbid matched
	// ReasonPolicyError: no valid policy set is in force, or a policy could not be evaluated:
	// fail closed.
	ReasonPolicyError    = "policy_error"
	ReasonInvalidRequest = "invalid_request" // the request cannot be judged

	// Kill state, checked first and again just before an allow is recorded.
	ReasonAgentInactive = "agent_inactive" // the agent is unknown, suspended, killed or expired
	ReasonStaleEpoch    = "stale_epoch"    // the token is from another epoch of the agent
	ReasonLockdown      = "lockdown"       // a lockdown covers the tool
	ReasonToolDisabled  = "tool_disabled"  // the tool is disabled for every agent
	// ReasonStaleState: this replica cannot confirm its kill state is current (its change feed
	// is down and its last reload is older than killswitch.max_staleness): fail closed.
	ReasonStaleState = "stale_state"

	// Resolving the call.
	ReasonInvalidToken     = "invalid_token"     // the Bearer token is missing or could not be verified
	ReasonUnknownTool      = "unknown_tool"      // no tool of that name is registered (or listed by its MCP server)
	ReasonInvalidArguments = "invalid_arguments" // the arguments are not a JSON object warden can read, or do not fit the action's input schema
	ReasonDecisionOnly     = "decision_only"     // the tool is decision-only: /mcp and /http do not reach it; ask POST /v1/authorize
	ReasonUnknownAction    = "unknown_action"    // a decision-only tool declares no action of that name
	ReasonNoRoute          = "no_route"          // no route of the HTTP tool matches the method and path
	ReasonInvalidPath      = "invalid_path"      // a path warden refuses to interpret
	// ReasonUpstreamUnavailable: the MCP server's tool list could not be read, so the call could
	// not be resolved; fail closed.
	ReasonUpstreamUnavailable = "upstream_unavailable"

	// Approval.
	// ReasonApprovalRequired: policy asks for a person's approval (a permit is
	// @approval("required")), or the call needs one and this server takes no approvals.
	ReasonApprovalRequired = "approval_required"
	ReasonApprovalPending  = "approval_pending"  // nobody decided within the hold time; send the call again
	ReasonApproved         = "approved"          // a person approved the call
	ReasonApprovalRejected = "approval_rejected" // a person rejected the call
	ReasonApprovalExpired  = "approval_expired"  // the request expired undecided
	ReasonApprovalLimit    = "approval_limit"    // the agent has as many requests waiting as it may; none was made
	ReasonApprovalError    = "approval_error"    // the approval could not be obtained: fail closed

	// Budgets.
	ReasonBudgetExceeded        = "budget_exceeded"         // a budget is spent; waiting may help (Retry-After)
	ReasonBudgetArgumentInvalid = "budget_argument_invalid" // an argument a sum budget counts is missing or not a number; waiting will not help
	ReasonBudgetError           = "budget_error"            // budgets could not be checked: fail closed

	// Recording and brokering.
	ReasonAuditUnavailable  = "audit_unavailable"      // the allow could not be recorded, so it did not happen
	ReasonFlowUnavailable   = "flow_unavailable"       // what the call's session read could not be read from the store
	ReasonCredentialMissing = "credential_unavailable" // the tool's brokered credential could not be read

	// The egress proxy of a sandbox.
	ReasonNotInAllowHost = "not_in_allow_host" // the host is not in the run's --allow-host list (or the tool's allowed hosts)
	ReasonToolAllowHost  = "tool_allow_host"   // allowed: the host is one of the MCP server's allowed hosts

	// Supply chain.
	ReasonQuarantined     = "quarantined"      // the artifact's digest is quarantined
	ReasonManifestChanged = "manifest_changed" // the MCP tool's manifest is not the pinned one: held for review
	// ReasonPackageUnverified: admin.tool.refuse, an npm package failed its integrity or provenance
	// check, or is unsigned and was not allowed.
	ReasonPackageUnverified = "package_unverified"
	// ReasonPackageTampered: tool.package_refused, the installed entry point's digest is not the pinned one.
	ReasonPackageTampered = "package_tampered"
	ReasonPackageChanged  = "package_changed" // a local MCP server's files are not the ones pinned when it was added: not started

	// Other events.
	ReasonRoleRequired       = "role_required"       // admin.denied: the admin token's role may not do this
	ReasonRefusalsSummarized = "refusals_summarized" // token.refuse.summary: refusals over the limits were counted, not recorded
)
