package apitype

import (
	"encoding/json"

	"github.com/wardenhq/warden"
)

// AuthorizeRequest is the body of POST /v1/authorize: a framework that runs tools in-process asks
// before it acts.
type AuthorizeRequest struct {
	Tool        string          `json:"tool"`
	Action      string          `json:"action"`
	Resource    string          `json:"resource,omitempty"`
	Arguments   json.RawMessage `json:"arguments,omitempty"`
	Traceparent string          `json:"traceparent,omitempty"`
	// Session names the agent's session for flow facts (context.session, context.taint): up to
	// 128 printable ASCII characters; "" is the token's sid.
	Session string `json:"session,omitempty"`
	// Hold is how long, in seconds, a call that needs a person's approval waits for one before
	// the answer: only 0 — answer at once, approval_required with the pending request's id — is
	// accepted. Omitted: up to the server's approvals.hold.
	Hold *int `json:"hold,omitempty"`
}

// AuthorizeResponse is the answer: the decision, which the caller must obey, and for an allow
// the decision id to report the outcome against.
type AuthorizeResponse struct {
	warden.Decision
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
	Traceparent       string `json:"traceparent,omitempty"`
	// ApprovalID is the approval request the call waited on, when it needed a person's
	// approval: pending, approved, rejected or expired as the decision says.
	ApprovalID string `json:"approval_id,omitempty"`
}

// OutcomeRequest is the body of POST /v1/decisions/{id}/outcome.
type OutcomeRequest struct {
	Status         string  `json:"status"` // ok, error or canceled
	UpstreamStatus int     `json:"upstream_status,omitempty"`
	LatencyMS      float64 `json:"latency_ms,omitempty"`
	BytesIn        int64   `json:"bytes_in,omitempty"`
	BytesOut       int64   `json:"bytes_out,omitempty"`
	RemoteAddr     string  `json:"remote_addr,omitempty"` // IP:port actually dialed, for egress decisions
	// Content is the result the tool returned, when the framework ran it itself: a JSON string
	// (text) or any JSON value. Warden observes it by the action's flow labels, as it observes
	// what it relays on /mcp and /http, so that later calls of the session see what it read.
	Content json.RawMessage `json:"content,omitempty"`
}
