package budget

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// This file is the seam between what budgets mean and where their counters live. Budgets (in
// budget.go) owns the declarations, the store and the messages; an agentLedger owns one agent's
// counters and applies a call's charges to all of them, or to none, under one mutex. Replicas that
// share budgets through PostgreSQL use the shared ledger (shared.go) instead, whose consume reads
// and writes the same counters in one store transaction; both run the arithmetic of charge and of
// a single counter (check, take, the conversion to and from warden.BudgetCounter).

const (
	// slack absorbs binary rounding in sums: amounts such as 0.1 have no exact float64, and a total
	// that reaches the limit exactly must not be refused because of the last bit. One part in a
	// billion of the limit is far below anything a limit is meant to resolve.
	slack = 1e-9
	// earlyTolerance does the same for rates, in time: a call that comes at most this much before
	// its turn is let through, since a Retry-After rounded to the nanosecond, clocks and float
	// arithmetic are none of them finer. It never adds up: each call still fills the bucket by a
	// whole call, so the bucket can overflow by at most a microsecond's worth.
	earlyTolerance = time.Microsecond
)

// agentLedger is one agent's budgets and their counters.
type agentLedger struct {
	mu sync.Mutex
	// byID holds every budget of the agent, and scopes indexes the same limiters by what they
	// apply to. Both are guarded by mu, as is every counter they hold.
	byID   map[string]*limiter
	scopes scopes
}

// scopes finds the budgets that apply to a call without building a key: three map lookups at most.
type scopes struct {
	agent []*limiter // every call of the agent
	tools map[string]*toolScopes
}

type toolScopes struct {
	tool    []*limiter // every call to the tool
	actions map[string][]*limiter
}

func (s *scopes) applicable(tool, action string) [3][]*limiter {
	sets := [3][]*limiter{s.agent}
	if ts := s.tools[tool]; ts != nil {
		sets[1] = ts.tool
		sets[2] = ts.actions[action]
	}
	return sets
}

// rebuild indexes byID again after a change; changes are rare, so the index is simply remade.
func (a *agentLedger) rebuild() {
	ls := make([]*limiter, 0, len(a.byID))
	for _, l := range a.byID {
		ls = append(ls, l)
	}
	sortLimiters(ls)
	s := scopes{tools: map[string]*toolScopes{}}
	for _, l := range ls {
		b := l.bud
		if b.Tool == "" {
			s.agent = append(s.agent, l)
			continue
		}
		ts := s.tools[b.Tool]
		if ts == nil {
			ts = &toolScopes{actions: map[string][]*limiter{}}
			s.tools[b.Tool] = ts
		}
		if b.Action == "" {
			ts.tool = append(ts.tool, l)
		} else {
			ts.actions[b.Action] = append(ts.actions[b.Action], l)
		}
	}
	a.scopes = s
}

// sortLimiters orders budgets as people read them: see compareBudgets.
func sortLimiters(ls []*limiter) {
	slices.SortFunc(ls, func(x, y *limiter) int { return compareBudgets(x.bud, y.bud) })
}

// compareBudgets orders one agent's budgets broadest scope first (the agent's, then each tool's
// before its actions'), then by kind and argument.
func compareBudgets(x, y *warden.Budget) int {
	return cmp.Or(cmp.Compare(x.Tool, y.Tool), cmp.Compare(x.Action, y.Action), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Arg, y.Arg))
}

type kind uint8

const (
	kindRate kind = iota + 1
	kindQuota
	kindConcurrency
	kindSum
)

// limiter is one budget and its counter.
type limiter struct {
	bud    *warden.Budget // shared with callers through Denial and Status; never modified
	kind   kind
	limit  float64
	window int64 // nanoseconds; rate, quota and sum
	// interval is a rate's emission interval, window/limit, in nanoseconds: how long one call
	// takes to drain from the bucket.
	interval float64
	// broken says why a budget read from the store can't be enforced. Every call it applies to
	// fails with an internal error (fail closed) until an admin puts or deletes it.
	broken string

	// The counter, guarded by the agent's mutex.
	//
	// A rate is a GCRA kept as a bucket level: level calls at time at, draining one per interval.
	// The theoretical arrival time of GCRA is at + level×interval. The level form keeps the
	// arithmetic in calls, where float64 is exact for whole numbers, instead of in absolute
	// nanoseconds, where it is not.
	level float64
	at    int64
	// Quotas and sums: the use in the calendar window starting at start (Unix nanoseconds).
	start int64
	used  float64
	// Concurrency: calls admitted and not yet released. Never persisted: after a restart no call
	// of the old process is in flight.
	inflight int
	// dirty marks a counter that changed since the last flush.
	dirty bool
}

func newLimiter(b *warden.Budget) *limiter {
	l := &limiter{bud: b, limit: b.Limit, window: int64(b.Window)}
	switch b.Kind {
	case warden.BudgetRate:
		l.kind = kindRate
		l.interval = float64(b.Window) / b.Limit
	case warden.BudgetQuota:
		l.kind = kindQuota
	case warden.BudgetConcurrency:
		l.kind = kindConcurrency
	case warden.BudgetSum:
		l.kind = kindSum
	}
	return l
}

// reconfigure gives a limiter a new limit or window for the same budget ID (same scope, kind and
// argument), keeping what has been used: declaring a budget again must not hand out a fresh
// allowance. A rate keeps the calls in its bucket, which then drain at the new rate; a quota or sum
// keeps its use if the window length is unchanged and starts over otherwise, since use counted over
// an hour says nothing about the current day; concurrency keeps its calls in flight.
func (l *limiter) reconfigure(b *warden.Budget, now int64) {
	if l.broken != "" {
		*l = *newLimiter(b)
		return
	}
	if l.kind == kindRate {
		l.level, l.at = l.levelAt(now), now
	}
	if (l.kind == kindQuota || l.kind == kindSum) && int64(b.Window) != l.window {
		l.start, l.used = 0, 0
	}
	fresh := newLimiter(b)
	l.bud, l.limit, l.window, l.interval = fresh.bud, fresh.limit, fresh.window, fresh.interval
	l.dirty = l.kind != kindConcurrency
}

// levelAt is a rate's bucket level at now. A now before at (calls race to the lock, or a counter
// restored as its arrival time) raises the level, exactly as GCRA measures from its arrival time.
func (l *limiter) levelAt(now int64) float64 {
	lvl := l.level - float64(now-l.at)/l.interval
	if lvl < 0 {
		return 0
	}
	return lvl
}

// windowStart is the start of the calendar window holding now. Unix time counts no leap seconds,
// so days start at 00:00 UTC and hours and minutes on the clock.
func (l *limiter) windowStart(now int64) int64 { return now - now%l.window }

// usedAt is a quota's or sum's use in the window holding now. A window never moves back: a call
// stamped just before midnight that reaches the lock after one stamped just after counts in the new
// day rather than wiping it.
func (l *limiter) usedAt(now int64) (used float64, start int64) {
	if s := l.windowStart(now); s > l.start {
		return 0, s
	}
	return l.used, l.start
}

// verdict is what checking one counter found: whether the call fits, the use before it, and when
// it would fit if it doesn't (0 when waiting won't help).
type verdict struct {
	ok    bool
	used  float64
	retry time.Duration
}

// check tells whether a call adding amount fits the budget at now, changing nothing.
func (l *limiter) check(now int64, amount float64) verdict {
	switch l.kind {
	case kindRate:
		lvl := l.levelAt(now)
		if wait := (lvl + amount - l.limit) * l.interval; wait > float64(earlyTolerance) {
			return verdict{used: lvl, retry: waitDuration(wait)}
		}
		return verdict{ok: true, used: lvl}
	case kindQuota, kindSum:
		used, start := l.usedAt(now)
		tolerance := 0.0
		if l.kind == kindSum {
			tolerance = l.limit * slack
		}
		if used+amount <= l.limit+tolerance {
			return verdict{ok: true, used: used}
		}
		v := verdict{used: used}
		if amount <= l.limit+tolerance {
			v.retry = time.Duration(start + l.window - now)
		}
		return v
	case kindConcurrency:
		n := float64(l.inflight)
		return verdict{ok: n+1 <= l.limit, used: n}
	}
	return verdict{}
}

// take charges amount to the counter; check has said it fits.
func (l *limiter) take(now int64, amount float64) {
	switch l.kind {
	case kindRate:
		l.level, l.at = l.levelAt(now)+amount, now
		l.dirty = true
	case kindQuota, kindSum:
		used, start := l.usedAt(now)
		l.used, l.start = used+amount, start
		l.dirty = true
	case kindConcurrency:
		l.inflight++
	}
}

// counter is the persisted form of the counter; ok is false for concurrency, which has none.
func (l *limiter) counter(updated time.Time) (*warden.BudgetCounter, bool) {
	c := &warden.BudgetCounter{BudgetID: l.bud.ID, UpdatedAt: updated}
	switch l.kind {
	case kindRate:
		if l.level > 0 {
			// Rounded up: a restored counter may be a nanosecond stricter, never looser.
			c.TAT = time.Unix(0, l.at+int64(math.Ceil(l.level*l.interval))).UTC()
		}
	case kindQuota, kindSum:
		c.WindowStart, c.Used = time.Unix(0, l.start).UTC(), l.used
	default:
		return nil, false
	}
	return c, true
}

// restore sets the counter from its persisted form. A stored window that has passed needs no
// reset here: usedAt starts a new window the moment a call falls in one. A counter that can't
// be right (a negative use, a time outside the range warden works in) is read as exhausted,
// because guessing low would hand out allowance nobody granted.
func (l *limiter) restore(c *warden.BudgetCounter, now time.Time) (problem string) {
	switch l.kind {
	case kindRate:
		if c.TAT.IsZero() {
			return ""
		}
		tat, ok := unixNano(c.TAT)
		if !ok {
			l.level, l.at = l.limit, now.UnixNano()
			return "its arrival time is out of range"
		}
		// GCRA's arrival time is the moment the bucket is empty: level 0 at TAT.
		l.level, l.at = 0, tat
	case kindQuota, kindSum:
		start, ok := unixNano(c.WindowStart)
		if !ok || start%l.window != 0 {
			// Not a window of this budget's length: the use belongs to a window it no longer has.
			return ""
		}
		l.start = start
		if math.IsNaN(c.Used) || math.IsInf(c.Used, 0) || c.Used < 0 {
			l.used = l.limit
			return "its use is not a non-negative number"
		}
		l.used = c.Used
	}
	return ""
}

// status reports the budget's state at now.
func (l *limiter) status(now int64) Status {
	st := Status{Budget: l.bud, Limit: l.limit}
	if l.broken != "" {
		return st
	}
	switch l.kind {
	case kindRate:
		st.Used = l.levelAt(now)
		if st.Used > 0 {
			st.ResetsAt = time.Unix(0, now+int64(math.Ceil(st.Used*l.interval))).UTC()
		}
		if v := l.check(now, 1); !v.ok {
			st.RetryAfter = v.retry
		}
	case kindQuota, kindSum:
		used, start := l.usedAt(now)
		st.Used, st.ResetsAt = used, time.Unix(0, start+l.window).UTC()
		// Exhausted: not one more call, or, for a sum, nothing left to add.
		if l.kind == kindQuota && used+1 > l.limit || l.kind == kindSum && used >= l.limit*(1-slack) {
			st.RetryAfter = time.Duration(start + l.window - now)
		}
	case kindConcurrency:
		st.Used = float64(l.inflight)
	}
	st.Remaining = max(0, l.limit-st.Used)
	return st
}

// waitDuration turns a wait in nanoseconds into a Duration. It rounds to the nearest nanosecond,
// not up: the float arithmetic leaves noise far below a nanosecond that rounding up would turn into
// "3m0.000000001s", and a client that comes back half a nanosecond early is within earlyTolerance.
func waitDuration(ns float64) time.Duration {
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(math.Round(ns))
}

// Warden measures time as Unix nanoseconds between these bounds; time.Time.UnixNano is undefined
// outside 1678-2262, and a clock outside this range is a clock that is wrong.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

func unixNano(t time.Time) (int64, bool) {
	if t.Before(minTime) || !t.Before(maxTime) {
		return 0, false
	}
	return t.UnixNano(), true
}

// release ends the concurrency slots a call holds. A call holds at most three: one per scope,
// since a budget's ID is derived from its scope and kind.
type release struct {
	a    *agentLedger
	ls   [3]*limiter
	done atomic.Bool
}

func (r *release) release() {
	if r.done.Swap(true) {
		return
	}
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	for _, l := range r.ls {
		// A budget replaced since keeps its limiter, so the slot is returned where it was taken; a
		// deleted one counts nothing any more, and returning to it is harmless.
		if l != nil && l.inflight > 0 {
			l.inflight--
		}
	}
}

func noRelease() {}

// consume checks every budget that applies to the call and, only if all of them allow it, charges
// all of them. The agent's mutex makes the two passes one atomic step.
func (a *agentLedger) consume(u *Usage, now int64) (func(), float64, *Denial, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	held, burn, d, err := charge(a.scopes.applicable(u.Tool, u.Action), u, now)
	if d != nil || err != nil {
		return nil, 0, d, err
	}
	if held[0] == nil {
		return noRelease, burn, nil, nil
	}
	rel := &release{a: a, ls: held}
	return rel.release, burn, nil, nil
}

// charge checks the call against every budget in sets and, only if all of them allow it, takes it
// from each: the arithmetic of one call, whichever ledger holds the counters and makes the two
// passes one atomic step. held lists the concurrency budgets the call now holds a slot of, first
// ones first; a call holds at most three, one per scope, since a budget's ID derives from its
// scope and kind. burn is the largest share of a rate, quota or sum budget's limit the call took.
func charge(sets [3][]*limiter, u *Usage, now int64) (held [3]*limiter, burn float64, d *Denial, err error) {
	var worst refusal
	for _, set := range sets {
		for _, l := range set {
			if l.broken != "" {
				return held, 0, nil, warden.WrapError(warden.EInternal, "a budget can't be enforced",
					errors.New("budget "+l.bud.ID+" in the store is invalid: "+l.broken))
			}
			amount := 1.0
			if l.kind == kindSum {
				var problem string
				if amount, problem = argAmount(u.Args, l.bud.Arg); problem != "" {
					worst.keepWorse(refusal{l: l, problem: problem})
					continue
				}
			}
			if v := l.check(now, amount); !v.ok {
				worst.keepWorse(refusal{l: l, v: v, amount: amount})
			}
		}
	}
	if worst.l != nil {
		return held, 0, worst.denial(now), nil
	}

	n := 0
	for _, set := range sets {
		for _, l := range set {
			amount := 1.0
			if l.kind == kindSum {
				amount, _ = argAmount(u.Args, l.bud.Arg) // found fine by the first pass
			}
			l.take(now, amount)
			if l.kind == kindConcurrency {
				held[n] = l
				n++
			} else if l.limit > 0 {
				burn = max(burn, amount/l.limit)
			}
		}
	}
	return held, burn, nil, nil
}

// refusal is one budget that refuses a call.
type refusal struct {
	l       *limiter
	v       verdict
	amount  float64
	problem string // what is wrong with a sum's argument
}

// final reports whether waiting can't help: the argument is unusable, or the amount alone is over
// the limit.
func (r *refusal) final() bool {
	return r.problem != "" || r.l.kind == kindSum && r.v.retry == 0
}

// keepWorse keeps the refusal that tells the agent most truly when to come back: one that waiting
// can't fix, else the one with the longest wait. On a tie the broader budget, met first, stays.
func (r *refusal) keepWorse(o refusal) {
	switch {
	case r.l == nil:
	case r.final():
		return
	case !o.final() && o.v.retry <= r.v.retry:
		return
	}
	*r = o
}

func (r *refusal) denial(now int64) *Denial {
	l, b := r.l, r.l.bud
	d := &Denial{Budget: b, Reason: warden.ReasonBudgetExceeded, Used: r.v.used, Limit: l.limit, RetryAfter: r.v.retry}
	what := Format(b) + " on " + scopeText(b)
	switch {
	case r.problem != "":
		d.Reason = warden.ReasonBudgetArgumentInvalid
		d.Used, _ = l.usedAt(now)
		d.Message = what + " needs argument " + b.Arg + " as a non-negative number: " + r.problem
	case l.kind == kindRate:
		d.Message = what + " exhausted; retry in " + humanDuration(d.RetryAfter)
	case l.kind == kindQuota:
		d.Message = what + " exhausted (" + humanNumber(d.Used) + " used); resets in " + humanDuration(d.RetryAfter)
	case l.kind == kindSum && d.RetryAfter == 0:
		d.Message = what + ": " + b.Arg + " " + humanNumber(r.amount) + " alone is over the limit"
	case l.kind == kindSum:
		d.Message = what + ": " + humanNumber(d.Used) + " used, " + b.Arg + " " + humanNumber(r.amount) +
			" more is over the limit; resets in " + humanDuration(d.RetryAfter)
	case l.kind == kindConcurrency:
		d.Message = what + " exhausted: " + humanNumber(d.Used) + " calls in flight; retry when one ends"
	}
	return d
}

// humanDuration writes a wait the way people read it, rounded up: "45s", "3m", "2m30s", "5h3m".
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	switch {
	case s < 60:
		return strconv.FormatInt(s, 10) + "s"
	case s < 3600:
		if s%60 == 0 {
			return strconv.FormatInt(s/60, 10) + "m"
		}
		return strconv.FormatInt(s/60, 10) + "m" + strconv.FormatInt(s%60, 10) + "s"
	}
	m := (s + 59) / 60
	if m%60 == 0 {
		return strconv.FormatInt(m/60, 10) + "h"
	}
	return strconv.FormatInt(m/60, 10) + "h" + strconv.FormatInt(m%60, 10) + "m"
}

// humanNumber writes a use or an amount without float noise: 0.1+0.2 reads 0.3.
func humanNumber(v float64) string {
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
