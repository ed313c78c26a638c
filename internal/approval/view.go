package approval

import (
	"context"
	"slices"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// recentActions is how many of the agent's latest calls a person sees next to a request.
const recentActions = 10

// Request is the wire type apitype.ApprovalView; see there.
type Request = apitype.ApprovalView

// Action is the wire type apitype.ApprovalAction; see there.
type Action = apitype.ApprovalAction

// ListStatuses are the values List accepts: a status, "open" (pending or approved, not yet
// used) or "all".
var ListStatuses = []string{
	warden.ApprovalPending, warden.ApprovalApproved, warden.ApprovalRejected, warden.ApprovalExpired, warden.ApprovalUsed, "open", "all",
}

// List returns the requests with the given status ("" means pending), oldest first, each with
// the agent's recent actions.
func (s *Service) List(ctx context.Context, status string) ([]*Request, error) {
	if status == "" {
		status = warden.ApprovalPending
	}
	if !slices.Contains(ListStatuses, status) {
		return nil, warden.Errorf(warden.EInvalid, "unknown status %q: use pending, approved, rejected, expired, used, open or all", status)
	}
	f := warden.ApprovalFilter{Statuses: []string{status}}
	switch status {
	case "open":
		f.Statuses = []string{warden.ApprovalPending, warden.ApprovalApproved}
	case "all":
		f.Statuses = nil
	}
	list, err := s.store.Approvals(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]*Request, 0, len(list))
	for _, a := range list {
		r, err := s.withContext(ctx, a)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Get returns one request with the agent's recent actions.
func (s *Service) Get(ctx context.Context, id string) (*Request, error) {
	a, err := s.store.Approval(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.withContext(ctx, a)
}

func (s *Service) withContext(ctx context.Context, a *warden.Approval) (*Request, error) {
	evs, err := s.store.AuditEvents(ctx, warden.AuditFilter{
		Agent: a.AgentID, SessionID: a.SessionID, Type: warden.EventToolCall, Limit: recentActions, Newest: true,
	})
	if err != nil {
		return nil, err
	}
	r := &Request{Approval: a, Recent: make([]Action, 0, len(evs))}
	for _, ev := range evs {
		r.Recent = append(r.Recent, Action{
			Time: ev.Time, Tool: ev.Target.Tool, Action: ev.Target.Action, Resource: ev.Target.Resource,
			Effect: ev.Decision.Effect, Reason: ev.Decision.Reason, DecisionID: ev.Decision.ID,
		})
	}
	return r, nil
}
