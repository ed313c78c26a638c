package warden

import (
	"context"
	"encoding/json"
	"time"
)

// AuditSchemaVersion is the version of the AuditEvent encoding; docs/audit.md describes it.
const AuditSchemaVersion = 1

// Audit event types. Every decision and every change of state is one of these.
const (
	EventToolCall         = "tool.call"   // a decision about a call, recorded before the call proceeds
	EventToolResult       = "tool.result" // what came of an allowed call
	EventTokenIssue       = "token.issue"
	EventTokenRefuse      = "token.refuse"
	EventTokenRevoke      = "token.revoke"
	EventTokenIntrospect  = "token.introspect"
	EventAgentCreate      = "agent.create"
	EventAgentSuspend     = "agent.suspend"
	EventAgentResume      = "agent.resume"
	EventAgentUpdate      = "agent.update"
	EventAgentRenew       = "agent.renew"
	EventAgentRotate      = "agent.rotate_secret"
	EventAgentDelete      = "agent.delete"
	EventAdminTokenCreate = "admin.token.create"
	EventAdminTokenRevoke = "admin.token.revoke"
	EventAdminDenied      = "admin.denied"
	EventKeysRotate       = "admin.keys.rotate"
	EventToolAdd          = "admin.tool.add"
	EventToolEnable       = "admin.tool.enable"
	EventToolDisable      = "admin.tool.disable"
	EventToolRemove       = "admin.tool.remove"
	EventSecretSet        = "admin.secret.set"
	EventSecretDelete     = "admin.secret.delete"
	EventPolicyApply      = "policy.apply"
	EventPolicyRollback   = "policy.rollback"
	EventBudgetSet        = "admin.budget.set"
	EventBudgetDelete     = "admin.budget.delete"
	EventApply            = "admin.apply"
	EventServerStart      = "system.start"
)

// Actor kinds.
const (
	ActorAgent  = "agent"
	ActorHuman  = "human"
	ActorSystem = "system"
)

// Decision effects.
const (
	EffectAllow            = "allow"
	EffectDeny             = "deny"
	EffectApprovalRequired = "approval_required"
	EffectApproved         = "approved"
	EffectRejected         = "rejected"
	EffectExpired          = "expired"
	EffectError            = "error"
)

// Outcome statuses.
const (
	StatusOK       = "ok"
	StatusError    = "error"
	StatusCanceled = "canceled"
)

// AuditEvent is one record of the audit log: who did what, under whose authority, what was
// decided and what came of it. docs/audit.md documents every field.
type AuditEvent struct {
	SchemaVersion int           `json:"schema_version"`
	ID            string        `json:"id"`  // sortable (ULID)
	Seq           int64         `json:"seq"` // position in the log, assigned by the store
	Time          time.Time     `json:"time"`
	Type          string        `json:"type"`
	Actor         EventActor    `json:"actor"`
	Target        EventTarget   `json:"target,omitzero"`
	Decision      EventDecision `json:"decision,omitzero"`
	Outcome       EventOutcome  `json:"outcome,omitzero"`
	TraceID       string        `json:"trace_id,omitempty"`
	SpanID        string        `json:"span_id,omitempty"`
	PrevHash      string        `json:"prev_hash,omitempty"`
	Hash          string        `json:"hash,omitempty"`
}

// EventActor says who acted.
type EventActor struct {
	Kind       string `json:"kind"` // agent, human or system
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	Role       string `json:"role,omitempty"`  // for a person: the role of the admin token
	Owner      string `json:"owner,omitempty"` // for an agent: the person accountable for it
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	SessionID  string `json:"session_id,omitempty"`
	Source     string `json:"source,omitempty"` // remote address
	Replica    string `json:"replica,omitempty"`
}

// EventTarget says what was acted on. Arguments are redacted; ArgsSHA256 covers the canonical
// unredacted arguments so a call can be matched without revealing them.
type EventTarget struct {
	Tool       string          `json:"tool,omitempty"`
	Action     string          `json:"action,omitempty"`
	Resource   string          `json:"resource,omitempty"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	ArgsSHA256 string          `json:"args_sha256,omitempty"`
}

// EventDecision says what warden decided and why.
type EventDecision struct {
	ID            string   `json:"id,omitempty"` // the decision id an agent can quote
	Effect        string   `json:"effect,omitempty"`
	Reason        string   `json:"reason,omitempty"` // a stable reason code
	Message       string   `json:"message,omitempty"`
	Policies      []string `json:"policies,omitempty"`
	PolicyVersion int64    `json:"policy_version,omitempty"`
}

// EventOutcome says what came of an allowed action.
type EventOutcome struct {
	Status         string  `json:"status,omitempty"`
	UpstreamStatus int     `json:"upstream_status,omitempty"`
	LatencyMS      float64 `json:"latency_ms,omitempty"`
	BytesIn        int64   `json:"bytes_in,omitempty"`
	BytesOut       int64   `json:"bytes_out,omitempty"`
}

// AuditFilter selects events for search. Zero fields match everything.
type AuditFilter struct {
	Agent      string // actor ID or name
	Type       string // exact, or a prefix ending in "*" ("agent.*")
	Effect     string
	Tool       string
	Action     string
	SessionID  string
	OnBehalfOf string
	Since      time.Time
	Until      time.Time
	AfterSeq   int64
	Limit      int // 0 means a default; the store caps it
}

// AuditLog is where every decision and change of state is recorded. Append returns only once
// the event is durable; a caller that cannot record must not proceed.
type AuditLog interface {
	Append(ctx context.Context, ev *AuditEvent) error
}

// AuditStore keeps audit events. There is no way to change or delete one.
type AuditStore interface {
	// AppendAuditEvents stores events in order, assigning each its Seq, in one transaction.
	AppendAuditEvents(ctx context.Context, evs []*AuditEvent) error
	// AuditEvents returns events matching f, in log order.
	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}
