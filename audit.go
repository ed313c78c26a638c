package warden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// AuditSchemaVersion is the version of the AuditEvent encoding; docs/audit.md describes it.
// Version 2 added the hash chain (seq in the hashed body, prev_hash, hash) and target.risk.
const AuditSchemaVersion = 2

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
	EventToolLabels       = "admin.tool.labels" // flow labels of a tool or an action set or unset
	EventSecretSet        = "admin.secret.set"
	EventSecretDelete     = "admin.secret.delete"
	EventPolicyApply      = "policy.apply"
	EventPolicyRollback   = "policy.rollback"
	EventBudgetSet        = "admin.budget.set"
	EventBudgetDelete     = "admin.budget.delete"
	EventApply            = "admin.apply"
	EventServerStart      = "system.start"

	// The kill switch.
	EventKillAgent    = "kill.agent"
	EventRestoreAgent = "kill.restore"
	EventLockdown     = "lockdown.start"
	EventLockdownLift = "lockdown.lift"
	EventQuarantine   = "kill.quarantine"
	EventAuditPrune   = "system.audit.prune" // retention deleted events up to a checkpoint
)

// Events of local MCP servers pinned from npm (tool add --npm).
const (
	// EventToolRefuse: an add refused, its npm package failing a check (integrity, provenance,
	// unsigned).
	EventToolRefuse = "admin.tool.refuse"
	// EventToolPackageRefused: a local MCP server did not start, its installed entry point not
	// the one pinned.
	EventToolPackageRefused = "tool.package_refused"
)

// Events that keep the audit log itself within bounds.
const (
	// EventTokenRefuseSummary counts the unauthenticated refusals over the recording limits
	// that were not recorded one by one (identity.RefusalLog); target.arguments has the counts.
	EventTokenRefuseSummary = "token.refuse.summary"
	// EventDiskLow: free space where the audit log is kept fell under audit.disk_warn_free;
	// EventDiskOK: it is back over it (audit.DiskGuard).
	EventDiskLow = "system.disk.low"
	EventDiskOK  = "system.disk.ok"
)

// Approval events: every step of a request for a person's approval (internal/approval).
const (
	EventApprovalRequested = "approval.requested" // a call waits for a person; the actor is the agent
	EventApprovalApproved  = "approval.approved"  // a person approved; the actor is that person
	EventApprovalRejected  = "approval.rejected"  // a person, or a kill, suspension or lockdown, rejected
	EventApprovalExpired   = "approval.expired"   // nobody decided in time, or nobody used the approval
	EventApprovalUsed      = "approval.used"      // the approved call went ahead; the approval is spent
)

// People's sign-in events (internal/people); the actor is the person, named by verified email.
const (
	EventPersonSignIn        = "person.sign_in"         // a person signed in (browser or CLI); a session began
	EventPersonSignInRefused = "person.sign_in_refused" // a sign-in was refused: unverified email, no role, a bad state or nonce
	EventPersonSignOut       = "person.sign_out"        // a person signed out; the session ended
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

// EffectAllows reports whether a decision of effect lets the call go ahead: policy allowed it,
// or a person approved it. Every other effect, and one warden does not know, refuses.
func EffectAllows(effect string) bool { return effect == EffectAllow || effect == EffectApproved }

// Outcome statuses.
const (
	StatusOK       = "ok"
	StatusError    = "error"
	StatusCanceled = "canceled"
)

// AuditEvent is one record of the audit log: who did what, under whose authority, what was
// decided and what came of it. docs/audit.md documents every field.
//
// The order of the fields is part of the format: the canonical encoding (AuditCanonical) that
// an event's hash covers is its JSON in this order, and Hash comes last so that an exported line
// is the canonical encoding with the hash member appended.
type AuditEvent struct {
	SchemaVersion int           `json:"schema_version"`
	ID            string        `json:"id"`  // sortable (ULID)
	Seq           int64         `json:"seq"` // position in the log, assigned by the store: 1, 2, 3, … without gaps
	Time          time.Time     `json:"time"`
	Type          string        `json:"type"`
	Actor         EventActor    `json:"actor"`
	Target        EventTarget   `json:"target,omitzero"`
	Decision      EventDecision `json:"decision,omitzero"`
	Outcome       EventOutcome  `json:"outcome,omitzero"`
	// Flow is what the session of a tool call had read and which arguments were tainted, as
	// policy saw it (tool.call events of the gateway).
	Flow     *FlowFacts `json:"flow,omitempty"`
	TraceID  string     `json:"trace_id,omitempty"`
	SpanID   string     `json:"span_id,omitempty"`
	PrevHash string     `json:"prev_hash,omitempty"` // Hash of the event at Seq-1; empty for the first
	Hash     string     `json:"hash,omitempty"`      // hex SHA-256 of the canonical encoding
}

// EventActor says who acted.
type EventActor struct {
	Kind       string `json:"kind"` // agent, human or system
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	Role       string `json:"role,omitempty"`  // for a person: the role of the admin token
	Email      string `json:"email,omitempty"` // for a person: the admin token's email, if it has one
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
	Risk       Risk            `json:"risk,omitempty"` // of the tool, or of the kind of event; see docs/audit.md
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
	// Errors are the policies that failed to evaluate, with their messages (Decision.Errors).
	Errors []PolicyError `json:"errors,omitempty"`
	// BudgetBurn is the largest share of one rate, quota or sum budget's limit the allowed call
	// took (0.25: a quarter of a limit); absent when no such budget covers it.
	BudgetBurn float64 `json:"budget_burn,omitempty"`
}

// EventOutcome says what came of an allowed action.
type EventOutcome struct {
	Status         string  `json:"status,omitempty"`
	UpstreamStatus int     `json:"upstream_status,omitempty"`
	LatencyMS      float64 `json:"latency_ms,omitempty"`
	BytesIn        int64   `json:"bytes_in,omitempty"`
	BytesOut       int64   `json:"bytes_out,omitempty"`
	RemoteAddr     string  `json:"remote_addr,omitempty"` // the address actually dialed (egress: after DNS and the range checks)
}

// AuditCanonical returns the canonical encoding of ev, the bytes its hash covers: the compact
// JSON of the event in field order, without the hash member, with no HTML escaping. The store
// keeps exactly these bytes, so verifying an event never depends on encoding it again.
func AuditCanonical(ev *AuditEvent) ([]byte, error) {
	c := *ev
	c.Hash = ""
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// AuditHash returns the hash of an event from its canonical encoding: hex SHA-256.
func AuditHash(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// AuditLine returns the JSON line that exports carry: the canonical encoding with
// `,"hash":"<hash>"` inserted before its closing brace. Removing that member gives back the
// canonical encoding, so anyone can check an exported event with SHA-256 alone.
func AuditLine(canonical []byte, hash string) []byte {
	line := make([]byte, 0, len(canonical)+len(hash)+10)
	line = append(line, canonical[:len(canonical)-1]...)
	line = append(line, `,"hash":"`...)
	line = append(line, hash...)
	return append(line, `"}`...)
}

// AuditRecord is an event as the store keeps it: the canonical encoding its hash covers, with
// the seq and hash the store indexes it by. Verification reads records, not decoded events, so
// that it checks the very bytes that were hashed.
type AuditRecord struct {
	Seq  int64
	Hash string
	Body []byte // the canonical encoding
	// Index is what the store keeps beside the body for search, nil if it keeps nothing.
	Index *AuditIndex
}

// AuditIndex is what a store keeps beside an event's body so that a search can use an index:
// copies of the fields AuditFilter selects on. Only the body is hashed, so a copy could be
// changed without breaking the chain — and an event whose actor_name no longer matches is one
// that `audit search --agent` misses. Verification therefore compares every copy with the body
// (AuditIndexOf) and reports the first that differs.
type AuditIndex struct {
	ID         string
	Time       int64 // Unix nanoseconds; 0 for the zero time
	Type       string
	ActorID    string
	ActorName  string
	Tool       string
	Action     string
	Effect     string
	SessionID  string
	OnBehalfOf string
	Risk       int // Target.Risk.Level()
}

// AuditIndexOf returns the copies a store keeps of ev: the one definition of them, used both to
// write them and to check them.
func AuditIndexOf(ev *AuditEvent) AuditIndex {
	var nanos int64
	if !ev.Time.IsZero() {
		nanos = ev.Time.UnixNano()
	}
	return AuditIndex{
		ID: ev.ID, Time: nanos, Type: ev.Type, ActorID: ev.Actor.ID, ActorName: ev.Actor.Name,
		Tool: ev.Target.Tool, Action: ev.Target.Action, Effect: ev.Decision.Effect,
		SessionID: ev.Actor.SessionID, OnBehalfOf: ev.Actor.OnBehalfOf, Risk: ev.Target.Risk.Level(),
	}
}

// AuditIndexDiff is a copy that differs from the body: the column that holds it (as the SQL
// stores name it), what the column holds and what the body says.
type AuditIndexDiff struct {
	Column       string
	Stored, Body string
}

// Diff returns the first of the stored copies that differs from the copies of the body (what
// AuditIndexOf gives for it); ok is false if none does.
func (stored AuditIndex) Diff(body AuditIndex) (d AuditIndexDiff, ok bool) {
	if stored == body {
		return d, false
	}
	for _, c := range []struct {
		column       string
		stored, body string
	}{
		{"id", stored.ID, body.ID},
		{"time", strconv.FormatInt(stored.Time, 10), strconv.FormatInt(body.Time, 10)},
		{"type", stored.Type, body.Type},
		{"actor_id", stored.ActorID, body.ActorID},
		{"actor_name", stored.ActorName, body.ActorName},
		{"tool", stored.Tool, body.Tool},
		{"action", stored.Action, body.Action},
		{"effect", stored.Effect, body.Effect},
		{"session_id", stored.SessionID, body.SessionID},
		{"on_behalf_of", stored.OnBehalfOf, body.OnBehalfOf},
		{"risk", strconv.Itoa(stored.Risk), strconv.Itoa(body.Risk)},
	} {
		if c.stored != c.body {
			return AuditIndexDiff{Column: c.column, Stored: c.stored, Body: c.body}, true
		}
	}
	return AuditIndexDiff{}, false
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
	// Resource is the target's resource, exact. No index holds it: the store reads it from
	// each event's body, so pair it with a Type (a detect.* finding's resource is agent:<name>).
	Resource  string
	MinRisk   Risk // events of at least this risk
	Since     time.Time
	Until     time.Time
	AfterSeq  int64
	BeforeSeq int64 // events before this seq (a page cursor going back in time); 0: no bound
	Limit     int   // 0 means a default; the store caps it
	Newest    bool  // the last Limit matching events rather than the first, still in log order
}

// AuditLog is where every decision and change of state is recorded. Append returns only once
// the event is durable; a caller that cannot record must not proceed.
type AuditLog interface {
	Append(ctx context.Context, ev *AuditEvent) error
}

// AuditStore keeps audit events as a hash chain. There is no way to change an event, and the
// only way to delete one is PruneAuditEvents, which keeps the rest verifiable.
type AuditStore interface {
	// AppendAuditEvents stores events in order in one transaction that extends the chain: each
	// is given the next Seq, the PrevHash of the event before it and its Hash. Appends from
	// several processes on one database take turns, so the chain never forks or skips a seq.
	AppendAuditEvents(ctx context.Context, evs []*AuditEvent) error
	// AuditEvents returns events matching f, in log order.
	AuditEvents(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
	// CountAuditEvents counts the events matching f, ignoring its Limit, AfterSeq and BeforeSeq
	// (the whole search a page is of), up to upTo: a count of upTo means "upTo or more".
	CountAuditEvents(ctx context.Context, f AuditFilter, upTo int64) (int64, error)
	// AuditHead returns the seq and hash of the newest event: 0 and "" for an empty log.
	AuditHead(ctx context.Context) (seq int64, hash string, err error)
	// ScanAuditRecords calls fn with every record after seq after, in seq order, until fn
	// returns an error, which ScanAuditRecords returns.
	ScanAuditRecords(ctx context.Context, after int64, fn func(*AuditRecord) error) error
	// PruneAuditEvents deletes the events up to and including seq through, which must be the
	// size of a stored checkpoint (the anchor verification starts from) and below the newest
	// event. It returns how many it deleted.
	PruneAuditEvents(ctx context.Context, through int64) (int, error)
}

// AuditCheckpoint is a signed statement of the log's size and head hash: a C2SP signed note
// (docs/audit.md) whose text is the tlog-checkpoint body.
type AuditCheckpoint struct {
	Size int64     `json:"size"`
	Hash string    `json:"hash"` // hex, the Hash of event Size
	Time time.Time `json:"time"`
	Note string    `json:"note"` // the signed note, as exported
}

// AuditKey is the Ed25519 key that signs checkpoints; its private half is sealed under the
// master key. Name is the key name of the signed notes, which is also the log's origin.
type AuditKey struct {
	Name      string    `json:"name"`
	Public    []byte    `json:"public_key"`
	Sealed    []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// AuditCheckpointStore keeps checkpoints and the keys that sign them.
type AuditCheckpointStore interface {
	// AddAuditCheckpoint stores a checkpoint. Another of the same size, signed by another
	// replica, is already as good: adding one then is no error and keeps the first.
	AddAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	// AuditCheckpoints returns every checkpoint, by size.
	AuditCheckpoints(ctx context.Context) ([]*AuditCheckpoint, error)
	// LatestAuditCheckpoint returns the largest checkpoint of at most atMost events (any size
	// when atMost is 0), ENotFound if there is none.
	LatestAuditCheckpoint(ctx context.Context, atMost int64) (*AuditCheckpoint, error)
	// CreateAuditKey stores a checkpoint key; a taken name is EConflict.
	CreateAuditKey(ctx context.Context, k *AuditKey) error
	// AuditKeys returns every checkpoint key, oldest first.
	AuditKeys(ctx context.Context) ([]*AuditKey, error)
}

// AuditCursorStore keeps how far each audit sink has delivered, so that a sink resumes after
// the last event it acknowledged, across restarts.
type AuditCursorStore interface {
	// AuditSinkCursor returns the seq of the last event the named sink acknowledged, 0 if none.
	AuditSinkCursor(ctx context.Context, sink string) (int64, error)
	// SaveAuditSinkCursor records that the named sink acknowledged every event up to seq.
	SaveAuditSinkCursor(ctx context.Context, sink string, seq int64) error
}
