package budget

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// SharedStore keeps the counters of budgets that several replicas consume at once, on one
// PostgreSQL database. sqlstore implements it on both backends.
type SharedStore interface {
	warden.BudgetStore
	// StartBudgetLease registers the replica's lease at now and forgets the calls in flight it
	// recorded before it (re)started.
	StartBudgetLease(ctx context.Context, replica string, now time.Time) error
	// RenewBudgetLease records that the replica is alive at now and deletes the leases, and calls
	// in flight, of replicas not renewed since forgetBefore.
	RenewBudgetLease(ctx context.Context, replica string, now, forgetBefore time.Time) error
	// ConsumeBudgets runs charge, in one transaction that locks the budgets ids in ID order, on
	// their counters (nil for a budget not stored) and on their calls in flight on replicas whose
	// lease was renewed at or after live. If charge says ok, the counters it returns are saved and
	// the replica holds one more slot of each budget in hold; otherwise nothing is written.
	ConsumeBudgets(ctx context.Context, replica string, ids []string, live time.Time,
		charge func(cs []*warden.BudgetCounter, inflight []int) (save []*warden.BudgetCounter, hold []string, ok bool)) error
	// ReleaseBudgets gives back the replica's slots: held maps a budget's ID to a count.
	ReleaseBudgets(ctx context.Context, replica string, held map[string]int) error
	// BudgetUse reads what ConsumeBudgets gives charge, without locking or writing.
	BudgetUse(ctx context.Context, ids []string, live time.Time) ([]*warden.BudgetCounter, []int, error)
}

const (
	// defaultLease is how long a replica's calls in flight count after it last renewed its lease.
	// A replica renews every FlushInterval (1 s), so ten intervals ride out a slow store; a replica
	// that dies holding concurrency slots gives them back this long after its last renewal.
	defaultLease = 10 * time.Second
	// forgetLease is how long after its last renewal a replica's lease, and its calls in flight,
	// are deleted for good, so that replicas come and go without leaving rows behind.
	forgetLease = time.Hour
	// defaultStoreTimeout bounds one consume or release against the store. The call waits that
	// long at most, then is denied (fail closed).
	defaultStoreTimeout = 5 * time.Second
)

// sharedLedger charges calls against counters in the store, one transaction per call, so that
// replicas sharing the store share the budgets exactly.
type sharedLedger struct {
	store   SharedStore
	replica string
	lease   time.Duration
	timeout time.Duration

	mu sync.Mutex
	// owed counts the slots whose release failed to reach the store, by budget ID; the next lease
	// renewal gives them back. Guarded by mu.
	owed map[string]int
}

// consume is Consume for a fleet: the declarations are this replica's, the counters the store's.
// A call no budget covers does not touch the store.
func (s *sharedLedger) consume(ctx context.Context, a *agentLedger, u *Usage, now int64) (func(), float64, *Denial, error) {
	sets, ids := a.declarations(u.Tool, u.Action)
	if len(ids) == 0 {
		return noRelease, 0, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var (
		held   [3]*limiter
		burn   float64
		denial *Denial
		err    error
	)
	live := time.Unix(0, now).Add(-s.lease)
	serr := s.store.ConsumeBudgets(ctx, s.replica, ids, live, func(cs []*warden.BudgetCounter, inflight []int) ([]*warden.BudgetCounter, []string, bool) {
		stored := load(sets, cs, inflight, now)
		held, burn, denial, err = charge(stored, u, now)
		if denial != nil || err != nil {
			return nil, nil, false
		}
		return counters(stored, time.Unix(0, now).UTC()), heldIDs(held), true
	})
	if serr != nil {
		return nil, 0, nil, warden.WrapError(warden.EUnavailable, "budgets can't be checked", fmt.Errorf("consume shared budgets: %w", serr))
	}
	if denial != nil || err != nil {
		return nil, 0, denial, err
	}
	ids = heldIDs(held)
	if len(ids) == 0 {
		return noRelease, burn, nil, nil
	}
	var done atomic.Bool
	return func() {
		if !done.Swap(true) {
			s.release(ids)
		}
	}, burn, nil, nil
}

// declarations copies the agent's budgets that apply to a call, with empty counters, and lists
// their IDs. The copies are the call's own: the store's counters are loaded into them outside the
// agent's mutex.
func (a *agentLedger) declarations(tool, action string) (sets [3][]*limiter, ids []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, set := range a.scopes.applicable(tool, action) {
		for _, l := range set {
			c := newLimiter(l.bud)
			c.broken = l.broken
			sets[i] = append(sets[i], c)
			ids = append(ids, l.bud.ID)
		}
	}
	return sets, ids
}

// load sets the counters of sets from the store's (cs and inflight, in the order of sets'
// limiters), and leaves out the budgets the store no longer has: another replica deleted them,
// and this one has yet to hear of it.
func load(sets [3][]*limiter, cs []*warden.BudgetCounter, inflight []int, now int64) [3][]*limiter {
	var out [3][]*limiter
	i := 0
	for k, set := range sets {
		for _, l := range set {
			c, n := cs[i], inflight[i]
			i++
			if c == nil {
				continue
			}
			if l.broken == "" {
				// A counter that can't be right is read as used up (see restore), which is all
				// there is to do about it here: the next charge that fits overwrites it.
				l.restore(c, time.Unix(0, now))
				l.inflight = n
			}
			out[k] = append(out[k], l)
		}
	}
	return out
}

// counters are the persisted forms of the counters a charge changed.
func counters(sets [3][]*limiter, updated time.Time) []*warden.BudgetCounter {
	var out []*warden.BudgetCounter
	for _, set := range sets {
		for _, l := range set {
			if c, ok := l.counter(updated); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

func heldIDs(held [3]*limiter) []string {
	var ids []string
	for _, l := range held {
		if l != nil {
			ids = append(ids, l.bud.ID)
		}
	}
	return ids
}

// release gives back a call's slots. When the store can't be reached they are owed, and the next
// lease renewal gives them back; until then they count as taken, which refuses calls rather than
// allowing too many.
func (s *sharedLedger) release(ids []string) {
	held := map[string]int{}
	for _, id := range ids {
		held[id]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.store.ReleaseBudgets(ctx, s.replica, held); err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, n := range held {
			s.owed[id] += n
		}
	}
}

// renew records that this replica is alive and pays the releases it owes.
func (s *sharedLedger) renew(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	owed := s.owed
	s.owed = map[string]int{}
	s.mu.Unlock()
	err := s.store.ReleaseBudgets(ctx, s.replica, owed)
	if err != nil {
		s.mu.Lock()
		for id, n := range owed {
			s.owed[id] += n
		}
		s.mu.Unlock()
		err = fmt.Errorf("release %d budgets' slots: %w", len(owed), err)
	}
	if rerr := s.store.RenewBudgetLease(ctx, s.replica, now, now.Add(-forgetLease)); rerr != nil && err == nil {
		err = fmt.Errorf("renew budget lease: %w", rerr)
	}
	return err
}

// carryOver rewrites a budget's stored counter for its new limit or window, as reconfigure does
// a counter in memory, so that a shared budget declared again keeps what it has used in the same
// terms: a rate the calls in its bucket (the store keeps an arrival time, which depends on the
// rate), a quota or sum its use unless the window's length changed.
func (s *sharedLedger) carryOver(ctx context.Context, old, nb *warden.Budget, now int64) error {
	if old.Kind == warden.BudgetConcurrency || validate(old) != nil {
		return nil // nothing stored to carry over, or nothing to read it by
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	at := time.Unix(0, now)
	return s.store.ConsumeBudgets(ctx, s.replica, []string{nb.ID}, at, func(cs []*warden.BudgetCounter, _ []int) ([]*warden.BudgetCounter, []string, bool) {
		if cs[0] == nil {
			return nil, nil, false
		}
		l := newLimiter(old)
		l.restore(cs[0], at)
		l.reconfigure(nb, now)
		c, ok := l.counter(at.UTC())
		return []*warden.BudgetCounter{c}, nil, ok
	})
}

// show reports the state of the agent's budgets from the store's counters.
func (s *sharedLedger) show(ctx context.Context, a *agentLedger, now int64) ([]Status, error) {
	a.mu.Lock()
	ls := make([]*limiter, 0, len(a.byID))
	for _, l := range a.byID {
		c := newLimiter(l.bud)
		c.broken = l.broken
		ls = append(ls, c)
	}
	a.mu.Unlock()
	sortLimiters(ls)
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.bud.ID
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cs, inflight, err := s.store.BudgetUse(ctx, ids, time.Unix(0, now).Add(-s.lease))
	if err != nil {
		return nil, err
	}
	stored := load([3][]*limiter{ls}, cs, inflight, now)[0]
	out := make([]Status, len(stored))
	for i, l := range stored {
		out[i] = l.status(now)
	}
	return out, nil
}
