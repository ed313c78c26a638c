package admin

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/fleet"
)

// BudgetSpec is the wire type apitype.BudgetSpec; see there.
type BudgetSpec = apitype.BudgetSpec

// SetBudget creates or replaces a budget; it applies to the next call.
func (s *Service) SetBudget(ctx context.Context, p *warden.Principal, spec BudgetSpec) (*warden.Budget, error) {
	b, err := budget.ParseSpec(spec.Agent, spec.Tool, spec.Action, spec.Spec)
	if err != nil {
		return nil, err
	}
	if err := s.budgets.Put(ctx, b); err != nil {
		return nil, err
	}
	s.publish(ctx, fleet.TopicBudget, b.ID)
	return b, s.event(ctx, p, warden.EventBudgetSet, "budget:"+b.ID, budget.Describe(b))
}

// DeleteBudget removes a budget.
func (s *Service) DeleteBudget(ctx context.Context, p *warden.Principal, id string) error {
	if err := s.budgets.Delete(ctx, id); err != nil {
		return err
	}
	s.publish(ctx, fleet.TopicBudget, id)
	return s.event(ctx, p, warden.EventBudgetDelete, "budget:"+id, "")
}

// BudgetStatus is the wire type apitype.BudgetStatus; see there.
type BudgetStatus = apitype.BudgetStatus

// ShowBudgets returns an agent's budgets with their use now.
func (s *Service) ShowBudgets(ctx context.Context, agent string) ([]BudgetStatus, error) {
	if err := warden.ValidateName("agent", agent); err != nil {
		return nil, err
	}
	var out []BudgetStatus
	for _, st := range s.budgets.Show(agent, s.now()) {
		out = append(out, BudgetStatus{
			Budget: st.Budget, Description: budget.Describe(st.Budget), Used: st.Used, Remaining: st.Remaining,
			ResetsAt: st.ResetsAt, RetryAfter: st.RetryAfter.Seconds(),
		})
	}
	return out, nil
}
