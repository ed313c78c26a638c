package warden

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
)

// Approval statuses. A request is pending until enough people approve it or someone rejects it;
// an approved request is used by exactly one call; a request nobody decides, or an approval
// nobody uses, expires.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
	ApprovalUsed     = "used"
	// ApprovalLimited is never stored: it is what waiting for an approval comes to when the
	// agent already has as many requests waiting as it may, so no request was made.
	ApprovalLimited = "limited"
)

// Why a call needs a person's approval.
const (
	ApprovalByPolicy = "policy" // a matching permit is @approval("required")
	ApprovalByTool   = "tool"   // the tool declares the action as needing approval
	ApprovalByRisk   = "risk"   // the tool's risk is high or critical and no policy waives approval
	// ApprovalByDetection: a detection finding holds the agent's matching calls for a person
	// for a while (the containment ladder's approve step, internal/detect).
	ApprovalByDetection = "detection"
)

// Approval is a request for a person's approval of exactly one call. It is bound to the call by
// Binding: the agent, its session, the person it acts for, the tool, action and resource, the
// digest of the arguments and the policy version. The same call sent again finds the same request; any other call does not.
type Approval struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Binding    string `json:"binding"`
	DecisionID string `json:"decision_id"` // the decision that asked first
	// Who asks.
	AgentID    string `json:"agent_id"`
	AgentName  string `json:"agent"`
	Owner      string `json:"owner"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	SessionID  string `json:"session_id,omitempty"`
	// What for.
	Tool          string          `json:"tool"`
	Action        string          `json:"action"`
	Resource      string          `json:"resource,omitempty"`
	Risk          Risk            `json:"risk"`
	ArgsSHA256    string          `json:"args_sha256,omitempty"`
	Arguments     json.RawMessage `json:"arguments,omitempty"` // redacted as in the audit log
	Reason        string          `json:"reason"`              // policy, tool or risk
	Policies      []string        `json:"policies,omitempty"`  // the policies that asked (policy) or allowed (tool, risk)
	PolicyVersion int64           `json:"policy_version"`
	// Flow is what the session had read when the call was decided, and which arguments came from
	// untrusted output and from which call's: what an approver needs to see when a policy asks
	// for approval because the session read untrusted text. nil when the session read nothing.
	Flow *FlowFacts `json:"flow,omitempty"`
	// Decisions.
	Required  int            `json:"required_approvals"` // distinct people who must approve
	Approvals []ApprovalVote `json:"approvals,omitempty"`
	// RejectedBy and Note say who rejected (a person's token name, or "system" for a kill,
	// suspension or lockdown) and why; for an approval, Note is the last approver's note.
	RejectedBy string    `json:"rejected_by,omitempty"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// ExpiresAt is when a pending request expires, and once approved, when the unused approval
	// does: each lasts the approval TTL from the moment it began.
	ExpiresAt time.Time `json:"expires_at"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// ApprovalVote is one person's approval.
type ApprovalVote struct {
	Name  string    `json:"name"` // the admin token
	Role  Role      `json:"role"`
	Email string    `json:"email,omitempty"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
}

// Open reports whether the request still waits for a decision or for its call.
func (a *Approval) Open() bool { return a.Status == ApprovalPending || a.Status == ApprovalApproved }

// ApprovalBinding is the digest that binds an approval to one call: hex SHA-256 over the agent,
// session, the person the agent acts for (RFC 8693 act; "" when it acts as itself), tool, action,
// resource, argument digest and policy version, each length-prefixed so that no two calls share
// an encoding. The person is bound because an approver approves a call for someone: the same
// call made for another person is another call, even in the same session.
func ApprovalBinding(agentID, sessionID, onBehalfOf, tool, action, resource, argsSHA256 string, policyVersion int64) string {
	h := sha256.New()
	for _, f := range []string{agentID, sessionID, onBehalfOf, tool, action, resource, argsSHA256, strconv.FormatInt(policyVersion, 10)} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ApprovalFilter selects approval requests. Zero fields match everything.
type ApprovalFilter struct {
	Statuses      []string
	AgentID       string
	ExpiresBefore time.Time // requests whose ExpiresAt is at or before this
	Limit         int       // 0 means a default; the store caps it
}

// ApprovalStore keeps approval requests.
type ApprovalStore interface {
	// CreateApproval stores a new request. Another open (pending or approved) request with the
	// same binding is EConflict: one call has one open request, however many replicas ask.
	CreateApproval(ctx context.Context, a *Approval) error
	// CreateApprovalLimited is CreateApproval unless the agent already has maxPending pending
	// requests that have not expired by a.CreatedAt: then it stores nothing and returns
	// ERateLimited. The count and the insert are atomic, so replicas asking at once cannot
	// together pass the limit.
	CreateApprovalLimited(ctx context.Context, a *Approval, maxPending int) error
	// Approval returns one request (ENotFound if none).
	Approval(ctx context.Context, id string) (*Approval, error)
	// ApprovalByBinding returns the newest request with the binding (ENotFound if none).
	ApprovalByBinding(ctx context.Context, binding string) (*Approval, error)
	// Approvals lists the requests matching f, oldest first.
	Approvals(ctx context.Context, f ApprovalFilter) ([]*Approval, error)
	// UpdateApproval applies fn to the current state of the request and stores the result in
	// one transaction, so that two people deciding at once, or a decision racing the call that
	// uses it, never lose one another. If fn returns an error nothing is written. fn must not
	// change the ID or the binding.
	UpdateApproval(ctx context.Context, id string, fn func(a *Approval) error) (*Approval, error)
}
