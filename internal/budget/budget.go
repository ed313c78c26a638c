// Package budget enforces per-agent budgets (rates, quotas, concurrency and argument sums) that
// every tool call consumes atomically before it proceeds, with counters that survive a restart: in
// memory for one replica, in the shared PostgreSQL store for a fleet of replicas.
package budget

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// Options tune Budgets. The zero value is ready to use.
type Options struct {
	// FlushInterval is how often Run saves changed counters: the most consumption a crash can
	// lose. Default 1s.
	FlushInterval time.Duration
	// Clock times the flushes and tells the time of changes made by Put and Replace, of saved
	// counters and of calls that carry none in Usage.Now. Default the real clock.
	Clock clock.Clock
	// Shared keeps the counters in the store, consumed in one store transaction per call, for
	// replicas that share one PostgreSQL database; the store must be a SharedStore. Without it
	// counters live in memory (one replica, SQLite).
	Shared bool
	// Replica names this replica in the store's count of calls in flight; required when Shared.
	// Two replicas must never share a name: each forgets its own calls in flight on start.
	Replica string
	// Lease is how long a replica's calls in flight count after it last renewed its lease (Run
	// renews it every FlushInterval): a replica that dies holding concurrency slots gives them
	// back this long after. Shared only; default 10s.
	Lease time.Duration
	// StoreTimeout bounds one shared consume, release or status read; a consume that takes
	// longer is refused. Shared only; default 5s.
	StoreTimeout time.Duration
}

const (
	defaultFlushInterval = time.Second
	// finalFlushTimeout bounds the save Run makes on its way out, after its context has ended.
	finalFlushTimeout = 10 * time.Second
)

// Budgets holds every agent's budgets and counters. It is safe for concurrent use.
//
// A budget covers all calls of an agent, the calls to one tool, or one action of a tool. A call
// consumes every budget that covers it, all or none: if any one refuses, nothing is charged.
//
//   - rate N/W is GCRA (the generic cell rate algorithm, a leaky bucket) with emission interval W/N
//     and a burst of N: an idle agent may make N calls at once; after that one call per W/N is let
//     through, and a refused call is told exactly when the next one would be. In the long run that
//     is N calls per W; any one stretch of length W holds at most 2N-1 (a full burst, then the
//     bucket's refill). A rate limits speed; a hard count per window is what a quota is for.
//   - quota N/W counts calls in calendar windows of W in UTC: days start at 00:00 UTC, hours and
//     minutes on the clock. At most N per window; the count starts over with the next window.
//   - sum ARG N/W adds the call's argument ARG over the same calendar windows; the total may not
//     exceed N. The argument must be there and be a finite non-negative JSON number, or the call
//     is denied (fail closed). A string, even "500", is refused (numberOf says why).
//   - concurrency N admits at most N calls at once; the slot is held until the caller releases it.
//
// Counters live in memory and Run saves the changed ones to the store every FlushInterval, so a
// process killed without warning loses at most the last FlushInterval of consumption (plus a save
// in progress); a clean shutdown, which ends Run, saves everything. New reads the counters back; a
// window that has passed in between starts over. Calls in flight are not persisted: after a
// restart none is.
//
// With Options.Shared (replicas on one PostgreSQL) the counters live in the store instead and
// each call that a budget covers is one store transaction, which locks the call's budgets in ID
// order, checks and charges them all or none, and commits: replicas share every budget exactly,
// and nothing is lost to a crash. The declarations stay in each replica's memory: Reload picks
// up what another replica changed. Concurrency counts every replica's calls in flight while the
// replica's lease is live (Options.Lease, 10s by default, renewed by Run every FlushInterval): a
// replica that dies holding slots gives them back that long after its last renewal, and one cut
// off from the store that long has its calls in flight uncounted by the others until it is back.
type Budgets struct {
	store warden.BudgetStore
	log   *slog.Logger
	opts  Options

	// mu serialises the changes (Put, Delete, Replace) and the flushes, each of which writes the
	// store and then memory, so that memory and store agree on the order of events.
	mu      sync.Mutex
	budgets map[string]*warden.Budget // by ID; guarded by mu
	// shared is the ledger in the store, when Options.Shared; nil keeps counters in memory.
	shared *sharedLedger

	// ledgers maps an agent's name to its ledger. Consume reads it without a lock; a change copies
	// it under mu. An agent's ledger, once made, stays for the life of Budgets, so that a release
	// always finds the mutex that guarded its take.
	ledgers atomic.Pointer[map[string]*agentLedger]
}

// Usage is one call about to be made.
type Usage struct {
	Agent  string // the agent's name
	Tool   string
	Action string
	Args   map[string]any // the call's decoded JSON arguments; sums read them
	Now    time.Time      // the time of the call; zero means Options.Clock's now
}

// Denial says why a call was refused.
type Denial struct {
	Budget *warden.Budget // the refusing budget; shared, do not modify
	Reason string         // warden.ReasonBudgetExceeded or warden.ReasonBudgetArgumentInvalid
	// Used is the use before this call (a rate: calls in the bucket; concurrency: calls in flight);
	// Limit is the budget's.
	Used, Limit float64
	// RetryAfter is how long until the same call would be allowed: for a rate, until the bucket
	// has room; for a quota or sum, until the window ends. Zero when waiting won't tell: a
	// concurrency slot frees when some call ends, and a bad argument or an amount over the whole
	// limit never fits.
	RetryAfter time.Duration
	// Message is for the agent: "rate 20/hour on github issues.comment exhausted; retry in 3m".
	Message string
}

// Status is a budget's state at one moment, for `warden budget show`.
type Status struct {
	Budget *warden.Budget // shared, do not modify
	// Used is the use now: calls in a rate's bucket, in a quota's window, a sum's total, calls in
	// flight for concurrency.
	Used, Limit, Remaining float64
	// ResetsAt is when the use is back to zero: the end of a quota's or sum's window, the time a
	// rate's bucket is empty (zero if it is). Zero for concurrency.
	ResetsAt time.Time
	// RetryAfter is how long until a call would be allowed again, zero if one would be now (a
	// sum: until its window ends, once nothing is left).
	RetryAfter time.Duration
}

// New loads the budgets and their counters from store. A stored budget that fails validation
// (written by a newer warden, say) is kept and refuses every call it covers with an internal error,
// since skipping it would lift a limit nobody lifted; Put or Delete fixes it.
func New(ctx context.Context, store warden.BudgetStore, log *slog.Logger, opts Options) (*Budgets, error) {
	if opts.FlushInterval < 0 {
		return nil, warden.Errorf(warden.EInvalid, "budget flush interval %s is negative", opts.FlushInterval)
	}
	if opts.FlushInterval == 0 {
		opts.FlushInterval = defaultFlushInterval
	}
	opts.Clock = clock.Or(opts.Clock)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Budgets{store: store, log: log, opts: opts, budgets: map[string]*warden.Budget{}}
	ledgers := map[string]*agentLedger{}
	b.ledgers.Store(&ledgers)
	if opts.Shared {
		shared, err := newShared(ctx, store, opts)
		if err != nil {
			return nil, err
		}
		b.shared = shared
	}

	buds, err := store.Budgets(ctx)
	if err != nil {
		return nil, fmt.Errorf("load budgets: %w", err)
	}
	var counters []*warden.BudgetCounter
	if b.shared == nil {
		// Shared counters stay in the store: every call reads them there.
		if counters, err = store.BudgetCounters(ctx); err != nil {
			return nil, fmt.Errorf("load budget counters: %w", err)
		}
	}
	for _, bud := range buds {
		bud := *bud
		l := b.loaded(&bud)
		if _, taken := b.budgets[bud.ID]; taken {
			return nil, fmt.Errorf("load budgets: budget %s is stored twice", bud.ID)
		}
		b.budgets[bud.ID] = &bud
		a := ledgers[bud.Agent]
		if a == nil {
			a = &agentLedger{byID: map[string]*limiter{}}
			ledgers[bud.Agent] = a
		}
		a.byID[bud.ID] = l
	}
	for _, c := range counters {
		bud := b.budgets[c.BudgetID]
		if bud == nil {
			continue // the counter of a deleted budget
		}
		l := ledgers[bud.Agent].byID[bud.ID]
		if l.broken != "" {
			continue
		}
		if problem := l.restore(c, opts.Clock.Now()); problem != "" {
			log.Error("stored budget counter is invalid; the budget counts as used up", "budget", bud.ID, "problem", problem)
		}
	}
	for _, a := range ledgers {
		a.rebuild()
	}
	return b, nil
}

// newShared checks the options of a shared ledger and starts this replica's lease.
func newShared(ctx context.Context, store warden.BudgetStore, opts Options) (*sharedLedger, error) {
	ss, ok := store.(SharedStore)
	if !ok {
		return nil, warden.Errorf(warden.EInvalid, "budgets shared by replicas need a store that shares them (PostgreSQL)")
	}
	if opts.Replica == "" {
		return nil, warden.Errorf(warden.EInvalid, "budgets shared by replicas need this replica's name")
	}
	if opts.Lease < 0 || opts.StoreTimeout < 0 {
		return nil, warden.Errorf(warden.EInvalid, "budget lease %s and store timeout %s must not be negative", opts.Lease, opts.StoreTimeout)
	}
	s := &sharedLedger{store: ss, replica: opts.Replica, lease: cmp.Or(opts.Lease, defaultLease),
		timeout: cmp.Or(opts.StoreTimeout, defaultStoreTimeout), owed: map[string]int{}}
	if err := ss.StartBudgetLease(ctx, s.replica, opts.Clock.Now()); err != nil {
		return nil, fmt.Errorf("start budget lease: %w", err)
	}
	return s, nil
}

// loaded makes the limiter of a budget read from the store. One that fails validation (written
// by a newer warden, say) is kept and refuses every call it covers with an internal error, since
// skipping it would lift a limit nobody lifted; Put or Delete fixes it.
func (b *Budgets) loaded(bud *warden.Budget) *limiter {
	l := newLimiter(bud)
	if err := validate(bud); err != nil {
		l.broken = warden.ErrorMessage(err)
		b.log.Error("stored budget is invalid; calls it covers are denied until it is put again or deleted",
			"budget", bud.ID, "agent", bud.Agent, "err", err)
	}
	return l
}

// Consume checks the call against every budget that covers it (the agent's, its tool's and its
// action's) and charges all of them, or, if any refuses, none and returns a Denial. A call with no
// budget is allowed: budgets limit what policy allows, they grant nothing.
//
// When the call is allowed, release is non-nil and must be called when the call ends, to return
// its concurrency slots; calling it again does nothing. err reports an internal failure (a bad
// clock, a stored budget that can't be enforced, a shared store that can't be reached); the
// caller denies then too.
func (b *Budgets) Consume(u Usage) (release func(), d *Denial, err error) {
	return b.ConsumeContext(context.Background(), u)
}

// ConsumeContext is Consume with a context, which bounds the store transaction of shared budgets
// (along with Options.StoreTimeout); budgets kept in memory never wait.
func (b *Budgets) ConsumeContext(ctx context.Context, u Usage) (release func(), d *Denial, err error) {
	release, _, d, err = b.Charge(ctx, u)
	return release, d, err
}

// Charge is ConsumeContext that also says how much of its budgets an allowed call burnt: the
// largest share of one rate, quota or sum budget's limit it took (a call under a 100-an-hour rate
// burns 0.01; a payment of 250 under a sum of 1000 a day, 0.25); 0 when no such budget covers
// it. Detection learns it (docs/detect.md).
func (b *Budgets) Charge(ctx context.Context, u Usage) (release func(), burn float64, d *Denial, err error) {
	a := (*b.ledgers.Load())[u.Agent]
	if a == nil {
		return noRelease, 0, nil, nil
	}
	if u.Now.IsZero() {
		u.Now = b.opts.Clock.Now()
	}
	now, ok := unixNano(u.Now)
	if !ok {
		return nil, 0, nil, warden.WrapError(warden.EInternal, "budgets can't be checked",
			fmt.Errorf("call time %s is outside the range budgets work in", u.Now))
	}
	if b.shared != nil {
		// A copy of its own, so that only a shared consume puts the call on the heap.
		su := u
		return b.shared.consume(ctx, a, &su, now)
	}
	return a.consume(&u, now)
}

// Put stores a budget, replacing the one with its ID, and applies it at once. What the replaced
// budget had used stays used (see limiter.reconfigure). An empty ID is filled in.
func (b *Budgets) Put(ctx context.Context, bud *warden.Budget) error {
	nb, err := b.prepare(bud)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.put(ctx, nb)
}

// prepare copies a budget for keeping, validated, with its ID and time of change.
func (b *Budgets) prepare(bud *warden.Budget) (*warden.Budget, error) {
	if bud == nil {
		return nil, warden.Errorf(warden.EInvalid, "no budget given")
	}
	nb := *bud
	if err := validate(&nb); err != nil {
		return nil, err
	}
	nb.ID = ID(nb.Agent, nb.Tool, nb.Action, nb.Kind, nb.Arg)
	nb.UpdatedAt = b.opts.Clock.Now().UTC()
	return &nb, nil
}

func (b *Budgets) put(ctx context.Context, nb *warden.Budget) error {
	if err := b.store.PutBudget(ctx, nb); err != nil {
		return fmt.Errorf("put budget %s: %w", nb.ID, err)
	}
	old := b.budgets[nb.ID]
	b.budgets[nb.ID] = nb
	a := b.ledger(nb.Agent)
	now := b.opts.Clock.Now().UnixNano()
	if b.shared != nil && old != nil && !sameBudget(old, nb) {
		if err := b.shared.carryOver(ctx, old, nb, now); err != nil {
			return fmt.Errorf("budget %s is stored, but its use so far was not carried over to the new limit; put it again: %w", nb.ID, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.byID[nb.ID]; l != nil {
		l.reconfigure(nb, now)
	} else {
		a.byID[nb.ID] = newLimiter(nb)
	}
	a.rebuild()
	return nil
}

// ledger returns the agent's ledger, making it if need be. Called with b.mu held.
func (b *Budgets) ledger(agent string) *agentLedger {
	old := *b.ledgers.Load()
	if a := old[agent]; a != nil {
		return a
	}
	a := &agentLedger{byID: map[string]*limiter{}}
	a.rebuild()
	ledgers := make(map[string]*agentLedger, len(old)+1)
	for k, v := range old {
		ledgers[k] = v
	}
	ledgers[agent] = a
	b.ledgers.Store(&ledgers)
	return a
}

// Delete removes a budget; its counter goes with it. A budget that doesn't exist is ENotFound.
func (b *Budgets) Delete(ctx context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	bud := b.budgets[id]
	if bud == nil {
		return warden.Errorf(warden.ENotFound, "no budget %q", id)
	}
	return b.delete(ctx, bud)
}

func (b *Budgets) delete(ctx context.Context, bud *warden.Budget) error {
	if err := b.store.DeleteBudget(ctx, bud.ID); err != nil {
		return fmt.Errorf("delete budget %s: %w", bud.ID, err)
	}
	delete(b.budgets, bud.ID)
	a := b.ledger(bud.Agent)
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byID, bud.ID)
	a.rebuild()
	return nil
}

// Replace makes buds the agent's whole set of budgets, as `warden apply` declares them: budgets
// not in buds are deleted, new and changed ones put, and unchanged ones left alone, so that applying
// the same file twice changes nothing, counters included. The set is checked before anything is
// written; the store has no transaction across budgets, so a store failure part way leaves the
// changes made until then, in memory as in the store, and applying again finishes the job.
func (b *Budgets) Replace(ctx context.Context, agent string, buds []*warden.Budget) error {
	if err := warden.ValidateName("agent", agent); err != nil {
		return err
	}
	want := make([]*warden.Budget, 0, len(buds))
	seen := map[string]bool{}
	for _, bud := range buds {
		nb, err := b.prepare(bud)
		if err != nil {
			return err
		}
		if nb.Agent != agent {
			return warden.Errorf(warden.EInvalid, "budget %s is for agent %s, not %s", Describe(nb), nb.Agent, agent)
		}
		if seen[nb.ID] {
			return warden.Errorf(warden.EInvalid, "budget %s is declared twice: one budget per scope and kind (and argument)", Describe(nb))
		}
		seen[nb.ID] = true
		want = append(want, nb)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	var gone []*warden.Budget
	for _, bud := range b.budgets {
		if bud.Agent == agent && !seen[bud.ID] {
			gone = append(gone, bud)
		}
	}
	slices.SortFunc(gone, compareBudgets)
	for _, bud := range gone {
		if err := b.delete(ctx, bud); err != nil {
			return err
		}
	}
	for _, nb := range want {
		if old := b.budgets[nb.ID]; old != nil && sameBudget(old, nb) && b.enforced(old) {
			continue
		}
		if err := b.put(ctx, nb); err != nil {
			return err
		}
	}
	return nil
}

// enforced reports whether a kept budget works, as opposed to one loaded broken from the store.
// Called with b.mu held.
func (b *Budgets) enforced(bud *warden.Budget) bool {
	a := (*b.ledgers.Load())[bud.Agent]
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.byID[bud.ID]
	return l != nil && l.broken == ""
}

func sameBudget(x, y *warden.Budget) bool {
	return x.Agent == y.Agent && x.Tool == y.Tool && x.Action == y.Action && x.Kind == y.Kind &&
		x.Limit == y.Limit && x.Window == y.Window && x.Arg == y.Arg
}

// Show reports the state of each of the agent's budgets at now, broadest scope first. Shared
// budgets are read from the store; when it can't be reached, each budget's status has its limit
// and no use, and the failure is logged.
func (b *Budgets) Show(agent string, now time.Time) []Status {
	a := (*b.ledgers.Load())[agent]
	if a == nil {
		return nil
	}
	ns, ok := unixNano(now)
	if !ok {
		ns = b.opts.Clock.Now().UnixNano()
	}
	if b.shared != nil {
		out, err := b.shared.show(context.Background(), a, ns)
		if err == nil {
			return out
		}
		b.log.Warn("budget use not read from the store", "agent", agent, "err", err)
		return a.limits()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ls := make([]*limiter, 0, len(a.byID))
	for _, l := range a.byID {
		ls = append(ls, l)
	}
	sortLimiters(ls)
	out := make([]Status, len(ls))
	for i, l := range ls {
		out[i] = l.status(ns)
	}
	return out
}

// Agents names the agents that have budgets, for Show.
func (b *Budgets) Agents() []string {
	ledgers := *b.ledgers.Load()
	out := make([]string, 0, len(ledgers))
	for agent := range ledgers {
		out = append(out, agent)
	}
	return out
}

// limits reports the agent's budgets with their limits alone, for when their use can't be read.
func (a *agentLedger) limits() []Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls := make([]*limiter, 0, len(a.byID))
	for _, l := range a.byID {
		ls = append(ls, l)
	}
	sortLimiters(ls)
	out := make([]Status, len(ls))
	for i, l := range ls {
		out[i] = Status{Budget: l.bud, Limit: l.limit, Remaining: l.limit}
	}
	return out
}

// Reload reads the budgets from the store again and applies what another replica changed: a new
// budget is enforced, a changed one takes its new limit keeping what was used (as Put does), a
// deleted one goes. A budget this replica already has as it is stored is left alone, counters
// included.
func (b *Budgets) Reload(ctx context.Context) error {
	buds, err := b.store.Budgets(ctx)
	if err != nil {
		return fmt.Errorf("reload budgets: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Clock.Now().UnixNano()
	stored := make(map[string]bool, len(buds))
	changed := map[*agentLedger]bool{}
	for _, bud := range buds {
		nb := *bud
		stored[nb.ID] = true
		old := b.budgets[nb.ID]
		if old != nil && sameBudget(old, &nb) && b.enforced(old) == (validate(&nb) == nil) {
			continue
		}
		if old != nil && old.Agent != nb.Agent {
			b.forget(old, changed)
			old = nil
		}
		b.budgets[nb.ID] = &nb
		a := b.ledger(nb.Agent)
		a.mu.Lock()
		if l := a.byID[nb.ID]; l != nil && validate(&nb) == nil {
			l.reconfigure(&nb, now)
		} else {
			a.byID[nb.ID] = b.loaded(&nb)
		}
		a.mu.Unlock()
		changed[a] = true
	}
	for id, old := range b.budgets {
		if !stored[id] {
			b.forget(old, changed)
		}
	}
	for a := range changed {
		a.mu.Lock()
		a.rebuild()
		a.mu.Unlock()
	}
	return nil
}

// forget drops a budget from memory and notes its ledger for rebuilding. Called with b.mu held.
func (b *Budgets) forget(bud *warden.Budget, changed map[*agentLedger]bool) {
	delete(b.budgets, bud.ID)
	a := b.ledger(bud.Agent)
	a.mu.Lock()
	delete(a.byID, bud.ID)
	a.mu.Unlock()
	changed[a] = true
}

// Run saves changed counters every FlushInterval until ctx ends, then saves once more, so that a
// clean shutdown loses nothing, and returns that last save's error. A failed periodic save is
// logged, and its counters go with the next one.
//
// With shared budgets there is nothing to save: Run renews this replica's lease instead, every
// FlushInterval, and gives back the slots whose release failed to reach the store.
func (b *Budgets) Run(ctx context.Context) error {
	if b.shared != nil {
		return b.runShared(ctx)
	}
	t := b.opts.Clock.NewTicker(b.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			return b.Flush(fctx)
		case <-t.C():
			if err := b.Flush(ctx); err != nil && ctx.Err() == nil {
				b.log.Warn("budget counters not saved; retrying at the next flush", "err", err)
			}
		}
	}
}

func (b *Budgets) runShared(ctx context.Context) error {
	t := b.opts.Clock.NewTicker(b.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			defer cancel()
			return b.shared.renew(fctx, b.opts.Clock.Now())
		case <-t.C():
			if err := b.shared.renew(ctx, b.opts.Clock.Now()); err != nil && ctx.Err() == nil {
				b.log.Warn("budget lease not renewed; retrying at the next interval", "err", err)
			}
		}
	}
}

// Flush saves every counter changed since the last flush, in one store transaction. If the save
// fails they stay marked as changed, to go with the next one. Shared budgets have nothing to save.
func (b *Budgets) Flush(ctx context.Context) error {
	if b.shared != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	type taken struct {
		a *agentLedger
		l *limiter
	}
	var (
		cs   []*warden.BudgetCounter
		took []taken
	)
	updated := b.opts.Clock.Now().UTC()
	for _, a := range *b.ledgers.Load() {
		a.mu.Lock()
		for _, l := range a.byID {
			if !l.dirty {
				continue
			}
			l.dirty = false
			if c, ok := l.counter(updated); ok {
				cs = append(cs, c)
				took = append(took, taken{a, l})
			}
		}
		a.mu.Unlock()
	}
	if len(cs) == 0 {
		return nil
	}
	// One order for every save, so that two writers of the same rows can't deadlock each other.
	slices.SortFunc(cs, func(x, y *warden.BudgetCounter) int { return cmp.Compare(x.BudgetID, y.BudgetID) })
	if err := b.store.SaveBudgetCounters(ctx, cs); err != nil {
		for _, t := range took {
			t.a.mu.Lock()
			t.l.dirty = true
			t.a.mu.Unlock()
		}
		return fmt.Errorf("save %d budget counters: %w", len(cs), err)
	}
	return nil
}
