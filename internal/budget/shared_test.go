package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/postgres"
)

// replica is one of a test fleet's Budgets, on a store (and connection pool) of its own.
type replica struct {
	*Budgets
	store *postgres.Store
	id    string
}

// sharedFleet starts n replicas sharing budgets through one fresh PostgreSQL database, with
// the clock clk. Without WARDEN_TEST_POSTGRES the test skips.
func sharedFleet(t testing.TB, n int, clk clock.Clock) []*replica {
	t.Helper()
	dsn := testDatabase(t)
	fleet := make([]*replica, n)
	for i := range fleet {
		fleet[i] = startReplica(t, dsn, fmt.Sprintf("replica-%c", 'a'+i), clk)
	}
	return fleet
}

func startReplica(t testing.TB, dsn, id string, clk clock.Clock) *replica {
	t.Helper()
	store, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	b, err := New(context.Background(), store, nil, Options{Shared: true, Replica: id, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{Budgets: b, store: store, id: id}
}

// reload makes every replica read the budgets again, as a fleet change announcement does.
func reload(t testing.TB, fleet ...*replica) {
	t.Helper()
	for _, r := range fleet {
		if err := r.Reload(context.Background()); err != nil {
			t.Fatalf("%s: Reload: %v", r.id, err)
		}
	}
}

// contend runs calls consumers at once, spread over the fleet, each consuming u once and, if
// allowed, running during(i) before releasing; it returns how many were allowed.
func contend(t *testing.T, fleet []*replica, calls int, u func(i int) Usage, during func(i int)) int {
	t.Helper()
	var (
		allowed atomic.Int64
		wg      sync.WaitGroup
		errs    = make([]error, calls)
	)
	for i := range calls {
		wg.Go(func() {
			release, d, err := fleet[i%len(fleet)].Consume(u(i))
			switch {
			case err != nil:
				errs[i] = err
			case d == nil:
				allowed.Add(1)
				if during != nil {
					during(i)
				}
				release()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return int(allowed.Load())
}

func TestSharedQuotaIsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 3, nil)
	put(t, fleet[0].Budgets, "triage-bot", "", "", "quota 5/day")
	reload(t, fleet[1:]...)

	if n := contend(t, fleet, 50, func(int) Usage { return call("triage-bot", "github", "issues.list", t0) }, nil); n != 5 {
		t.Fatalf("quota 5/day allowed %d of 50 calls over 3 replicas, want 5", n)
	}
	for _, r := range fleet {
		d := deny(t, r.Budgets, call("triage-bot", "github", "issues.list", t0))
		if want := "quota 5/day on all tools exhausted (5 used); resets in 15h"; d.Message != want || d.RetryAfter != 15*time.Hour {
			t.Errorf("%s: denial %q retry %s, want %q", r.id, d.Message, d.RetryAfter, want)
		}
	}
	// The next day starts over, on every replica.
	allow(t, fleet[2].Budgets, call("triage-bot", "github", "issues.list", t0.Add(15*time.Hour)))
}

func TestSharedRateIsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 3, nil)
	put(t, fleet[1].Budgets, "triage-bot", "github", "", "rate 10/minute")
	reload(t, fleet[0], fleet[2])

	// Every call at one instant: the burst is the whole limit, and not one more.
	if n := contend(t, fleet, 50, func(int) Usage { return call("triage-bot", "github", "issues.list", t0) }, nil); n != 10 {
		t.Fatalf("rate 10/minute allowed %d of 50 calls at one instant over 3 replicas, want 10", n)
	}
	d := deny(t, fleet[0].Budgets, call("triage-bot", "github", "issues.list", t0))
	if want := "rate 10/minute on github exhausted; retry in 6s"; d.Message != want || d.RetryAfter != 6*time.Second {
		t.Errorf("denial %q retry %s, want %q", d.Message, d.RetryAfter, want)
	}
	allow(t, fleet[2].Budgets, call("triage-bot", "github", "issues.list", t0.Add(6*time.Second)))
	deny(t, fleet[1].Budgets, call("triage-bot", "github", "issues.list", t0.Add(6*time.Second)))
}

func TestSharedConcurrencyAcrossReplicas(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 3, nil)
	bud := put(t, fleet[0].Budgets, "triage-bot", "shell", "", "concurrency 3")
	reload(t, fleet[1:]...)
	run := func(i int) Usage { return call("triage-bot", "shell", "exec", t0) }

	// 30 callers at once over 3 replicas; every allowed call holds its slot until all 30 have
	// been decided, so the slots are contended for the whole time: exactly 3 get one.
	const callers = 30
	var (
		inflight, most, allowed atomic.Int64
		decided, wg             sync.WaitGroup
		errs                    = make([]error, callers)
	)
	decided.Add(callers)
	for i := range callers {
		wg.Go(func() {
			release, d, err := fleet[i%3].Consume(run(i))
			decided.Done()
			if err != nil || d != nil {
				errs[i] = err
				return
			}
			allowed.Add(1)
			n := inflight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			decided.Wait()
			inflight.Add(-1)
			release()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n, m := allowed.Load(), most.Load(); n != 3 || m != 3 {
		t.Fatalf("concurrency 3 allowed %d of %d callers holding their slots, %d at once; want 3 and 3", n, callers, m)
	}
	// Every slot was released: three calls fit again, on three replicas, and a fourth does not.
	var releases []func()
	for _, r := range fleet {
		releases = append(releases, allow(t, r.Budgets, run(0)))
	}
	d := deny(t, fleet[1].Budgets, run(0))
	if want := "concurrency 3 on shell exhausted: 3 calls in flight; retry when one ends"; d.Message != want {
		t.Errorf("denial %q, want %q", d.Message, want)
	}
	if st := status(t, fleet[2].Budgets, bud, t0); st.Used != 3 || st.Remaining != 0 {
		t.Errorf("status on a third replica = %+v, want 3 used", st)
	}
	releases[0]()
	releases[0]() // a second release gives back nothing
	allow(t, fleet[2].Budgets, run(0))
	deny(t, fleet[0].Budgets, run(0))
}

func TestSharedSumIsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 3, nil)
	bud := put(t, fleet[2].Budgets, "pay-bot", "payments", "", "sum amount 100/day")
	reload(t, fleet[:2]...)

	// Amounts of 10 fill it to exactly 100.
	if n := contend(t, fleet, 40, func(int) Usage { return pay(10, t0) }, nil); n != 10 {
		t.Fatalf("sum amount 100/day allowed %d calls of 10, want 10", n)
	}
	if st := status(t, fleet[0].Budgets, bud, t0); st.Used != 100 {
		t.Fatalf("sum used %v, want 100", st.Used)
	}

	// Mixed amounts the next day: what is let through never passes 100, and what is left is
	// less than the smallest amount, so the budget was filled rather than skipped.
	day2 := t0.Add(24 * time.Hour)
	amounts := []float64{7, 13, 10, 0.5, 20}
	var halves atomic.Int64 // the allowed total in halves, which are exact
	contend(t, fleet, 60, func(i int) Usage { return pay(amounts[i%len(amounts)], day2) },
		func(i int) { halves.Add(int64(2 * amounts[i%len(amounts)])) })
	if total := float64(halves.Load()) / 2; total > 100 {
		t.Fatalf("sum amount 100/day let %v through", total)
	}
	st := status(t, fleet[1].Budgets, bud, day2)
	if st.Used != float64(halves.Load())/2 {
		t.Errorf("stored use %v, callers saw %v allowed", st.Used, float64(halves.Load())/2)
	}
	for st.Used+0.5 <= 100 {
		allow(t, fleet[0].Budgets, pay(0.5, day2))
		st.Used += 0.5
	}
	deny(t, fleet[2].Budgets, pay(0.5, day2))
}

// TestSharedMatchesMemory runs one sequence of calls through budgets in memory and through a
// shared ledger: the same calls are allowed, with the same denials, messages and waits. A rate's
// use may differ in the last bits, since the store keeps its bucket as an arrival time.
func TestSharedMatchesMemory(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 2, nil)
	memory := newBudgets(t, newFakeStore(), Options{})
	specs := [][3]string{
		{"", "", "rate 3/minute"},
		{"payments", "", "quota 5/hour"},
		{"payments", "send", "sum amount 10/day"},
		{"payments", "refund", "concurrency 2"},
	}
	for _, sp := range specs {
		put(t, memory, "pay-bot", sp[0], sp[1], sp[2])
		put(t, fleet[0].Budgets, "pay-bot", sp[0], sp[1], sp[2])
	}
	reload(t, fleet[1])
	var held [2][]func()
	for i := range 40 {
		at := t0.Add(time.Duration(i) * 7 * time.Second)
		u := Usage{Agent: "pay-bot", Tool: "payments", Action: []string{"send", "refund", "list"}[i%3], Now: at,
			Args: map[string]any{"amount": []any{2.5, 4.0, "x", 1.0}[i%4]}}
		mrel, md, merr := memory.Consume(u)
		srel, sd, serr := fleet[i%2].Consume(u)
		if (merr == nil) != (serr == nil) || (md == nil) != (sd == nil) {
			t.Fatalf("call %d: memory (%v, %v), shared (%v, %v)", i, md, merr, sd, serr)
		}
		if md != nil && (md.Message != sd.Message || md.RetryAfter != sd.RetryAfter || md.Reason != sd.Reason || math.Abs(md.Used-sd.Used) > 1e-9) {
			t.Fatalf("call %d: memory denied %+v, shared %+v", i, md, sd)
		}
		if md == nil && i%5 != 0 { // hold some concurrency slots, release the others
			held[0], held[1] = append(held[0], mrel), append(held[1], srel)
		} else if md == nil {
			mrel()
			srel()
		}
		if i%11 == 10 {
			for k := range held {
				for _, r := range held[k] {
					r()
				}
				held[k] = nil
			}
		}
	}
}

func TestSharedReloadAppliesChangesFromAnotherReplica(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 2, nil)
	a, b := fleet[0], fleet[1]
	list := func(at time.Time) Usage { return call("triage-bot", "github", "issues.list", at) }

	bud := put(t, a.Budgets, "triage-bot", "github", "", "quota 2/day")
	allow(t, b.Budgets, list(t0)) // b has not heard of it yet: its declarations are its own
	reload(t, b)
	allow(t, b.Budgets, list(t0))
	allow(t, a.Budgets, list(t0))
	deny(t, b.Budgets, list(t0))

	// A raised limit is enforced on b after its reload, and what was used stays used.
	changed := *bud
	changed.Limit = 3
	if err := a.Put(context.Background(), &changed); err != nil {
		t.Fatal(err)
	}
	reload(t, b)
	allow(t, b.Budgets, list(t0))
	deny(t, b.Budgets, list(t0))
	if st := status(t, b.Budgets, bud, t0); st.Used != 3 || st.Limit != 3 {
		t.Errorf("status after the change = %+v, want 3 of 3 used", st)
	}

	// Deleted on a, it goes on b, and the counter with it.
	if err := a.Delete(context.Background(), bud.ID); err != nil {
		t.Fatal(err)
	}
	allow(t, b.Budgets, list(t0)) // deleted in the store: b's charge leaves it out already
	reload(t, b)
	if got := b.Show("triage-bot", t0); len(got) != 0 {
		t.Errorf("b still shows %d budgets after the delete", len(got))
	}
}

func TestSharedSlotsOfADeadReplicaAreFreedAfterTheLease(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	fleet := sharedFleet(t, 2, clk)
	a, b := fleet[0], fleet[1]
	put(t, a.Budgets, "triage-bot", "shell", "", "concurrency 2")
	reload(t, b)
	run := func(at time.Time) Usage { return call("triage-bot", "shell", "exec", at) }

	allow(t, a.Budgets, run(t0))
	allow(t, a.Budgets, run(t0))
	// a renews its lease at t0+5s (Run does this every second), then dies holding both slots.
	clk.Advance(5 * time.Second)
	if err := a.shared.renew(context.Background(), clk.Now()); err != nil {
		t.Fatal(err)
	}
	a.store.Close()

	lastRenewal := t0.Add(5 * time.Second)
	deny(t, b.Budgets, run(lastRenewal.Add(defaultLease)))
	allow(t, b.Budgets, run(lastRenewal.Add(defaultLease+time.Nanosecond)))
}

func TestSharedStoreErrorDenies(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 1, nil)
	r := fleet[0]
	put(t, r.Budgets, "triage-bot", "github", "", "quota 5/day")
	r.store.Close()

	release, d, err := r.Consume(call("triage-bot", "github", "issues.list", t0))
	if err == nil || d != nil || release != nil {
		t.Fatalf("Consume with the store closed = (%v, %v, %v), want an error and no release", release != nil, d, err)
	}
	if code := warden.ErrorCode(err); code != warden.EUnavailable {
		t.Errorf("error code %q, want %q", code, warden.EUnavailable)
	}
}

func TestSharedCallWithoutBudgetSkipsTheStore(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 1, nil)
	counting := &flakyStore{SharedStore: fleet[0].store}
	r, err := New(context.Background(), counting, nil, Options{Shared: true, Replica: "counting"})
	if err != nil {
		t.Fatal(err)
	}
	put(t, r, "triage-bot", "github", "", "quota 5/day")
	allow(t, r, call("triage-bot", "slack", "post", t0))()
	allow(t, r, call("other-bot", "github", "issues.list", t0))()
	if n := counting.consumes.Load(); n != 0 {
		t.Fatalf("%d store transactions for calls no budget covers, want 0", n)
	}
	allow(t, r, call("triage-bot", "github", "issues.list", t0))()
	if n := counting.consumes.Load(); n != 1 {
		t.Fatalf("%d store transactions for one budgeted call, want 1", n)
	}
}

// flakyStore fails the releases while fail is set, as a store that can't be reached would, and
// counts the consumes that reach it.
type flakyStore struct {
	SharedStore
	fail     atomic.Bool
	consumes atomic.Int64
}

func (s *flakyStore) ConsumeBudgets(ctx context.Context, replica string, ids []string, live time.Time,
	charge func([]*warden.BudgetCounter, []int) ([]*warden.BudgetCounter, []string, bool)) error {
	s.consumes.Add(1)
	return s.SharedStore.ConsumeBudgets(ctx, replica, ids, live, charge)
}

func (s *flakyStore) ReleaseBudgets(ctx context.Context, replica string, held map[string]int) error {
	if s.fail.Load() {
		return errors.New("flaky store: release refused")
	}
	return s.SharedStore.ReleaseBudgets(ctx, replica, held)
}

func TestSharedFailedReleaseIsPaidAtTheNextRenewal(t *testing.T) {
	t.Parallel()
	fleet := sharedFleet(t, 1, nil)
	flaky := &flakyStore{SharedStore: fleet[0].store}
	r, err := New(context.Background(), flaky, nil, Options{Shared: true, Replica: "flaky"})
	if err != nil {
		t.Fatal(err)
	}
	put(t, r, "triage-bot", "shell", "", "concurrency 1")
	run := call("triage-bot", "shell", "exec", t0)

	release := allow(t, r, run)
	flaky.fail.Store(true)
	release()
	deny(t, r, run) // the slot stays taken in the store: refused, never too many
	if err := r.shared.renew(context.Background(), t0); err == nil {
		t.Fatal("renewal paid a release the store refused")
	}
	deny(t, r, run)
	flaky.fail.Store(false)
	if err := r.shared.renew(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	allow(t, r, run)
}

func TestSharedRunRenewsTheLeaseOnItsWayOut(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	fleet := sharedFleet(t, 2, clk)
	a, b := fleet[0], fleet[1]
	put(t, a.Budgets, "triage-bot", "shell", "", "concurrency 1")
	reload(t, b)
	allow(t, a.Budgets, call("triage-bot", "shell", "exec", t0))

	clk.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Renewed at t0+1m, a's slot still counts a lease later than its start.
	deny(t, b.Budgets, call("triage-bot", "shell", "exec", t0.Add(time.Minute+defaultLease)))
	allow(t, b.Budgets, call("triage-bot", "shell", "exec", t0.Add(time.Minute+defaultLease+time.Nanosecond)))
}

func TestSharedOptions(t *testing.T) {
	t.Parallel()
	if _, err := New(context.Background(), newFakeStore(), nil, Options{Shared: true, Replica: "a"}); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("shared budgets on a store that can't share them: %v", err)
	}
	fleet := sharedFleet(t, 1, nil)
	for _, o := range []Options{{Shared: true}, {Shared: true, Replica: "a", Lease: -1}, {Shared: true, Replica: "a", StoreTimeout: -1}} {
		if _, err := New(context.Background(), fleet[0].store, nil, o); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("New(%+v) = %v, want %s", o, err, warden.EInvalid)
		}
	}
}

// BenchmarkConsumeShared is BenchmarkConsume's counterpart on PostgreSQL: one call, one quota,
// one store transaction.
func BenchmarkConsumeShared(b *testing.B) {
	fleet := sharedFleet(b, 1, nil)
	put(b, fleet[0].Budgets, "agent-42", "payments", "", "quota 1000000000000000/day")
	u := Usage{Agent: "agent-42", Tool: "payments", Action: "send", Now: t0}
	b.ReportAllocs()
	for b.Loop() {
		release, d, err := fleet[0].Consume(u)
		if d != nil || err != nil {
			b.Fatal(d, err)
		}
		release()
	}
}

// TestSharedPutCarriesUseOver declares budgets again with other limits and windows, in memory and
// shared: what was used carries over alike.
func TestSharedPutCarriesUseOver(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	fleet := sharedFleet(t, 2, clk)
	memory := newBudgets(t, newFakeStore(), Options{Clock: clk})
	both := []*Budgets{memory, fleet[0].Budgets}
	declare := func(tool, spec string) {
		for _, b := range both {
			put(t, b, "triage-bot", tool, "", spec)
		}
	}
	same := func(step string, u Usage) {
		t.Helper()
		_, md, merr := memory.Consume(u)
		_, sd, serr := fleet[1].Consume(u)
		if merr != nil || serr != nil || (md == nil) != (sd == nil) {
			t.Fatalf("%s: memory (%v, %v), shared (%v, %v)", step, md, merr, sd, serr)
		}
		if md != nil && (md.Message != sd.Message || md.RetryAfter != sd.RetryAfter) {
			t.Fatalf("%s: memory denied %q (%s), shared %q (%s)", step, md.Message, md.RetryAfter, sd.Message, sd.RetryAfter)
		}
	}
	declare("github", "rate 20/minute")
	declare("slack", "quota 5/hour")
	reload(t, fleet[1])
	for range 20 {
		same("the rate's burst", call("triage-bot", "github", "issues.list", t0))
	}
	for range 4 {
		same("the quota", call("triage-bot", "slack", "post", t0))
	}
	clk.Advance(10 * time.Second)
	declare("github", "rate 10/minute") // the bucket's calls stay, draining at the new rate
	declare("slack", "quota 5/day")     // another window: the use starts over
	reload(t, fleet[1])
	for i := range 8 {
		at := t0.Add(10*time.Second + time.Duration(i)*5*time.Second)
		same(fmt.Sprintf("the lowered rate, call %d", i), call("triage-bot", "github", "issues.list", at))
	}
	for i := range 6 {
		same(fmt.Sprintf("the quota of a day, call %d", i), call("triage-bot", "slack", "post", t0.Add(time.Minute)))
	}
}

func testDatabase(t testing.TB) string { return pgtest.Database(t) }
