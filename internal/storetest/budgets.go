package storetest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var budgetTests = []storeTest{
	{"PutAndList", testPutBudget},
	{"PutReplaces", testPutBudgetReplaces},
	{"ListOrderedByAgentThenID", testBudgetsOrdered},
	{"LimitsRoundTrip", testBudgetLimits},
	{"Delete", testDeleteBudget},
	{"SaveCounters", testSaveBudgetCounters},
	{"CountersRoundTrip", testBudgetCounterFields},
	{"SaveCountersAllOrNothing", testSaveBudgetCountersAllOrNothing},
	{"SaveCountersWhileDeleting", testSaveBudgetCountersWhileDeleting},
}

func newBudget(id, agent string) *warden.Budget {
	return &warden.Budget{ID: id, Agent: agent, Tool: "github", Action: "issues.create", Kind: warden.BudgetQuota,
		Limit: 100, Window: 24 * time.Hour, UpdatedAt: base}
}

func budgetInUTC(b *warden.Budget) *warden.Budget {
	c := *b
	c.UpdatedAt = b.UpdatedAt.UTC()
	return &c
}

func newCounter(budgetID string, used float64) *warden.BudgetCounter {
	return &warden.BudgetCounter{BudgetID: budgetID, WindowStart: base.Truncate(24 * time.Hour), Used: used,
		UpdatedAt: base.Add(time.Minute)}
}

func counterInUTC(c *warden.BudgetCounter) *warden.BudgetCounter {
	u := *c
	u.WindowStart, u.TAT, u.UpdatedAt = c.WindowStart.UTC(), c.TAT.UTC(), c.UpdatedAt.UTC()
	return &u
}

func putBudget(t *testing.T, s warden.Store, b *warden.Budget) {
	t.Helper()
	if err := s.PutBudget(t.Context(), b); err != nil {
		t.Fatalf("PutBudget(%s): %v", b.ID, err)
	}
}

func budgets(t *testing.T, s warden.Store) []*warden.Budget {
	t.Helper()
	all, err := s.Budgets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func saveCounters(t *testing.T, s warden.Store, cs ...*warden.BudgetCounter) {
	t.Helper()
	if err := s.SaveBudgetCounters(t.Context(), cs); err != nil {
		t.Fatalf("SaveBudgetCounters: %v", err)
	}
}

func budgetCounters(t *testing.T, s warden.Store) []*warden.BudgetCounter {
	t.Helper()
	cs, err := s.BudgetCounters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func counterIDs(cs []*warden.BudgetCounter) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.BudgetID)
	}
	return ids
}

func testPutBudget(t *testing.T, s warden.Store) {
	if all := budgets(t, s); len(all) != 0 {
		t.Fatalf("Budgets() of an empty store = %v", all)
	}
	quota := newBudget("bud-quota", "triage-bot")
	rate := &warden.Budget{ID: "bud-rate", Agent: "triage-bot", Kind: warden.BudgetRate, Limit: 10, Window: time.Minute}
	sum := &warden.Budget{ID: "bud-sum", Agent: "triage-bot", Tool: "stripe", Action: "refunds.create",
		Kind: warden.BudgetSum, Limit: 2500.75, Window: 24 * time.Hour, Arg: "amount", UpdatedAt: base.Add(time.Hour)}
	concurrency := &warden.Budget{ID: "bud-conc", Agent: "triage-bot", Tool: "shell", Kind: warden.BudgetConcurrency,
		Limit: 2, UpdatedAt: base}
	for _, b := range []*warden.Budget{quota, rate, sum, concurrency} {
		putBudget(t, s, b)
	}
	wantEqual(t, "Budgets", budgets(t, s), []*warden.Budget{budgetInUTC(concurrency), budgetInUTC(quota),
		budgetInUTC(rate), budgetInUTC(sum)})
	wantCode(t, s.PutBudget(t.Context(), &warden.Budget{Agent: "triage-bot", Kind: warden.BudgetRate, Limit: 1}),
		warden.EInvalid)
	if got := len(budgets(t, s)); got != 4 {
		t.Fatalf("%d budgets after refusing one without an ID, want 4", got)
	}
}

func testPutBudgetReplaces(t *testing.T, s warden.Store) {
	b := newBudget("bud-1", "triage-bot")
	putBudget(t, s, b)
	putBudget(t, s, newBudget("bud-2", "triage-bot"))
	saveCounters(t, s, newCounter(b.ID, 42))

	replaced := &warden.Budget{ID: b.ID, Agent: "triage-bot", Tool: "github", Kind: warden.BudgetQuota, Limit: 50,
		Window: time.Hour, UpdatedAt: base.Add(time.Hour)}
	putBudget(t, s, replaced)
	wantEqual(t, "Budgets after replacing one", budgets(t, s),
		[]*warden.Budget{budgetInUTC(replaced), budgetInUTC(newBudget("bud-2", "triage-bot"))})
	// Changing the limit does not forgive the use so far.
	wantEqual(t, "counters after replacing a budget", budgetCounters(t, s), []*warden.BudgetCounter{counterInUTC(newCounter(b.ID, 42))})
}

func testBudgetsOrdered(t *testing.T, s warden.Store) {
	type key struct{ agent, id string }
	// Byte order, and the agent before the ID: z of agent a comes first.
	want := []key{{"a", "z"}, {"a-b", "c"}, {"a-b", "d"}, {"a0", "b"}, {"b", "e-1"}, {"b", "e0"}, {"b", "f"}}
	for _, i := range rand.Perm(len(want)) {
		putBudget(t, s, newBudget(want[i].id, want[i].agent))
	}
	var got []key
	for _, b := range budgets(t, s) {
		got = append(got, key{b.Agent, b.ID})
	}
	wantEqual(t, "budgets by agent then ID", got, want)
}

// testBudgetLimits checks that limits and use come back as the very same float64, and that a
// number the store cannot keep alike on every backend is refused.
func testBudgetLimits(t *testing.T, s warden.Store) {
	values := []float64{0, 1, 0.1, 0.1 + 0.2, 1.0 / 3, math.Pi, 2500.75, 1e-300, math.SmallestNonzeroFloat64,
		math.MaxFloat64, -1.5, 123456789.123456789, math.Nextafter(1, 2), float64(1 << 53), float64(1<<53) + 2}
	var want []*warden.BudgetCounter
	for i, v := range values {
		id := fmt.Sprintf("bud-%02d", i)
		b := newBudget(id, "bot")
		b.Limit = v
		putBudget(t, s, b)
		c := newCounter(id, v)
		want = append(want, counterInUTC(c))
		saveCounters(t, s, c)
	}
	for i, b := range budgets(t, s) {
		if math.Float64bits(b.Limit) != math.Float64bits(values[i]) {
			t.Errorf("limit %v (%#x) came back as %v (%#x)", values[i], math.Float64bits(values[i]), b.Limit, math.Float64bits(b.Limit))
		}
	}
	for i, c := range budgetCounters(t, s) {
		if math.Float64bits(c.Used) != math.Float64bits(values[i]) {
			t.Errorf("use %v (%#x) came back as %v (%#x)", values[i], math.Float64bits(values[i]), c.Used, math.Float64bits(c.Used))
		}
	}
	wantEqual(t, "counters", budgetCounters(t, s), want)

	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			b := newBudget("bad", "bot")
			b.Limit = v
			wantCode(t, s.PutBudget(t.Context(), b), warden.EInvalid)
			wantCode(t, s.SaveBudgetCounters(t.Context(), []*warden.BudgetCounter{newCounter("bud-00", v)}), warden.EInvalid)
		})
	}
	if got := len(budgets(t, s)); got != len(values) {
		t.Fatalf("%d budgets after refusing non-finite limits, want %d", got, len(values))
	}
	wantEqual(t, "counters after refusing non-finite use", budgetCounters(t, s), want)
}

func testDeleteBudget(t *testing.T, s warden.Store) {
	putBudget(t, s, newBudget("doomed", "bot"))
	putBudget(t, s, newBudget("survivor", "bot"))
	saveCounters(t, s, newCounter("doomed", 3), newCounter("survivor", 4))
	if err := s.DeleteBudget(t.Context(), "doomed"); err != nil {
		t.Fatal(err)
	}
	wantNames(t, budgets(t, s), func(b *warden.Budget) string { return b.ID }, []string{"survivor"})
	// The counter goes with its budget.
	wantEqual(t, "counters after deleting a budget", counterIDs(budgetCounters(t, s)), []string{"survivor"})
	wantCode(t, s.DeleteBudget(t.Context(), "doomed"), warden.ENotFound)
	wantCode(t, s.DeleteBudget(t.Context(), "never-was"), warden.ENotFound)

	// Declared again, the budget starts with no use.
	putBudget(t, s, newBudget("doomed", "bot"))
	wantEqual(t, "counters after declaring a budget again", counterIDs(budgetCounters(t, s)), []string{"survivor"})
}

func testSaveBudgetCounters(t *testing.T, s warden.Store) {
	if cs := budgetCounters(t, s); len(cs) != 0 {
		t.Fatalf("BudgetCounters() of an empty store = %v", cs)
	}
	saveCounters(t, s) // an empty batch is no error
	for _, id := range []string{"b1", "b2", "b3"} {
		putBudget(t, s, newBudget(id, "bot"))
	}
	saveCounters(t, s, newCounter("b3", 1), newCounter("b1", 2))
	wantEqual(t, "counters", budgetCounters(t, s),
		[]*warden.BudgetCounter{counterInUTC(newCounter("b1", 2)), counterInUTC(newCounter("b3", 1))})

	// A second save updates the counters it holds, adds new ones and leaves the rest.
	b1 := &warden.BudgetCounter{BudgetID: "b1", WindowStart: base.Add(24 * time.Hour), Used: 0.5,
		UpdatedAt: base.Add(25 * time.Hour)}
	b2 := &warden.BudgetCounter{BudgetID: "b2", Used: 3, TAT: base.Add(time.Second), UpdatedAt: base.Add(time.Hour)}
	saveCounters(t, s, b1, b2)
	wantEqual(t, "counters after a second save", budgetCounters(t, s),
		[]*warden.BudgetCounter{counterInUTC(b1), counterInUTC(b2), counterInUTC(newCounter("b3", 1))})

	// Of two counters of one budget in a batch the later wins.
	saveCounters(t, s, newCounter("b2", 7), newCounter("b2", 8))
	if got := budgetCounters(t, s)[1]; got.Used != 8 {
		t.Fatalf("b2 used %v after saving 7 then 8, want 8", got.Used)
	}

	// A counter of a budget that no longer exists is dropped and does not fail the others.
	saveCounters(t, s, newCounter("deleted-meanwhile", 5), newCounter("b3", 9))
	got := budgetCounters(t, s)
	wantEqual(t, "counters after saving one of an unknown budget", counterIDs(got), []string{"b1", "b2", "b3"})
	if got[2].Used != 9 {
		t.Fatalf("b3 used %v, want 9", got[2].Used)
	}
}

func testBudgetCounterFields(t *testing.T, s warden.Store) {
	tests := []struct {
		name    string
		counter *warden.BudgetCounter
	}{
		{"zero", &warden.BudgetCounter{}},
		{"quota", newCounter("", 17)},
		{"rate", &warden.BudgetCounter{TAT: base.Add(1500 * time.Millisecond), UpdatedAt: base}},
		{"every field", &warden.BudgetCounter{WindowStart: time.Date(1969, 7, 20, 0, 0, 0, 0, time.UTC), Used: 1e9 + 0.25,
			TAT: time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC), UpdatedAt: time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("UTC-7", -7*60*60))}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("b%d", i)
			putBudget(t, s, newBudget(id, "bot"))
			tt.counter.BudgetID = id
			saveCounters(t, s, tt.counter)
			var got *warden.BudgetCounter
			for _, c := range budgetCounters(t, s) {
				if c.BudgetID == id {
					got = c
				}
			}
			wantEqual(t, "counter", got, counterInUTC(tt.counter))
		})
	}
}

func testSaveBudgetCountersAllOrNothing(t *testing.T, s warden.Store) {
	putBudget(t, s, newBudget("b1", "bot"))
	putBudget(t, s, newBudget("b2", "bot"))
	saveCounters(t, s, newCounter("b1", 1))
	before := budgetCounters(t, s)
	outOfRange := newCounter("b2", 2)
	outOfRange.TAT = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		batch []*warden.BudgetCounter
	}{
		{"nil counter", []*warden.BudgetCounter{newCounter("b1", 5), nil}},
		{"NaN", []*warden.BudgetCounter{newCounter("b1", 5), newCounter("b2", math.NaN())}},
		{"time out of range", []*warden.BudgetCounter{newCounter("b1", 5), outOfRange}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.SaveBudgetCounters(t.Context(), tt.batch), warden.EInvalid)
			wantEqual(t, "counters after a failed save", budgetCounters(t, s), before)
		})
	}
}

// testSaveBudgetCountersWhileDeleting saves counters from several writers while their budgets are
// being deleted, as budget ledgers flushing their counters do while an admin removes budgets: no
// save fails, whatever the order of its batch, and no counter outlives its budget.
func testSaveBudgetCountersWhileDeleting(t *testing.T, s warden.Store) {
	const n = 10
	var batch []*warden.BudgetCounter
	for i := range n {
		id := fmt.Sprintf("b%02d", i)
		putBudget(t, s, newBudget(id, "bot"))
		batch = append(batch, newCounter(id, float64(i)))
	}
	reversed := slices.Clone(batch)
	slices.Reverse(reversed)
	err := concurrently(2*n, func(i int) error {
		if i < n {
			return s.DeleteBudget(t.Context(), fmt.Sprintf("b%02d", i))
		}
		if i%2 == 1 {
			// Another replica may hold its counters in another order.
			return s.SaveBudgetCounters(t.Context(), reversed)
		}
		return s.SaveBudgetCounters(t.Context(), batch)
	})
	if err != nil {
		t.Fatal(err)
	}
	if all := budgets(t, s); len(all) != 0 {
		t.Fatalf("%d budgets left, want none", len(all))
	}
	if cs := budgetCounters(t, s); len(cs) != 0 {
		t.Fatalf("counters %v outlived their budgets", counterIDs(cs))
	}
}
