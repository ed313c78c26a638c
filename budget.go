package warden

import (
	"context"
	"time"
)

// Budget kinds.
const (
	BudgetRate        = "rate"        // at most Limit calls per Window, smoothed
	BudgetQuota       = "quota"       // at most Limit calls per calendar Window (UTC day)
	BudgetConcurrency = "concurrency" // at most Limit calls in flight
	BudgetSum         = "sum"         // the sum of argument Arg over a calendar Window at most Limit
)

// Budget limits what one agent may do: all its calls, the calls to one tool, or one action.
type Budget struct {
	ID        string        `json:"id"` // derived from the scope and kind, so declaring it again replaces it
	Agent     string        `json:"agent"`
	Tool      string        `json:"tool,omitempty"`   // "" means every tool
	Action    string        `json:"action,omitempty"` // "" means every action of Tool
	Kind      string        `json:"kind"`
	Limit     float64       `json:"limit"`
	Window    time.Duration `json:"window,omitempty"` // a second, minute, hour or day; none for concurrency
	Arg       string        `json:"arg,omitempty"`    // for sum: the argument summed
	UpdatedAt time.Time     `json:"updated_at"`
}

// BudgetCounter is the persisted state of one budget's counter, so use survives a restart.
type BudgetCounter struct {
	BudgetID    string    `json:"budget_id"`
	WindowStart time.Time `json:"window_start"` // quota and sum: the window the use belongs to
	Used        float64   `json:"used"`
	// TAT is the theoretical arrival time of the rate limiter (GCRA).
	TAT       time.Time `json:"tat,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// BudgetStore keeps budgets and their counters.
type BudgetStore interface {
	// PutBudget creates or replaces the budget with b.ID.
	PutBudget(ctx context.Context, b *Budget) error
	DeleteBudget(ctx context.Context, id string) error
	// Budgets lists every budget, ordered by agent then ID.
	Budgets(ctx context.Context) ([]*Budget, error)
	// SaveBudgetCounters upserts counters in one transaction.
	SaveBudgetCounters(ctx context.Context, cs []*BudgetCounter) error
	BudgetCounters(ctx context.Context) ([]*BudgetCounter, error)
}
