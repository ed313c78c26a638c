package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

const budgetColumns = `id, agent, tool, action, kind, limit_value, window_nanos, arg, updated_at`

func scanBudget(row scanner) (*warden.Budget, error) {
	var b warden.Budget
	var window int64
	err := row.Scan(&b.ID, &b.Agent, &b.Tool, &b.Action, &b.Kind, &b.Limit, &window, &b.Arg, timeColumn{&b.UpdatedAt})
	if err != nil {
		return nil, err
	}
	b.Window = time.Duration(window)
	return &b, nil
}

// finite reports whether f is a number that every backend keeps: SQLite stores NaN as NULL. No
// infinity or NaN is a limit or a use anyway.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// PutBudget creates or replaces the budget with b.ID. Replacing keeps the budget's counter, so
// that changing a limit does not forgive the use so far.
func (s *Store) PutBudget(ctx context.Context, b *warden.Budget) error {
	if b.ID == "" {
		return warden.Errorf(warden.EInvalid, "budget has no ID")
	}
	if !finite(b.Limit) {
		return warden.Errorf(warden.EInvalid, "budget %q has limit %v: it must be a finite number", b.ID, b.Limit)
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO budgets (`+budgetColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET agent = excluded.agent, tool = excluded.tool, action = excluded.action,
			kind = excluded.kind, limit_value = excluded.limit_value, window_nanos = excluded.window_nanos,
			arg = excluded.arg, updated_at = excluded.updated_at`,
		b.ID, b.Agent, b.Tool, b.Action, b.Kind, b.Limit, int64(b.Window), b.Arg, unixNanos(b.UpdatedAt))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// DeleteBudget removes the budget with the given ID and, with it, its counter.
func (s *Store) DeleteBudget(ctx context.Context, id string) error {
	n, err := s.exec(ctx, s.write, `DELETE FROM budgets WHERE id = ?`, id)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "budget %q not found", id)
	}
	return nil
}

// Budgets lists every budget, ordered by agent then ID.
func (s *Store) Budgets(ctx context.Context) ([]*warden.Budget, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+budgetColumns+` FROM budgets ORDER BY agent, id`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanBudget)
}

const budgetCounterColumns = `budget_id, window_start, used, tat, updated_at`

func scanBudgetCounter(row scanner) (*warden.BudgetCounter, error) {
	var c warden.BudgetCounter
	err := row.Scan(&c.BudgetID, timeColumn{&c.WindowStart}, &c.Used, timeColumn{&c.TAT}, timeColumn{&c.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// SaveBudgetCounters upserts cs in one transaction: all of them or, if one is invalid, none. A
// counter whose budget no longer exists is dropped rather than failing the others, because a
// budget may be deleted while its counter is on its way to the store, and deleting a budget
// deletes its counter.
func (s *Store) SaveBudgetCounters(ctx context.Context, cs []*warden.BudgetCounter) error {
	for _, c := range cs {
		switch {
		case c == nil:
			return warden.Errorf(warden.EInvalid, "budget counters hold a nil counter")
		case !finite(c.Used):
			return warden.Errorf(warden.EInvalid, "counter of budget %q has use %v: it must be a finite number", c.BudgetID, c.Used)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	// Two replicas saving the same counters lock them in one order, so neither waits for the
	// other in a deadlock. Of two counters for one budget the later still wins.
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(a, b *warden.BudgetCounter) int { return strings.Compare(a.BudgetID, b.BudgetID) })
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range cs {
			// Locking the budget's row keeps a concurrent DeleteBudget from removing it between
			// this check and the insert: the delete waits, then takes the counter with it.
			var id string
			err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT id FROM budgets WHERE id = ?`+s.dialect.ForUpdate),
				c.BudgetID).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return storeError(err)
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO budget_counters (`+budgetCounterColumns+`) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (budget_id) DO UPDATE SET window_start = excluded.window_start, used = excluded.used,
					tat = excluded.tat, updated_at = excluded.updated_at`,
				c.BudgetID, unixNanos(c.WindowStart), c.Used, unixNanos(c.TAT), unixNanos(c.UpdatedAt)); err != nil {
				return storeError(err)
			}
		}
		return nil
	})
}

// BudgetCounters lists every counter, ordered by budget ID.
func (s *Store) BudgetCounters(ctx context.Context) ([]*warden.BudgetCounter, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+budgetCounterColumns+` FROM budget_counters ORDER BY budget_id`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanBudgetCounter)
}
