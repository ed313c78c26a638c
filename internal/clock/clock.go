// Package clock is warden's one source of time: a Clock interface passed to everything that reads
// the time or waits for it, the real clock for production and a Fake that tests advance by hand.
//
// Waiting for time to pass in a test makes the test slow, and waiting for a goroutine to catch up
// makes it flaky; with a Fake a test arms the code under test, waits until its timers are armed
// (Fake.WaitForTimers), advances the clock and observes what fired.
package clock

import "time"

// Clock tells the time and makes timers. Timers and tickers made by a Clock fire on that clock's
// time: the real clock's after real time passes, a Fake's when the test advances it.
type Clock interface {
	Now() time.Time
	// NewTimer, NewTicker and AfterFunc behave as their namesakes in package time (Go 1.23
	// semantics: Stop and Reset leave no stale value in the channel).
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a *time.Timer behind an interface. C is nil for a timer made by AfterFunc.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a *time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Since is time.Since on c.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Or returns c, or the real clock when c is nil: the default of an optional Clock field.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Real is the wall clock: package time.
type Real struct{}

var _ Clock = Real{}

func (Real) Now() time.Time { return time.Now() }

func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

func (Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time   { return r.t.C }
func (r realTicker) Stop()                 { r.t.Stop() }
func (r realTicker) Reset(d time.Duration) { r.t.Reset(d) }
