package storetest

import (
	"context"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// sharedBudgetStore is the store of the shared budget ledger, as package budget declares it
// (budget.SharedStore); both backends implement it, though only PostgreSQL serves several replicas.
type sharedBudgetStore interface {
	warden.Store
	StartBudgetLease(ctx context.Context, replica string, now time.Time) error
	RenewBudgetLease(ctx context.Context, replica string, now, forgetBefore time.Time) error
	ConsumeBudgets(ctx context.Context, replica string, ids []string, live time.Time,
		charge func(cs []*warden.BudgetCounter, inflight []int) (save []*warden.BudgetCounter, hold []string, ok bool)) error
	ReleaseBudgets(ctx context.Context, replica string, held map[string]int) error
	BudgetUse(ctx context.Context, ids []string, live time.Time) ([]*warden.BudgetCounter, []int, error)
}

var budgetLedgerTests = []storeTest{
	{"ConsumeReadsSavesAndHolds", testConsumeBudgets},
	{"ConsumeAllOrNone", testConsumeBudgetsAllOrNone},
	{"ConsumeConcurrentlyExact", testConsumeBudgetsConcurrently},
	{"InFlightCountsLiveLeases", testBudgetLeases},
	{"Release", testReleaseBudgets},
}

func sharedStore(t *testing.T, s warden.Store) sharedBudgetStore {
	t.Helper()
	ss, ok := s.(sharedBudgetStore)
	if !ok {
		t.Fatalf("%T does not keep shared budget counters", s)
	}
	return ss
}

func startLease(t *testing.T, s sharedBudgetStore, replica string, now time.Time) {
	t.Helper()
	if err := s.StartBudgetLease(t.Context(), replica, now); err != nil {
		t.Fatalf("StartBudgetLease(%s): %v", replica, err)
	}
}

// use reads the counters and calls in flight of ids, live at live.
func use(t *testing.T, s sharedBudgetStore, live time.Time, ids ...string) ([]*warden.BudgetCounter, []int) {
	t.Helper()
	cs, inflight, err := s.BudgetUse(t.Context(), ids, live)
	if err != nil {
		t.Fatal(err)
	}
	return cs, inflight
}

// consumeOne charges one call of limit at most against the quota budget id and holds a slot of
// hold, if given; it reports whether the call was allowed.
func consumeOne(ctx context.Context, s sharedBudgetStore, replica, id string, limit float64, hold ...string) (bool, error) {
	allowed := false
	err := s.ConsumeBudgets(ctx, replica, append([]string{id}, hold...), base, func(cs []*warden.BudgetCounter, _ []int) ([]*warden.BudgetCounter, []string, bool) {
		if cs[0].Used+1 > limit {
			return nil, nil, false
		}
		allowed = true
		c := *cs[0]
		c.Used++
		c.WindowStart = base.Truncate(24 * time.Hour)
		return []*warden.BudgetCounter{&c}, hold, true
	})
	return allowed, err
}

func testConsumeBudgets(t *testing.T, s warden.Store) {
	ss := sharedStore(t, s)
	putBudget(t, s, newBudget("bud-quota", "triage-bot"))
	putBudget(t, s, &warden.Budget{ID: "bud-conc", Agent: "triage-bot", Kind: warden.BudgetConcurrency, Limit: 2})
	startLease(t, ss, "replica-a", base)

	var seen []*warden.BudgetCounter
	var seenInflight []int
	err := ss.ConsumeBudgets(t.Context(), "replica-a", []string{"bud-quota", "gone", "bud-conc"}, base,
		func(cs []*warden.BudgetCounter, inflight []int) ([]*warden.BudgetCounter, []string, bool) {
			seen, seenInflight = cs, inflight
			return []*warden.BudgetCounter{newCounter("bud-quota", 1)}, []string{"bud-conc"}, true
		})
	if err != nil {
		t.Fatal(err)
	}
	// In the order asked: a budget never charged has a counter of zero use, one not stored none.
	wantEqual(t, "counters given to charge", seen, []*warden.BudgetCounter{{BudgetID: "bud-quota"}, nil, {BudgetID: "bud-conc"}})
	wantEqual(t, "calls in flight given to charge", seenInflight, []int{0, 0, 0})

	cs, inflight := use(t, ss, base, "bud-conc", "bud-quota")
	wantEqual(t, "counters after the charge", cs, []*warden.BudgetCounter{{BudgetID: "bud-conc"}, counterInUTC(newCounter("bud-quota", 1))})
	wantEqual(t, "calls in flight after the charge", inflight, []int{1, 0})
	wantEqual(t, "counters listed", budgetCounters(t, s), []*warden.BudgetCounter{counterInUTC(newCounter("bud-quota", 1))})

	// A replica starting again forgets its own calls in flight, and no other's.
	startLease(t, ss, "replica-b", base)
	if _, err := consumeOne(t.Context(), ss, "replica-b", "bud-quota", 100, "bud-conc"); err != nil {
		t.Fatal(err)
	}
	startLease(t, ss, "replica-a", base)
	if _, inflight := use(t, ss, base, "bud-conc"); inflight[0] != 1 {
		t.Fatalf("calls in flight after replica-a restarted = %d, want replica-b's 1", inflight[0])
	}
}

func testConsumeBudgetsAllOrNone(t *testing.T, s warden.Store) {
	ss := sharedStore(t, s)
	putBudget(t, s, newBudget("bud-quota", "triage-bot"))
	putBudget(t, s, &warden.Budget{ID: "bud-conc", Agent: "triage-bot", Kind: warden.BudgetConcurrency, Limit: 2})
	startLease(t, ss, "replica-a", base)
	ids := []string{"bud-quota", "bud-conc"}

	refuse := func([]*warden.BudgetCounter, []int) ([]*warden.BudgetCounter, []string, bool) {
		return []*warden.BudgetCounter{newCounter("bud-quota", 7)}, []string{"bud-conc"}, false
	}
	if err := ss.ConsumeBudgets(t.Context(), "replica-a", ids, base, refuse); err != nil {
		t.Fatal(err)
	}
	// The counter saves, then the hold fails (replica-x has no lease): neither stays.
	failLate := func([]*warden.BudgetCounter, []int) ([]*warden.BudgetCounter, []string, bool) {
		return []*warden.BudgetCounter{newCounter("bud-quota", 7)}, []string{"bud-conc"}, true
	}
	if err := ss.ConsumeBudgets(t.Context(), "replica-x", ids, base, failLate); err == nil {
		t.Fatal("held a slot for a replica without a lease")
	}
	bad := func([]*warden.BudgetCounter, []int) ([]*warden.BudgetCounter, []string, bool) {
		return []*warden.BudgetCounter{newCounter("bud-quota", math.NaN())}, nil, true
	}
	wantCode(t, ss.ConsumeBudgets(t.Context(), "replica-a", ids, base, bad), warden.EInvalid)

	cs, inflight := use(t, ss, base, ids...)
	wantEqual(t, "counters after charges that took nothing", cs, []*warden.BudgetCounter{{BudgetID: "bud-quota"}, {BudgetID: "bud-conc"}})
	wantEqual(t, "calls in flight after charges that took nothing", inflight, []int{0, 0})
}

// testConsumeBudgetsConcurrently charges one quota of 5 from 40 callers on 3 replicas at once:
// the store must serialise the read-check-write of each, so that exactly 5 get through.
func testConsumeBudgetsConcurrently(t *testing.T, s warden.Store) {
	ss := sharedStore(t, s)
	putBudget(t, s, newBudget("bud-quota", "triage-bot"))
	replicas := []string{"replica-a", "replica-b", "replica-c"}
	for _, r := range replicas {
		startLease(t, ss, r, base)
	}
	var allowed atomic.Int64
	err := concurrently(40, func(i int) error {
		ok, err := consumeOne(t.Context(), ss, replicas[i%3], "bud-quota", 5)
		if ok {
			allowed.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d calls allowed by a quota of 5, want 5", n)
	}
	if cs, _ := use(t, ss, base, "bud-quota"); cs[0].Used != 5 {
		t.Fatalf("stored use %v, want 5", cs[0].Used)
	}
}

func testBudgetLeases(t *testing.T, s warden.Store) {
	ss := sharedStore(t, s)
	putBudget(t, s, &warden.Budget{ID: "bud-conc", Agent: "triage-bot", Kind: warden.BudgetConcurrency, Limit: 5})
	putBudget(t, s, newBudget("bud-quota", "triage-bot"))
	startLease(t, ss, "replica-a", base)
	startLease(t, ss, "replica-b", base.Add(time.Second))
	for _, r := range []string{"replica-a", "replica-b", "replica-b"} {
		if _, err := consumeOne(t.Context(), ss, r, "bud-quota", 100, "bud-conc"); err != nil {
			t.Fatal(err)
		}
	}
	inflightAt := func(live time.Time) int {
		_, n := use(t, ss, live, "bud-conc")
		return n[0]
	}
	if n := inflightAt(base); n != 3 {
		t.Fatalf("calls in flight with both leases live = %d, want 3", n)
	}
	// replica-a's lease, renewed at base, has run out for a reader that wants base+1ns.
	if n := inflightAt(base.Add(time.Nanosecond)); n != 2 {
		t.Fatalf("calls in flight with replica-a's lease run out = %d, want replica-b's 2", n)
	}
	if err := ss.RenewBudgetLease(t.Context(), "replica-a", base.Add(time.Minute), base); err != nil {
		t.Fatal(err)
	}
	if n := inflightAt(base.Add(time.Minute)); n != 1 {
		t.Fatalf("calls in flight after replica-a renewed = %d, want its 1", n)
	}
	// Forgetting leases not renewed since base+2s deletes replica-b's, and its calls in flight
	// with it; a lease renewed again counts again.
	if err := ss.RenewBudgetLease(t.Context(), "replica-a", base.Add(time.Minute), base.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := inflightAt(base); n != 1 {
		t.Fatalf("calls in flight after forgetting replica-b = %d, want replica-a's 1", n)
	}
	if err := ss.RenewBudgetLease(t.Context(), "replica-b", base.Add(time.Minute), base); err != nil {
		t.Fatal(err)
	}
	if n := inflightAt(base); n != 1 {
		t.Fatalf("calls in flight after replica-b came back = %d, want 1: its forgotten calls stay forgotten", n)
	}
	wantCode(t, ss.RenewBudgetLease(t.Context(), "", base, base), warden.EInvalid)
	wantCode(t, ss.StartBudgetLease(t.Context(), "", base), warden.EInvalid)
}

func testReleaseBudgets(t *testing.T, s warden.Store) {
	ss := sharedStore(t, s)
	putBudget(t, s, &warden.Budget{ID: "bud-conc", Agent: "triage-bot", Kind: warden.BudgetConcurrency, Limit: 5})
	putBudget(t, s, newBudget("bud-quota", "triage-bot"))
	startLease(t, ss, "replica-a", base)
	startLease(t, ss, "replica-b", base)
	for _, r := range []string{"replica-a", "replica-a", "replica-a", "replica-b"} {
		if _, err := consumeOne(t.Context(), ss, r, "bud-quota", 100, "bud-conc"); err != nil {
			t.Fatal(err)
		}
	}
	release := func(replica string, n int) error {
		return ss.ReleaseBudgets(t.Context(), replica, map[string]int{"bud-conc": n, "gone": 1})
	}
	if err := release("replica-a", 2); err != nil {
		t.Fatal(err)
	}
	if _, n := use(t, ss, base, "bud-conc"); n[0] != 2 {
		t.Fatalf("calls in flight after releasing 2 of 4 = %d, want 2", n[0])
	}
	// Releasing more than replica-a holds frees none of replica-b's.
	if err := release("replica-a", 5); err != nil {
		t.Fatal(err)
	}
	if _, n := use(t, ss, base, "bud-conc"); n[0] != 1 {
		t.Fatalf("calls in flight after over-releasing replica-a = %d, want replica-b's 1", n[0])
	}
	wantCode(t, release("replica-b", -1), warden.EInvalid)
	if err := ss.ReleaseBudgets(t.Context(), "replica-b", nil); err != nil {
		t.Fatal(err)
	}
}
