package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// The shared budget ledger: the counters of budgets that several replicas consume at once, read
// and written in one transaction per call, and each replica's calls in flight per concurrency
// budget, counted while the replica's lease in budget_leases is renewed.

// StartBudgetLease registers replica's lease at now and forgets the calls in flight it recorded
// before: a replica starting up has none, whatever it held when it last stopped.
func (s *Store) StartBudgetLease(ctx context.Context, replica string, now time.Time) error {
	if replica == "" {
		return warden.Errorf(warden.EInvalid, "budget lease names no replica")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.upsertLease(ctx, tx, replica, now); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM budget_inflight WHERE replica = ?`, replica); err != nil {
			return storeError(err)
		}
		return nil
	})
}

// RenewBudgetLease records that replica is alive at now and deletes the leases of other replicas
// not renewed since forgetBefore, and with them their calls in flight. Leases that have merely run
// out are kept, so that a replica cut off from the store for a while finds its calls in flight
// counted again when it comes back.
func (s *Store) RenewBudgetLease(ctx context.Context, replica string, now, forgetBefore time.Time) error {
	if replica == "" {
		return warden.Errorf(warden.EInvalid, "budget lease names no replica")
	}
	if err := s.upsertLease(ctx, s.write, replica, now); err != nil {
		return err
	}
	if _, err := s.exec(ctx, s.write, `DELETE FROM budget_leases WHERE renewed_at < ? AND replica <> ?`,
		boundNanos(forgetBefore), replica); err != nil {
		return storeError(err)
	}
	return nil
}

func (s *Store) upsertLease(ctx context.Context, q querier, replica string, now time.Time) error {
	_, err := s.exec(ctx, q, `INSERT INTO budget_leases (replica, renewed_at) VALUES (?, ?)
		ON CONFLICT (replica) DO UPDATE SET renewed_at = excluded.renewed_at`, replica, unixNanos(now))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// BudgetCharge is what one call takes from the shared budgets it consumes: the counters to save and
// the concurrency budgets of which it takes a slot on the consuming replica. OK false takes nothing.
type BudgetCharge = func(cs []*warden.BudgetCounter, inflight []int) (save []*warden.BudgetCounter, hold []string, ok bool)

// ConsumeBudgets runs one call's charge against the budgets ids, all or none, in one transaction.
// It locks the budgets' rows in ID order, so that two replicas charging the same budgets wait for
// each other instead of deadlocking, then reads their counters (a budget never charged has one of
// zero use, a budget no longer stored has nil), in the order of ids, and the calls in flight of each on replicas whose
// lease was renewed at or after live, and gives them to charge. If charge returns ok, the counters
// it returns are saved and replica's calls in flight of the budgets in hold go up by one, before
// the transaction commits.
func (s *Store) ConsumeBudgets(ctx context.Context, replica string, ids []string, live time.Time, charge BudgetCharge) error {
	if len(ids) == 0 {
		return nil
	}
	order := slices.Compact(slices.Sorted(slices.Values(ids)))
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// The lock is a statement of its own: at READ COMMITTED a statement that waited for a
		// lock still reads the other tables as they were when it began, so the counters must be
		// read by a later statement, which sees what the previous holder committed.
		if err := s.lockBudgets(ctx, tx, order); err != nil {
			return err
		}
		cs, inflight, err := s.budgetUse(ctx, tx, ids, live)
		if err != nil {
			return err
		}
		save, hold, ok := charge(cs, inflight)
		if !ok {
			return nil // nothing written: the deferred rollback ends the transaction
		}
		if err := s.saveCharged(ctx, tx, save); err != nil {
			return err
		}
		return s.hold(ctx, tx, replica, hold)
	})
}

func (s *Store) lockBudgets(ctx context.Context, tx *sql.Tx, ids []string) error {
	rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT id FROM budgets WHERE id IN (`+placeholders(len(ids))+`) ORDER BY id`+
		s.dialect.ForUpdate), anys(ids)...)
	if err != nil {
		return storeError(err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return storeError(err)
	}
	return nil
}

// BudgetUse reads the counters of the budgets ids, and their calls in flight on replicas whose
// lease was renewed at or after live, in the order of ids: a budget never charged has a counter
// of zero use, one not stored a nil counter.
func (s *Store) BudgetUse(ctx context.Context, ids []string, live time.Time) ([]*warden.BudgetCounter, []int, error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	return s.budgetUse(ctx, s.read, ids, live)
}

func (s *Store) budgetUse(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, ids []string, live time.Time) ([]*warden.BudgetCounter, []int, error) {
	args := append([]any{boundNanos(live)}, anys(ids)...)
	rows, err := q.QueryContext(ctx, s.dialect.rebind(`SELECT b.id, c.window_start, c.used, c.tat, c.updated_at,
			(SELECT CAST(COALESCE(SUM(i.n), 0) AS BIGINT) FROM budget_inflight i
				JOIN budget_leases l ON l.replica = i.replica
				WHERE i.budget_id = b.id AND l.renewed_at >= ?)
		FROM budgets b LEFT JOIN budget_counters c ON c.budget_id = b.id
		WHERE b.id IN (`+placeholders(len(ids))+`)`), args...)
	if err != nil {
		return nil, nil, storeError(err)
	}
	defer rows.Close()
	found := map[string]int{}
	for i, id := range ids {
		found[id] = i
	}
	cs := make([]*warden.BudgetCounter, len(ids))
	inflight := make([]int, len(ids))
	for rows.Next() {
		var (
			c    warden.BudgetCounter
			used sql.NullFloat64
			n    int64
		)
		if err := rows.Scan(&c.BudgetID, timeColumn{&c.WindowStart}, &used, timeColumn{&c.TAT}, timeColumn{&c.UpdatedAt}, &n); err != nil {
			return nil, nil, storeError(err)
		}
		c.Used = used.Float64
		i, ok := found[c.BudgetID]
		if !ok {
			continue
		}
		cs[i], inflight[i] = &c, int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, storeError(err)
	}
	return cs, inflight, nil
}

// saveCharged upserts the counters a charge changed, in one statement.
func (s *Store) saveCharged(ctx context.Context, tx *sql.Tx, cs []*warden.BudgetCounter) error {
	if len(cs) == 0 {
		return nil
	}
	values := make([]string, len(cs))
	args := make([]any, 0, 5*len(cs))
	for i, c := range cs {
		if c == nil || !finite(c.Used) {
			return warden.Errorf(warden.EInvalid, "a charged budget counter is missing or not a finite number")
		}
		values[i] = "(?, ?, ?, ?, ?)"
		args = append(args, c.BudgetID, unixNanos(c.WindowStart), c.Used, unixNanos(c.TAT), unixNanos(c.UpdatedAt))
	}
	_, err := s.exec(ctx, tx, `INSERT INTO budget_counters (`+budgetCounterColumns+`) VALUES `+strings.Join(values, ", ")+`
		ON CONFLICT (budget_id) DO UPDATE SET window_start = excluded.window_start, used = excluded.used,
			tat = excluded.tat, updated_at = excluded.updated_at`, args...)
	if err != nil {
		return storeError(err)
	}
	return nil
}

// hold counts one more call in flight on replica for each budget in ids, in ID order.
func (s *Store) hold(ctx context.Context, tx *sql.Tx, replica string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	ids = slices.Sorted(slices.Values(ids))
	values := make([]string, len(ids))
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		values[i] = "(?, ?, 1)"
		args = append(args, id, replica)
	}
	_, err := s.exec(ctx, tx, `INSERT INTO budget_inflight (budget_id, replica, n) VALUES `+strings.Join(values, ", ")+`
		ON CONFLICT (budget_id, replica) DO UPDATE SET n = budget_inflight.n + 1`, args...)
	if err != nil {
		return storeError(err)
	}
	return nil
}

// ReleaseBudgets ends calls in flight on replica: held maps a budget's ID to how many of its slots
// to give back. A count never goes below zero, so a release that arrives twice, or after the
// replica's calls were forgotten, frees no slot that another call holds.
func (s *Store) ReleaseBudgets(ctx context.Context, replica string, held map[string]int) error {
	if len(held) == 0 {
		return nil
	}
	ids := make([]string, 0, len(held))
	for id, n := range held {
		if n < 0 {
			return warden.Errorf(warden.EInvalid, "release of %d calls of budget %q: the count must not be negative", n, id)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids) // the order ConsumeBudgets locks them in
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := s.exec(ctx, tx, `UPDATE budget_inflight SET n = CASE WHEN n > ? THEN n - ? ELSE 0 END
				WHERE budget_id = ? AND replica = ?`, held[id], held[id], id, replica); err != nil {
				return storeError(err)
			}
		}
		return nil
	})
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
