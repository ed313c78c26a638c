package budget

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// t0 is a Tuesday morning; tests move the clock through Usage.Now.
var t0 = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

// testClock is the Options.Clock of a test: the time admin changes and flushes see.
type testClock struct{ *clock.Fake }

func newClock(t time.Time) testClock { return testClock{clock.NewFake(t)} }

func (c testClock) opts() Options       { return Options{Clock: c.Fake} }
func (c testClock) add(d time.Duration) { c.Advance(d) }

func newBudgets(t testing.TB, store *fakeStore, opts Options) *Budgets {
	t.Helper()
	b, err := New(context.Background(), store, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(t testing.TB, b *Budgets, agent, tool, action, spec string) *warden.Budget {
	t.Helper()
	bud, err := ParseSpec(agent, tool, action, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), bud); err != nil {
		t.Fatal(err)
	}
	return bud
}

// allow consumes and fails the test unless the call is allowed.
func allow(t testing.TB, b *Budgets, u Usage) func() {
	t.Helper()
	release, d, err := b.Consume(u)
	if err != nil {
		t.Fatalf("Consume(%v at %s): %v", u.Args, u.Now.Format(time.TimeOnly), err)
	}
	if d != nil {
		t.Fatalf("Consume(%v at %s) denied: %s", u.Args, u.Now.Format(time.TimeOnly), d.Message)
	}
	if release == nil {
		t.Fatal("allowed without a release func")
	}
	return release
}

// deny consumes and fails the test unless the call is denied.
func deny(t testing.TB, b *Budgets, u Usage) *Denial {
	t.Helper()
	release, d, err := b.Consume(u)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if d == nil {
		t.Fatalf("Consume(%v at %s) allowed, want a denial", u.Args, u.Now.Format(time.TimeOnly))
	}
	if release != nil {
		t.Error("denied with a release func")
	}
	return d
}

func call(agent, tool, action string, now time.Time) Usage {
	return Usage{Agent: agent, Tool: tool, Action: action, Now: now}
}

func pay(amount any, now time.Time) Usage {
	return Usage{Agent: "pay-bot", Tool: "payments", Action: "send", Args: map[string]any{"amount": amount}, Now: now}
}

// status returns the status of the budget with id.
func status(t testing.TB, b *Budgets, bud *warden.Budget, now time.Time) Status {
	t.Helper()
	for _, st := range b.Show(bud.Agent, now) {
		if st.Budget.ID == bud.ID {
			return st
		}
	}
	t.Fatalf("Show has no budget %s", Describe(bud))
	return Status{}
}

func TestNoBudgetAllows(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	release := allow(t, b, call("nobody", "github", "issues.list", time.Time{}))
	release()
	release()
	put(t, b, "triage-bot", "github", "issues.comment", "rate 1/hour")
	allow(t, b, call("triage-bot", "github", "issues.list", t0))
	allow(t, b, call("triage-bot", "slack", "issues.comment", t0))
	allow(t, b, call("triage-bot", "github", "issues.comment", t0))
}

func TestRate(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	bud := put(t, b, "triage-bot", "github", "issues.comment", "rate 20/hour")
	comment := func(at time.Time) Usage { return call("triage-bot", "github", "issues.comment", at) }

	// A burst of the whole limit from idle, then one call every 3 minutes.
	for i := range 20 {
		allow(t, b, comment(t0.Add(time.Duration(i)*time.Millisecond)))
	}
	d := deny(t, b, comment(t0))
	if d.RetryAfter != 3*time.Minute || d.Reason != warden.ReasonBudgetExceeded || d.Limit != 20 || math.Abs(d.Used-20) > 1e-9 || d.Budget.ID != bud.ID {
		t.Errorf("denial = %+v", d)
	}
	if want := "rate 20/hour on github issues.comment exhausted; retry in 3m"; d.Message != want {
		t.Errorf("message %q, want %q", d.Message, want)
	}
	// Told to wait 3m: a call one second early is refused with the second to go, one on time passes.
	if d := deny(t, b, comment(t0.Add(3*time.Minute-time.Second))); d.RetryAfter != time.Second {
		t.Errorf("RetryAfter = %s a second early, want 1s", d.RetryAfter)
	}
	allow(t, b, comment(t0.Add(3*time.Minute)))
	if d := deny(t, b, comment(t0.Add(3*time.Minute))); d.RetryAfter != 3*time.Minute {
		t.Errorf("RetryAfter = %s right after, want 3m", d.RetryAfter)
	}
	// Paced at the rate, calls keep passing.
	at := t0.Add(3 * time.Minute)
	for range 40 {
		at = at.Add(3 * time.Minute)
		allow(t, b, comment(at))
		deny(t, b, comment(at))
	}
	// An hour idle empties the bucket: a full burst again.
	at = at.Add(time.Hour)
	for range 20 {
		allow(t, b, comment(at))
	}
	deny(t, b, comment(at))
	// Other actions and tools have no budget.
	allow(t, b, call("triage-bot", "github", "issues.list", at))
	allow(t, b, call("triage-bot", "slack", "issues.comment", at))
}

func TestRateRetryAfterIsExact(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "fast-bot", "", "", "rate 3/second") // an emission interval of 333333333.3ns
	u := call("fast-bot", "echo", "", t0)
	for range 3 {
		allow(t, b, u)
	}
	d := deny(t, b, u)
	if d.RetryAfter < 333333333 || d.RetryAfter > 333333334 {
		t.Fatalf("RetryAfter = %s, want 333.33ms", d.RetryAfter)
	}
	if !strings.HasSuffix(d.Message, "retry in 1s") {
		t.Errorf("message %q: a wait under a second reads 1s", d.Message)
	}
	u.Now = t0.Add(d.RetryAfter)
	allow(t, b, u)
	deny(t, b, u)
	// A day of steady calls at exactly the rate: the rounding never drifts into a refusal.
	for i := 1; i <= 3*86400; i++ {
		u.Now = t0.Add(d.RetryAfter + time.Duration(float64(i)*float64(time.Second)/3))
		if _, den, _ := b.Consume(u); den != nil {
			t.Fatalf("call %d at the rate refused: %s", i, den.Message)
		}
	}
}

func TestQuotaWindows(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	daily := put(t, b, "triage-bot", "", "", "quota 3/day")
	late := time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC)
	for range 3 {
		allow(t, b, call("triage-bot", "github", "x", late))
	}
	d := deny(t, b, call("triage-bot", "slack", "y", late))
	if d.RetryAfter != time.Minute || d.Used != 3 || d.Limit != 3 {
		t.Errorf("denial %+v", d)
	}
	if want := "quota 3/day on all tools exhausted (3 used); resets in 1m"; d.Message != want {
		t.Errorf("message %q, want %q", d.Message, want)
	}
	deny(t, b, call("triage-bot", "github", "x", late.Add(time.Minute-1)))
	// Midnight UTC starts a new day.
	midnight := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	allow(t, b, call("triage-bot", "github", "x", midnight.Add(time.Second)))
	// A call stamped before midnight that reaches the lock after one stamped after it counts in the
	// new day; it does not wipe it.
	allow(t, b, call("triage-bot", "github", "x", midnight.Add(-time.Millisecond)))
	allow(t, b, call("triage-bot", "github", "x", midnight.Add(time.Hour)))
	d = deny(t, b, call("triage-bot", "github", "x", midnight.Add(2*time.Hour)))
	if d.RetryAfter != 22*time.Hour || !strings.HasSuffix(d.Message, "resets in 22h") {
		t.Errorf("denial %+v", d)
	}
	if st := status(t, b, daily, midnight.Add(2*time.Hour)); st.Used != 3 || st.Remaining != 0 ||
		!st.ResetsAt.Equal(midnight.Add(24*time.Hour)) || st.RetryAfter != 22*time.Hour {
		t.Errorf("status %+v", st)
	}

	// Hours start on the hour, not at the first call.
	hourly := put(t, b, "hour-bot", "github", "", "quota 2/h")
	at := time.Date(2026, 3, 10, 10, 59, 59, 500e6, time.UTC)
	allow(t, b, call("hour-bot", "github", "x", at.Add(-30*time.Minute)))
	allow(t, b, call("hour-bot", "github", "x", at))
	if d := deny(t, b, call("hour-bot", "github", "x", at)); d.RetryAfter != 500*time.Millisecond {
		t.Errorf("RetryAfter %s, want 500ms", d.RetryAfter)
	}
	allow(t, b, call("hour-bot", "github", "x", at.Add(500*time.Millisecond)))
	if st := status(t, b, hourly, at.Add(time.Second)); st.Used != 1 || st.Remaining != 1 || st.RetryAfter != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestConcurrency(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	bud := put(t, b, "triage-bot", "github", "", "concurrency 2")
	u := call("triage-bot", "github", "issues.list", t0)
	r1 := allow(t, b, u)
	r2 := allow(t, b, u)
	d := deny(t, b, u)
	if d.Used != 2 || d.RetryAfter != 0 {
		t.Errorf("denial %+v", d)
	}
	if want := "concurrency 2 on github exhausted: 2 calls in flight; retry when one ends"; d.Message != want {
		t.Errorf("message %q, want %q", d.Message, want)
	}
	if st := status(t, b, bud, t0); st.Used != 2 || st.Remaining != 0 {
		t.Errorf("status %+v", st)
	}
	r1()
	r1() // idempotent: the second call must not free r2's slot
	r3 := allow(t, b, u)
	deny(t, b, u)
	r2()
	r3()
	if st := status(t, b, bud, t0); st.Used != 0 || st.Remaining != 2 {
		t.Errorf("status after releases %+v", st)
	}
	// A slot is returned to the budget even after the budget was declared again.
	r4 := allow(t, b, u)
	put(t, b, "triage-bot", "github", "", "concurrency 1")
	deny(t, b, u)
	r4()
	allow(t, b, u)
}

func TestSum(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	bud := put(t, b, "pay-bot", "payments", "send", "sum amount 500/day")

	allow(t, b, pay(300.0, t0))
	d := deny(t, b, pay(250.0, t0))
	if d.Used != 300 || d.Limit != 500 || d.Reason != warden.ReasonBudgetExceeded || d.RetryAfter != 15*time.Hour {
		t.Errorf("denial %+v", d)
	}
	if want := "sum amount 500/day on payments send: 300 used, amount 250 more is over the limit; resets in 15h"; d.Message != want {
		t.Errorf("message %q, want %q", d.Message, want)
	}
	allow(t, b, pay(200.0, t0)) // the refused 250 was not counted
	if st := status(t, b, bud, t0); st.Used != 500 || st.Remaining != 0 || st.RetryAfter != 15*time.Hour {
		t.Errorf("status %+v", st)
	}
	allow(t, b, pay(0.0, t0)) // nothing to add fits even a full budget
	deny(t, b, pay(0.01, t0))
	allow(t, b, pay(100, t0.Add(15*time.Hour))) // next day

	// An amount over the whole limit never fits: waiting won't help.
	d = deny(t, b, pay(json.Number("600"), t0.Add(16*time.Hour)))
	if d.RetryAfter != 0 || !strings.HasSuffix(d.Message, "amount 600 alone is over the limit") {
		t.Errorf("denial %+v", d)
	}
}

func TestSumArgumentMustBeANumber(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	bud := put(t, b, "pay-bot", "payments", "send", "sum amount 500/day")
	allow(t, b, pay(10, t0))
	tests := []struct {
		name string
		args map[string]any
		want string
	}{
		{"missing", map[string]any{"to": "bob"}, "it is missing"},
		{"no arguments", nil, "it is missing"},
		{"string", map[string]any{"amount": "300"}, "it is a string, not a number"},
		{"negative", map[string]any{"amount": -5.0}, "it is negative"},
		{"negative integer", map[string]any{"amount": int64(-5)}, "it is negative"},
		{"NaN", map[string]any{"amount": math.NaN()}, "not a finite number"},
		{"Inf", map[string]any{"amount": math.Inf(1)}, "not a finite number"},
		{"huge json.Number", map[string]any{"amount": json.Number("1e400")}, "not a finite number"},
		{"hex json.Number", map[string]any{"amount": json.Number("0x10")}, "not a JSON number"},
		{"Inf json.Number", map[string]any{"amount": json.Number("Inf")}, "not a JSON number"},
		{"null", map[string]any{"amount": nil}, "it is null"},
		{"bool", map[string]any{"amount": true}, "a boolean"},
		{"object", map[string]any{"amount": map[string]any{"value": 5.0}}, "not a number"},
		{"array", map[string]any{"amount": []any{5.0}}, "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deny(t, b, Usage{Agent: "pay-bot", Tool: "payments", Action: "send", Args: tt.args, Now: t0})
			if d.Reason != warden.ReasonBudgetArgumentInvalid || d.RetryAfter != 0 || d.Used != 10 {
				t.Errorf("denial %+v", d)
			}
			if prefix := "sum amount 500/day on payments send needs argument amount as a non-negative number: it is "; !strings.HasPrefix(d.Message, prefix) || !strings.Contains(d.Message, tt.want) {
				t.Errorf("message %q, want %q…%q", d.Message, prefix, tt.want)
			}
		})
	}
	if st := status(t, b, bud, t0); st.Used != 10 {
		t.Errorf("refused calls were counted: used %v", st.Used)
	}
	// What JSON decoding and hand-built arguments hold is accepted.
	for _, v := range []any{1.5, float32(1.5), json.Number("2.5e1"), json.Number("-0"), 3, int8(3), int16(3), int32(3), int64(3), uint(3), uint8(3), uint16(3), uint32(3), uint64(3)} {
		allow(t, b, pay(v, t0))
	}
}

func TestSumPaths(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "pay-bot", "payments", "send", "sum payment.amount 500/day")
	u := func(args map[string]any) Usage {
		return Usage{Agent: "pay-bot", Tool: "payments", Action: "send", Args: args, Now: t0}
	}
	allow(t, b, u(map[string]any{"payment": map[string]any{"amount": 200.0, "currency": "EUR"}}))
	allow(t, b, u(map[string]any{"payment.amount": 200.0})) // a name with a dot reads the same
	deny(t, b, u(map[string]any{"payment": map[string]any{"amount": 200.0}}))
	if d := deny(t, b, u(map[string]any{"payment": 5.0})); !strings.Contains(d.Message, "it is missing") {
		t.Errorf("message %q", d.Message)
	}
	// Two readings: the decoy would be counted while the tool might use the other.
	d := deny(t, b, u(map[string]any{"payment": map[string]any{"amount": 1000.0}, "payment.amount": 1.0}))
	if d.Reason != warden.ReasonBudgetArgumentInvalid || !strings.Contains(d.Message, "ambiguous") {
		t.Errorf("denial %+v", d)
	}
}

func TestArgAmount(t *testing.T) {
	t.Parallel()
	deep := map[string]any{"v": 1.0}
	for range 100 {
		deep = map[string]any{"a": deep}
	}
	tests := []struct {
		args    map[string]any
		path    string
		amount  float64
		problem string
	}{
		{map[string]any{"a": 2.0}, "a", 2, ""},
		{map[string]any{"a": map[string]any{"b": map[string]any{"c": 3.0}}}, "a.b.c", 3, ""},
		{map[string]any{"a.b": map[string]any{"c": 4.0}}, "a.b.c", 4, ""},
		{map[string]any{"a": map[string]any{"b.c": 5.0}}, "a.b.c", 5, ""},
		{map[string]any{"a": map[string]any{"b.c": 5.0}, "a.b": map[string]any{"c": 6.0}}, "a.b.c", 0, "ambiguous"},
		{map[string]any{"a": []any{map[string]any{"b": 1.0}}}, "a.b", 0, "missing"},
		{map[string]any{"a": map[string]string{"b": "1"}}, "a.b", 0, "missing"},
		{deep, strings.Repeat("a.", 100) + "v", 0, "missing"}, // deeper than any path may be
	}
	for _, tt := range tests {
		amount, problem := argAmount(tt.args, tt.path)
		if amount != tt.amount || !strings.Contains(problem, tt.problem) || (tt.problem == "") != (problem == "") {
			t.Errorf("argAmount(%v, %q) = %v, %q; want %v, %q", tt.args, tt.path, amount, problem, tt.amount, tt.problem)
		}
	}
}

func TestSumToleratesRounding(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "pay-bot", "payments", "send", "sum amount 1/day")
	for i := range 10 {
		if _, d, _ := b.Consume(pay(0.1, t0)); d != nil {
			t.Fatalf("payment %d of 0.1 refused: %s", i+1, d.Message)
		}
	}
	deny(t, b, pay(0.1, t0))
}

// TestAllOrNothing: when one budget refuses, none is charged, whichever one it is.
func TestAllOrNothing(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	rate := put(t, b, "pay-bot", "", "", "rate 10/minute")
	quota := put(t, b, "pay-bot", "payments", "", "quota 5/day")
	conc := put(t, b, "pay-bot", "payments", "send", "concurrency 3")
	sum := put(t, b, "pay-bot", "payments", "send", "sum amount 100/day")
	used := func() [4]float64 {
		return [4]float64{status(t, b, rate, t0).Used, status(t, b, quota, t0).Used, status(t, b, conc, t0).Used, status(t, b, sum, t0).Used}
	}

	r1 := allow(t, b, pay(40, t0))
	if got, want := used(), [4]float64{1, 1, 1, 40}; got != want {
		t.Fatalf("used %v, want %v", got, want)
	}
	// The sum refuses: the rate, quota and concurrency slot stay as they were.
	if d := deny(t, b, pay(70, t0)); d.Budget.ID != sum.ID {
		t.Errorf("refused by %s", Describe(d.Budget))
	}
	if got, want := used(), [4]float64{1, 1, 1, 40}; got != want {
		t.Fatalf("after a refused sum: used %v, want %v", got, want)
	}
	// Concurrency refuses: nothing is charged either.
	r2 := allow(t, b, pay(10, t0))
	r3 := allow(t, b, pay(10, t0))
	before := used()
	if d := deny(t, b, pay(10, t0)); d.Budget.ID != conc.ID {
		t.Errorf("refused by %s", Describe(d.Budget))
	}
	if got := used(); got != before {
		t.Fatalf("after refused concurrency: used %v, want %v", got, before)
	}
	r1()
	r2()
	r3()
	// The quota on the tool refuses calls of other actions, which the action's budgets don't cover.
	allow(t, b, call("pay-bot", "payments", "refund", t0))
	allow(t, b, call("pay-bot", "payments", "refund", t0))
	before = used()
	if d := deny(t, b, pay(10, t0)); d.Budget.ID != quota.ID {
		t.Errorf("refused by %s", Describe(d.Budget))
	}
	if got := used(); got != before {
		t.Fatalf("after a refused quota: used %v, want %v", got, before)
	}
}

// TestDenialTellsTheLongestWait: when several budgets refuse, the agent hears the one that keeps it
// waiting longest, or one that waiting can't fix.
func TestDenialTellsTheLongestWait(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "pay-bot", "", "", "rate 1/minute")
	quota := put(t, b, "pay-bot", "payments", "", "quota 1/day")
	sum := put(t, b, "pay-bot", "payments", "send", "sum amount 100/day")
	allow(t, b, pay(10, t0))
	if d := deny(t, b, pay(10, t0)); d.Budget.ID != quota.ID || d.RetryAfter != 15*time.Hour {
		t.Errorf("denial %+v, want the quota's 15h", d)
	}
	if d := deny(t, b, pay("10", t0)); d.Budget.ID != sum.ID || d.Reason != warden.ReasonBudgetArgumentInvalid {
		t.Errorf("denial %+v, want the sum's bad argument", d)
	}

	// A refusal waiting can't fix stays, whatever comes after it.
	b = newBudgets(t, newFakeStore(), Options{})
	toolSum := put(t, b, "pay-bot", "payments", "", "sum amount 100/day")
	put(t, b, "pay-bot", "payments", "send", "quota 1/day")
	put(t, b, "pay-bot", "payments", "send", "concurrency 1")
	release := allow(t, b, pay(10, t0))
	defer release()
	if d := deny(t, b, pay(nil, t0)); d.Budget.ID != toolSum.ID || d.Reason != warden.ReasonBudgetArgumentInvalid {
		t.Errorf("denial %+v, want the sum's bad argument", d)
	}
	if d := deny(t, b, pay(1000, t0)); d.Budget.ID != toolSum.ID || d.RetryAfter != 0 {
		t.Errorf("denial %+v, want the sum's amount over the limit", d)
	}
}

func TestCountersSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	clk := newClock(t0)
	b := newBudgets(t, store, clk.opts())
	rate := put(t, b, "pay-bot", "", "", "rate 10/hour")
	quota := put(t, b, "pay-bot", "payments", "", "quota 100/day")
	sum := put(t, b, "pay-bot", "payments", "send", "sum amount 500/day")
	conc := put(t, b, "pay-bot", "payments", "send", "concurrency 5")
	allow(t, b, pay(400.5, t0)) // never released: the process "dies" with it in flight
	for i := range 8 {
		allow(t, b, pay(10, t0.Add(time.Duration(i)*time.Second)))()
	}
	before := b.Show("pay-bot", t0.Add(time.Minute))
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c, ok := store.counter(quota.ID); !ok || c.Used != 9 || !c.WindowStart.Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)) || !c.UpdatedAt.Equal(t0) {
		t.Errorf("stored quota counter %+v", c)
	}
	if _, ok := store.counter(conc.ID); ok {
		t.Error("a concurrency counter was stored")
	}

	b2 := newBudgets(t, store, clk.opts())
	after := b2.Show("pay-bot", t0.Add(time.Minute))
	if len(after) != len(before) {
		t.Fatalf("%d budgets after the restart, %d before", len(after), len(before))
	}
	for i := range before {
		want := before[i]
		if want.Budget.ID == conc.ID {
			want.Used, want.Remaining = 0, want.Limit // no call of the old process is in flight
		}
		got := after[i]
		if got.Budget.ID != want.Budget.ID || math.Abs(got.Used-want.Used) > 1e-6 || got.Remaining-want.Remaining > 1e-6 ||
			got.ResetsAt.Sub(want.ResetsAt).Abs() > time.Microsecond || (got.RetryAfter-want.RetryAfter).Abs() > time.Microsecond {
			t.Errorf("%s after the restart:\n got %+v\nwant %+v", Describe(got.Budget), got, want)
		}
	}
	// The limits hold across the restart: one call left in the rate's burst, then 10 in the sum.
	allow(t, b2, pay(9.5, t0.Add(time.Minute)))
	if d := deny(t, b2, pay(1, t0.Add(time.Minute))); d.Budget.ID != rate.ID {
		t.Errorf("refused by %s, want the rate", Describe(d.Budget))
	}
	if d := deny(t, b2, pay(10.5, t0.Add(time.Hour))); d.Budget.ID != sum.ID {
		t.Errorf("refused by %s, want the sum", Describe(d.Budget))
	}

	// A restart in the next window starts it afresh.
	if err := b2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b3 := newBudgets(t, store, clk.opts())
	tomorrow := time.Date(2026, 3, 11, 0, 0, 1, 0, time.UTC)
	for _, st := range b3.Show("pay-bot", tomorrow) {
		if st.Used != 0 {
			t.Errorf("%s: used %v in a new day", Describe(st.Budget), st.Used)
		}
	}
	allow(t, b3, pay(500, tomorrow))
}

// TestUnflushedUseIsLost pins down the documented crash window: what was not flushed is not known
// to the next process.
func TestUnflushedUseIsLost(t *testing.T) {
	t.Parallel()
	store := newFakeStore()
	b := newBudgets(t, store, Options{})
	quota := put(t, b, "triage-bot", "", "", "quota 5/day")
	allow(t, b, call("triage-bot", "github", "x", t0))
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	allow(t, b, call("triage-bot", "github", "x", t0))
	b2 := newBudgets(t, store, Options{})
	if st := status(t, b2, quota, t0); st.Used != 1 {
		t.Errorf("used %v after a crash, want the flushed 1", st.Used)
	}
}

func TestRunFlushes(t *testing.T) {
	t.Parallel()
	store := newFakeStore()
	store.saved = make(chan struct{}, 1)
	clk := clock.NewFake(t0)
	b := newBudgets(t, store, Options{FlushInterval: 5 * time.Millisecond, Clock: clk})
	quota := put(t, b, "triage-bot", "", "", "quota 5/day")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	allow(t, b, call("triage-bot", "github", "x", t0))
	if err := clk.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Millisecond)
	select {
	case <-store.saved:
	case <-time.After(5 * time.Second):
		t.Fatal("the periodic flush never saved the counter")
	}
	if c, ok := store.counter(quota.ID); !ok || c.Used != 1 {
		t.Fatalf("saved counter %+v, %v; want used 1", c, ok)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestRunFlushesOnShutdown(t *testing.T) {
	t.Parallel()
	store := newFakeStore()
	b := newBudgets(t, store, Options{FlushInterval: time.Hour})
	quota := put(t, b, "triage-bot", "", "", "quota 5/day")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	allow(t, b, call("triage-bot", "github", "x", t0))
	allow(t, b, call("triage-bot", "github", "x", t0))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, ok := store.counter(quota.ID); !ok || c.Used != 2 {
		t.Errorf("counter after shutdown %+v", c)
	}
}

func TestFlushFailureKeepsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	b := newBudgets(t, store, Options{})
	quota := put(t, b, "triage-bot", "", "", "quota 5/day")
	allow(t, b, call("triage-bot", "github", "x", t0))
	store.setFail(errors.New("disk full"))
	if err := b.Flush(ctx); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Flush = %v, want the store's error", err)
	}
	store.setFail(nil)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c, ok := store.counter(quota.ID); !ok || c.Used != 1 {
		t.Errorf("counter %+v", c)
	}
	saves := store.saves
	if err := b.Flush(ctx); err != nil || store.saves != saves {
		t.Errorf("a flush with nothing changed wrote the store (err %v)", err)
	}
}

func TestPutKeepsWhatWasUsed(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	b := newBudgets(t, newFakeStore(), clk.opts())
	u := call("triage-bot", "github", "issues.comment", t0)
	put(t, b, "triage-bot", "github", "issues.comment", "rate 20/hour")
	for range 20 {
		allow(t, b, u)
	}
	// A higher rate: the 20 calls in the bucket stay, 20 more fit.
	put(t, b, "triage-bot", "github", "issues.comment", "rate 40/hour")
	for range 20 {
		allow(t, b, u)
	}
	d := deny(t, b, u)
	if d.RetryAfter != 90*time.Second {
		t.Errorf("RetryAfter %s, want 90s at 40/hour", d.RetryAfter)
	}
	// A lower one: the agent waits until the bucket has drained below it.
	put(t, b, "triage-bot", "github", "issues.comment", "rate 10/hour")
	if d := deny(t, b, u); d.RetryAfter != 31*6*time.Minute {
		t.Errorf("RetryAfter %s, want 3h6m for 40 calls in a bucket of 10/hour", d.RetryAfter)
	}

	quota := put(t, b, "triage-bot", "", "", "quota 10/day")
	for range 5 {
		allow(t, b, call("triage-bot", "slack", "x", t0))
	}
	put(t, b, "triage-bot", "", "", "quota 6/day")
	if st := status(t, b, quota, t0); st.Used != 5 || st.Remaining != 1 {
		t.Errorf("quota after a new limit %+v", st)
	}
	// Another window length: what was counted over a day says nothing about this hour.
	quota = put(t, b, "triage-bot", "", "", "quota 6/hour")
	if st := status(t, b, quota, t0); st.Used != 0 {
		t.Errorf("quota after a new window %+v", st)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	b := newBudgets(t, store, Options{})
	bud := put(t, b, "triage-bot", "", "", "quota 1/day")
	allow(t, b, call("triage-bot", "github", "x", t0))
	deny(t, b, call("triage-bot", "github", "x", t0))
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, bud.ID); err != nil {
		t.Fatal(err)
	}
	allow(t, b, call("triage-bot", "github", "x", t0))
	if st := b.Show("triage-bot", t0); len(st) != 0 {
		t.Errorf("Show after delete: %+v", st)
	}
	if err := b.Delete(ctx, bud.ID); warden.ErrorCode(err) != warden.ENotFound {
		t.Errorf("Delete again = %v, want not_found", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Errorf("Flush after delete: %v", err)
	}
	if _, ok := store.counter(bud.ID); ok {
		t.Error("the deleted budget's counter is still stored")
	}
	// Declared again, it starts from nothing.
	put(t, b, "triage-bot", "", "", "quota 1/day")
	allow(t, b, call("triage-bot", "github", "x", t0))
}

func TestPutInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	b := newBudgets(t, store, Options{})
	if err := b.Put(ctx, &warden.Budget{Agent: "triage-bot", Kind: warden.BudgetRate, Limit: 0, Window: time.Hour}); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("Put(limit 0) = %v", err)
	}
	if err := b.Put(ctx, nil); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("Put(nil) = %v", err)
	}
	// A budget without an ID gets the derived one; the caller's value is not touched.
	bud := &warden.Budget{Agent: "triage-bot", Kind: warden.BudgetRate, Limit: 5, Window: time.Second}
	if err := b.Put(ctx, bud); err != nil {
		t.Fatal(err)
	}
	if bud.ID != "" {
		t.Error("Put changed its argument")
	}
	stored, _ := store.Budgets(ctx)
	if len(stored) != 1 || stored[0].ID != ID("triage-bot", "", "", warden.BudgetRate, "") || stored[0].UpdatedAt.IsZero() {
		t.Errorf("stored %+v", stored)
	}
	// A store failure applies nothing.
	store.setFail(errors.New("disk full"))
	if err := b.Put(ctx, &warden.Budget{Agent: "triage-bot", Kind: warden.BudgetQuota, Limit: 1, Window: time.Hour}); err == nil {
		t.Fatal("Put succeeded with a failing store")
	}
	if st := b.Show("triage-bot", t0); len(st) != 1 {
		t.Errorf("a budget the store refused was applied: %+v", st)
	}
}

func TestReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	clk := newClock(t0)
	b := newBudgets(t, store, clk.opts())
	parse := func(tool, action, spec string) *warden.Budget {
		bud, err := ParseSpec("triage-bot", tool, action, spec)
		if err != nil {
			t.Fatal(err)
		}
		return bud
	}
	other := put(t, b, "other-bot", "", "", "quota 1/day")
	gone := put(t, b, "triage-bot", "slack", "", "rate 1/second")
	declared := []*warden.Budget{parse("github", "issues.comment", "rate 20/hour"), parse("", "", "quota 1000/day")}
	if err := b.Replace(ctx, "triage-bot", declared); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		allow(t, b, call("triage-bot", "github", "issues.comment", t0))
	}
	stored, _ := store.Budgets(ctx)
	if len(stored) != 3 {
		t.Fatalf("stored %d budgets, want 3", len(stored))
	}
	for _, s := range stored {
		if s.ID == gone.ID {
			t.Error("a budget no longer declared is still stored")
		}
	}

	// Applying the same set again changes nothing: not the store, not the counters.
	clk.add(time.Hour)
	if err := b.Replace(ctx, "triage-bot", declared); err != nil {
		t.Fatal(err)
	}
	again, _ := store.Budgets(ctx)
	for i := range again {
		if *again[i] != *stored[i] {
			t.Errorf("re-applying changed %+v to %+v", stored[i], again[i])
		}
	}
	if st := status(t, b, declared[1], t0); st.Used != 3 {
		t.Errorf("re-applying reset the quota: %+v", st)
	}
	// A changed limit is put; the use stays.
	declared[1] = parse("", "", "quota 500/day")
	if err := b.Replace(ctx, "triage-bot", declared); err != nil {
		t.Fatal(err)
	}
	if st := status(t, b, declared[1], t0); st.Used != 3 || st.Limit != 500 {
		t.Errorf("after a new limit: %+v", st)
	}
	// An empty set removes all of the agent's budgets and no one else's.
	if err := b.Replace(ctx, "triage-bot", nil); err != nil {
		t.Fatal(err)
	}
	if st := b.Show("triage-bot", t0); len(st) != 0 {
		t.Errorf("Show after replacing with nothing: %+v", st)
	}
	if st := b.Show("other-bot", t0); len(st) != 1 || st[0].Budget.ID != other.ID {
		t.Errorf("other-bot's budgets: %+v", st)
	}

	for _, tt := range []struct {
		buds []*warden.Budget
		want string
	}{
		{[]*warden.Budget{other}, "is for agent other-bot"},
		{[]*warden.Budget{parse("", "", "rate 1/s"), parse("", "", "rate 2/s")}, "declared twice"},
		{[]*warden.Budget{{Agent: "triage-bot", Kind: "tokens"}}, `invalid budget kind "tokens"`},
	} {
		if err := b.Replace(ctx, "triage-bot", tt.buds); warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Replace = %v, want %q", err, tt.want)
		}
	}
}

// TestBrokenStoredBudget: a stored budget this warden can't enforce (a newer one wrote it) denies
// what it covers, through an internal error, until an admin fixes it.
func TestBrokenStoredBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	broken := &warden.Budget{Agent: "triage-bot", Tool: "github", Kind: "tokens", Limit: 1000, Window: time.Hour}
	broken.ID = ID(broken.Agent, broken.Tool, "", broken.Kind, "")
	if err := store.PutBudget(ctx, broken); err != nil {
		t.Fatal(err)
	}
	negative, _ := ParseSpec("triage-bot", "slack", "", "quota 5/day")
	negative.Limit = -5
	if err := store.PutBudget(ctx, negative); err != nil {
		t.Fatal(err)
	}
	b := newBudgets(t, store, Options{})
	for _, tool := range []string{"github", "slack"} {
		release, d, err := b.Consume(call("triage-bot", tool, "x", t0))
		if warden.ErrorCode(err) != warden.EInternal || release != nil || d != nil {
			t.Errorf("Consume on %s = %v, %v, %v; want an internal error", tool, release != nil, d, err)
		}
	}
	allow(t, b, call("triage-bot", "jira", "x", t0))
	// Put fixes the one with a valid ID, Delete removes the other.
	put(t, b, "triage-bot", "slack", "", "quota 5/day")
	allow(t, b, call("triage-bot", "slack", "x", t0))
	if err := b.Delete(ctx, broken.ID); err != nil {
		t.Fatal(err)
	}
	allow(t, b, call("triage-bot", "github", "x", t0))
}

func TestBadStoredCounterCountsAsUsedUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newFakeStore()
	quota, _ := ParseSpec("triage-bot", "", "", "quota 5/day")
	if err := store.PutBudget(ctx, quota); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	if err := store.SaveBudgetCounters(ctx, []*warden.BudgetCounter{{BudgetID: quota.ID, WindowStart: day, Used: math.NaN()}}); err != nil {
		t.Fatal(err)
	}
	rate, _ := ParseSpec("triage-bot", "slack", "", "rate 1/minute")
	if err := store.PutBudget(ctx, rate); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveBudgetCounters(ctx, []*warden.BudgetCounter{{BudgetID: rate.ID, TAT: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	b := newBudgets(t, store, Options{})
	deny(t, b, call("triage-bot", "github", "x", t0))
	allow(t, b, call("triage-bot", "github", "x", day.Add(24*time.Hour))) // until the window ends
	deny(t, b, call("triage-bot", "slack", "x", time.Now()))
	allow(t, b, call("triage-bot", "slack", "x", time.Now().Add(time.Minute)))
}

func TestConsumeRefusesABadClock(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "triage-bot", "", "", "quota 5/day")
	for _, at := range []time.Time{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, _, err := b.Consume(call("triage-bot", "github", "x", at)); warden.ErrorCode(err) != warden.EInternal {
			t.Errorf("Consume at %s = %v, want an internal error", at, err)
		}
	}
	allow(t, b, call("triage-bot", "github", "x", time.Time{})) // zero means now
}

func TestShow(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	put(t, b, "pay-bot", "payments", "send", "sum amount 500/day")
	put(t, b, "pay-bot", "payments", "", "concurrency 2")
	put(t, b, "pay-bot", "", "", "rate 60/minute")
	put(t, b, "pay-bot", "github", "", "quota 10/hour")
	release := allow(t, b, pay(125, t0))
	defer release()
	got := b.Show("pay-bot", t0.Add(500*time.Millisecond))
	want := []struct {
		desc                   string
		used, limit, remaining float64
		resetsAt               time.Time
	}{
		{"rate 60/minute on pay-bot", 0.5, 60, 59.5, t0.Add(time.Second)},
		{"quota 10/hour on pay-bot github", 0, 10, 10, t0.Add(time.Hour)},
		{"concurrency 2 on pay-bot payments", 1, 2, 1, time.Time{}},
		{"sum amount 500/day on pay-bot payments send", 125, 500, 375, time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("Show = %d budgets, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if Describe(g.Budget) != w.desc || math.Abs(g.Used-w.used) > 1e-9 || g.Limit != w.limit ||
			math.Abs(g.Remaining-w.remaining) > 1e-9 || !g.ResetsAt.Equal(w.resetsAt) || g.RetryAfter != 0 {
			t.Errorf("Show[%d] = %s %+v, want %+v", i, Describe(g.Budget), g, w)
		}
	}
	if st := b.Show("nobody", t0); st != nil {
		t.Errorf("Show(nobody) = %+v", st)
	}
}

// TestConcurrentConsume hammers one agent from many goroutines until its quota is spent: the limits
// hold exactly, while admin changes and flushes race the calls. Run it with -race.
func TestConcurrentConsume(t *testing.T) {
	t.Parallel()
	b := newBudgets(t, newFakeStore(), Options{})
	quota := put(t, b, "busy-bot", "", "", "quota 1000/day")
	put(t, b, "busy-bot", "github", "", "concurrency 8")
	sum := put(t, b, "busy-bot", "github", "pay", "sum amount 300/day")

	var (
		allowed, paid, inFlight, maxInFlight atomic.Int64
		wg                                   sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	admin := make(chan struct{})
	go func() {
		defer close(admin)
		for ctx.Err() == nil {
			if err := b.Put(ctx, mustParse(t, "busy-bot", "github", "", "concurrency 8")); err != nil {
				t.Error(err)
			}
			if err := b.Flush(ctx); err != nil {
				t.Error(err)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for g := range 64 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ {
				u := call("busy-bot", "github", "list", t0)
				if (g+i)%4 == 0 {
					u.Action, u.Args = "pay", map[string]any{"amount": 1.0}
				}
				release, d, err := b.Consume(u)
				if err != nil {
					t.Error(err)
					return
				}
				if d != nil {
					if d.Budget.ID == quota.ID {
						return // spent
					}
					continue
				}
				allowed.Add(1)
				if u.Action == "pay" {
					paid.Add(1)
				}
				n := inFlight.Add(1)
				for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
				}
				time.Sleep(time.Duration(i%3) * 10 * time.Microsecond)
				inFlight.Add(-1)
				release()
				release()
			}
			t.Error("the quota never ran out")
		})
	}
	wg.Wait()
	cancel()
	<-admin
	if n := allowed.Load(); n != 1000 {
		t.Errorf("%d calls allowed, want the quota's 1000", n)
	}
	if m := maxInFlight.Load(); m > 8 {
		t.Errorf("%d calls in flight at once, limit 8", m)
	}
	if st := status(t, b, quota, t0); st.Used != 1000 {
		t.Errorf("quota used %v", st.Used)
	}
	if st := status(t, b, sum, t0); st.Used != float64(paid.Load()) || st.Used > 300 {
		t.Errorf("sum used %v for %d payments, limit 300", st.Used, paid.Load())
	}
}

func mustParse(t testing.TB, agent, tool, action, spec string) *warden.Budget {
	t.Helper()
	bud, err := ParseSpec(agent, tool, action, spec)
	if err != nil {
		t.Fatal(err)
	}
	return bud
}
