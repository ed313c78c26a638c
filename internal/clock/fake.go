package clock

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Fake is a Clock that moves only when a test calls Advance. Its timers and tickers fire
// during Advance, in the order of their due times; a timer's or ticker's channel holds one value,
// like package time's, so a tick nobody received is dropped, not queued.
//
// AfterFunc functions run synchronously inside Advance, outside the Fake's lock, so a test sees
// their effect as soon as Advance returns and they may use the clock themselves.
type Fake struct {
	now atomic.Pointer[time.Time] // read without the lock, so that Now costs a benchmark nothing; written under mu

	mu      sync.Mutex
	seq     uint64 // orders waiters due at the same instant by creation
	waiters []*fakeWaiter
	changed chan struct{} // closed and replaced whenever the set of armed waiters changes
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock that reads start until it is advanced.
func NewFake(start time.Time) *Fake {
	f := &Fake{changed: make(chan struct{})}
	f.now.Store(&start)
	return f
}

type fakeWaiter struct {
	clock  *Fake
	due    time.Time
	seq    uint64
	period time.Duration // >0 for a ticker
	fn     func()        // set for AfterFunc
	ch     chan time.Time
}

// Now returns the fake time.
func (f *Fake) Now() time.Time { return *f.now.Load() }

// setLocked moves the clock to t; f.mu is held.
func (f *Fake) setLocked(t time.Time) { f.now.Store(&t) }

// NewTimer returns a timer that fires once Advance has moved the clock d past now.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &fakeWaiter{clock: f, ch: make(chan time.Time, 1)}
	f.arm(w, d)
	return w
}

// NewTicker returns a ticker that fires every d of fake time. d must be positive, as for time.NewTicker.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &fakeWaiter{clock: f, period: d, ch: make(chan time.Time, 1)}
	f.arm(w, d)
	return fakeTicker{w}
}

// fakeTicker is a fakeWaiter with a Ticker's method set.
type fakeTicker struct{ w *fakeWaiter }

func (t fakeTicker) C() <-chan time.Time   { return t.w.ch }
func (t fakeTicker) Stop()                 { t.w.Stop() }
func (t fakeTicker) Reset(d time.Duration) { t.w.Reset(d) }

// AfterFunc returns a timer that calls fn inside the Advance that moves the clock d past now.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	w := &fakeWaiter{clock: f, fn: fn}
	f.arm(w, d)
	return w
}

// Advance moves the clock forward by d, firing every timer and ticker that falls due on the way,
// in due order, with the clock set to each one's due time as it fires.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Advance by a negative duration")
	}
	f.mu.Lock()
	end := f.Now().Add(d)
	f.mu.Unlock()
	f.advanceTo(end)
}

func (f *Fake) advanceTo(end time.Time) {
	for {
		f.mu.Lock()
		i := f.next(end)
		if i < 0 {
			f.setLocked(end)
			f.mu.Unlock()
			return
		}
		w := f.waiters[i]
		if w.due.After(f.Now()) {
			f.setLocked(w.due)
		}
		now := f.Now()
		if w.period > 0 {
			w.due = w.due.Add(w.period)
			w.seq = f.nextSeq()
		} else {
			f.waiters = slices.Delete(f.waiters, i, i+1)
			f.notifyLocked()
		}
		f.mu.Unlock()
		if w.fn != nil {
			w.fn()
			continue
		}
		select {
		case w.ch <- now:
		default: // the previous tick was not received: drop this one, as package time does
		}
	}
}

// next returns the index of the earliest waiter due at or before end, or -1.
func (f *Fake) next(end time.Time) int {
	best := -1
	for i, w := range f.waiters {
		if w.due.After(end) {
			continue
		}
		if best < 0 || w.due.Before(f.waiters[best].due) || (w.due.Equal(f.waiters[best].due) && w.seq < f.waiters[best].seq) {
			best = i
		}
	}
	return best
}

// Timers returns how many timers, tickers and AfterFuncs are armed now.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// WaitForTimers waits until at least n timers, tickers or AfterFuncs are armed, so that a test can
// advance the clock only once the goroutine under test is waiting on it. It gives up after ten
// seconds of real time with an error that says how many were armed, so a goroutine that never
// arms its timer fails the test instead of hanging it.
func (f *Fake) WaitForTimers(n int) error {
	return f.WaitForTimersWithin(n, 10*time.Second)
}

// WaitForTimersWithin is WaitForTimers with a real-time limit of its own.
func (f *Fake) WaitForTimersWithin(n int, limit time.Duration) error {
	giveUp := time.NewTimer(limit)
	defer giveUp.Stop()
	for {
		f.mu.Lock()
		have, changed := len(f.waiters), f.changed
		f.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-changed:
		case <-giveUp.C:
			return fmt.Errorf("clock: %d of %d timers armed after %s", have, n, limit)
		}
	}
}

func (f *Fake) arm(w *fakeWaiter, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.due = f.Now().Add(d)
	w.seq = f.nextSeq()
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
}

// disarm removes w and reports whether it was armed.
func (f *Fake) disarm(w *fakeWaiter) bool {
	i := slices.Index(f.waiters, w)
	if i < 0 {
		return false
	}
	f.waiters = slices.Delete(f.waiters, i, i+1)
	f.notifyLocked()
	return true
}

func (f *Fake) nextSeq() uint64 { f.seq++; return f.seq }

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (w *fakeWaiter) C() <-chan time.Time { return w.ch }

// Stop disarms the timer and empties its channel (Go 1.23 semantics); it reports whether the
// timer was still armed.
func (w *fakeWaiter) Stop() bool {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	w.drain()
	return w.clock.disarm(w)
}

// Reset re-arms the timer (or ticker) for d from now and reports whether it was armed.
func (w *fakeWaiter) Reset(d time.Duration) bool {
	f := w.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	w.drain()
	was := f.disarm(w)
	if w.period > 0 {
		if d <= 0 {
			panic("clock: non-positive interval for Ticker.Reset")
		}
		w.period = d
	}
	w.due = f.Now().Add(d)
	w.seq = f.nextSeq()
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
	return was
}

func (w *fakeWaiter) drain() {
	if w.ch == nil {
		return
	}
	select {
	case <-w.ch:
	default:
	}
}
