package clock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// received returns the value waiting in c, if any, without blocking.
func received(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeFiresInDueOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timers  []time.Duration // armed in this order
		advance []time.Duration
		want    []int // indexes of timers in the order they fire
	}{
		{"one advance past all", []time.Duration{3 * time.Second, time.Second, 2 * time.Second}, []time.Duration{time.Minute}, []int{1, 2, 0}},
		{"equal due times fire in creation order", []time.Duration{time.Second, time.Second, time.Second}, []time.Duration{time.Second}, []int{0, 1, 2}},
		{"short of the due time fires nothing", []time.Duration{time.Second}, []time.Duration{999 * time.Millisecond}, nil},
		{"steps add up", []time.Duration{time.Second}, []time.Duration{500 * time.Millisecond, 500 * time.Millisecond}, []int{0}},
		{"zero duration fires on the next advance", []time.Duration{0}, []time.Duration{0}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := clock.NewFake(t0)
			var mu sync.Mutex
			var got []int
			var at []time.Time
			for i, d := range tt.timers {
				c.AfterFunc(d, func() {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, i)
					at = append(at, c.Now())
				})
			}
			var total time.Duration
			for _, d := range tt.advance {
				c.Advance(d)
				total += d
			}
			if len(got) != len(tt.want) {
				t.Fatalf("fired %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("fired %v, want %v", got, tt.want)
				}
				if want := t0.Add(tt.timers[got[i]]); !at[i].Equal(want) {
					t.Errorf("timer %d ran at %v, want its due time %v", got[i], at[i], want)
				}
			}
			if want := t0.Add(total); !c.Now().Equal(want) {
				t.Errorf("Now() = %v after advancing, want %v", c.Now(), want)
			}
		})
	}
}

func TestFakeTimer(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	tm := c.NewTimer(time.Second)
	if _, ok := received(tm.C()); ok {
		t.Fatal("timer fired before the clock moved")
	}
	c.Advance(time.Second)
	v, ok := received(tm.C())
	if !ok || !v.Equal(t0.Add(time.Second)) {
		t.Fatalf("timer sent %v, %v; want %v", v, ok, t0.Add(time.Second))
	}
	if tm.Stop() {
		t.Error("Stop of a fired timer reported it armed")
	}
	if tm.Reset(time.Second) {
		t.Error("Reset of a fired timer reported it armed")
	}
	if !tm.Reset(time.Minute) {
		t.Error("Reset of an armed timer reported it stopped")
	}
	c.Advance(time.Second)
	if _, ok := received(tm.C()); ok {
		t.Error("reset timer fired at its old due time")
	}
	c.Advance(time.Minute)
	tm.Reset(time.Hour)
	if _, ok := received(tm.C()); ok {
		t.Error("Reset left a stale value in the channel")
	}
	if !tm.Stop() {
		t.Error("Stop of an armed timer reported it stopped")
	}
	c.Advance(time.Hour)
	if _, ok := received(tm.C()); ok {
		t.Error("stopped timer fired")
	}
	if n := c.Timers(); n != 0 {
		t.Errorf("Timers() = %d after stop, want 0", n)
	}
}

func TestFakeTicker(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	tk := c.NewTicker(time.Second)
	for i := 1; i <= 3; i++ {
		c.Advance(time.Second)
		v, ok := received(tk.C())
		if !ok || !v.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("tick %d: %v, %v", i, v, ok)
		}
	}
	// Ticks nobody receives are dropped, not queued: one value after five periods, the first.
	c.Advance(5 * time.Second)
	if v, _ := received(tk.C()); !v.Equal(t0.Add(4 * time.Second)) {
		t.Errorf("after an unreceived run of ticks got %v, want the first, %v", v, t0.Add(4*time.Second))
	}
	if _, ok := received(tk.C()); ok {
		t.Error("ticks queued up")
	}
	tk.Reset(time.Minute)
	c.Advance(59 * time.Second)
	if _, ok := received(tk.C()); ok {
		t.Error("reset ticker ticked on its old period")
	}
	c.Advance(time.Second)
	if _, ok := received(tk.C()); !ok {
		t.Error("reset ticker did not tick on its new period")
	}
	tk.Stop()
	c.Advance(time.Hour)
	if _, ok := received(tk.C()); ok {
		t.Error("stopped ticker ticked")
	}
}

func TestFakeAfterFuncMayUseTheClock(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	n := 0
	var again func()
	again = func() {
		n++
		if n < 3 {
			c.AfterFunc(time.Second, again) // re-arms from inside Advance
		}
	}
	c.AfterFunc(time.Second, again)
	c.Advance(10 * time.Second)
	if n != 3 {
		t.Errorf("self-re-arming AfterFunc ran %d times in one Advance, want 3", n)
	}
	stopped := c.AfterFunc(time.Second, func() { t.Error("stopped AfterFunc ran") })
	if !stopped.Stop() {
		t.Error("Stop of an armed AfterFunc reported it stopped")
	}
	c.Advance(time.Minute)
	if stopped.C() != nil {
		t.Error("an AfterFunc timer has a channel")
	}
}

func TestFakeWaitForTimers(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	fired := make(chan time.Time)
	go func() {
		tm := c.NewTimer(time.Minute)
		fired <- <-tm.C()
	}()
	if err := c.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if v := <-fired; !v.Equal(t0.Add(time.Minute)) {
		t.Errorf("goroutine's timer sent %v", v)
	}

	// Nobody arms a second timer: the wait ends with an error, not a hang.
	err := c.WaitForTimersWithin(1, 20*time.Millisecond)
	if err == nil {
		t.Fatal("WaitForTimers returned with no timer armed")
	}
	if want := "clock: 0 of 1 timers armed after 20ms"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestHelpers(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(t0)
	c.Advance(time.Minute)
	if got := clock.Since(c, t0); got != time.Minute {
		t.Errorf("Since = %v", got)
	}
	if _, ok := clock.Or(nil).(clock.Real); !ok {
		t.Error("Or(nil) is not the real clock")
	}
	if clock.Or(c) != clock.Clock(c) {
		t.Error("Or(c) is not c")
	}
}

func TestReal(t *testing.T) {
	t.Parallel()
	var c clock.Clock = clock.Real{}
	before := time.Now()
	if now := c.Now(); now.Before(before) {
		t.Fatalf("Real.Now() = %v before time.Now() = %v", now, before)
	}
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
}
