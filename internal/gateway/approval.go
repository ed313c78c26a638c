package gateway

import (
	"time"

	"github.com/wardenhq/warden"
)

// ApprovalReason says why a call that policy allowed still needs a person's approval, or "" if it
// does not:
//
//   - the tool declares the action as needing approval (warden.Tool.Approval): always, whatever
//     policy says, because the person who registered the tool asked for it;
//   - the action's risk (the tool's, or a decision-only tool's action's own) is high or
//     critical and no matching permit is @approval("waived").
//
// A call that policy sends to approval (@approval("required")) needs no second reason.
func ApprovalReason(t *warden.Tool, action string, d warden.Decision) string {
	switch {
	case t.NeedsApproval(action):
		return warden.ApprovalByTool
	case t.ActionRisk(action).Level() >= warden.RiskHigh.Level() && d.Reason != warden.ReasonApprovalWaived:
		return warden.ApprovalByRisk
	}
	return ""
}

// Holds says whether a detection finding holds an agent's calls of a tool and action, on a
// resource as the audit log records it, for a person (detect.Holds).
type Holds interface {
	Held(agent, tool, action, resource string, now time.Time) bool
}
