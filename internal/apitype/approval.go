package apitype

import (
	"time"

	"github.com/wardenhq/warden"
)

// ApproveRequest approves a held call, with an optional note for the record.
type ApproveRequest struct {
	Note string `json:"note,omitempty"`
}

// RejectRequest rejects a held call; the reason is required and the agent is told it.
type RejectRequest struct {
	Reason string `json:"reason"`
}

// ApprovalView is an approval request as a person deciding it sees it: the request and, for
// context, what the agent did last in the same session.
type ApprovalView struct {
	*warden.Approval
	// Recent are the agent's last calls in the session (tool.call events of the audit log),
	// oldest first. Without a session they are the agent's last calls in any session.
	Recent []ApprovalAction `json:"recent"`
}

// ApprovalAction is one call of the agent, from the audit log.
type ApprovalAction struct {
	Time       time.Time `json:"time"`
	Tool       string    `json:"tool"`
	Action     string    `json:"action"`
	Resource   string    `json:"resource,omitempty"`
	Effect     string    `json:"effect"`
	Reason     string    `json:"reason,omitempty"`
	DecisionID string    `json:"decision_id,omitempty"`
}
