package admin

import (
	"context"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/budget"
)

// BudgetSpec declares one budget: the scope and a spec such as "rate 20/hour".
type BudgetSpec struct {
	Agent  string `json:"agent"`
	Tool   string `json:"tool,omitempty"`
	Action string `json:"action,omitempty"`
	Spec   string `json:"spec"`
}

// SetBudget creates or replaces a budget; it applies to the next call.
func (s *Service) SetBudget(ctx context.Context, p *warden.Principal, spec BudgetSpec) (*warden.Budget, error) {
	b, err := budget.ParseSpec(spec.Agent, spec.Tool, spec.Action, spec.Spec)
	if err != nil {
		return nil, err
	}
	if err := s.budgets.Put(ctx, b); err != nil {
		return nil, err
	}
	return b, s.event(ctx, p, warden.EventBudgetSet, "budget:"+b.ID, budget.Describe(b))
}

// DeleteBudget removes a budget.
func (s *Service) DeleteBudget(ctx context.Context, p *warden.Principal, id string) error {
	if err := s.budgets.Delete(ctx, id); err != nil {
		return err
	}
	return s.event(ctx, p, warden.EventBudgetDelete, "budget:"+id, "")
}

// BudgetStatus is one budget's use against its limit.
type BudgetStatus struct {
	*warden.Budget
	Description string    `json:"description"`
	Used        float64   `json:"used"`
	Remaining   float64   `json:"remaining"`
	ResetsAt    time.Time `json:"resets_at,omitzero"`
	RetryAfter  float64   `json:"retry_after_seconds,omitempty"`
}

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
