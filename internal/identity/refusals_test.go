package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// recorder is an audit log that keeps what it is given, or refuses while fail is set.
type recorder struct {
	mu   sync.Mutex
	evs  []*warden.AuditEvent
	fail bool
	// summaries, if set, receives the type of each summary recorded, for a test waiting on Run.
	summaries chan string
}

func (r *recorder) Append(_ context.Context, ev *warden.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("disk full")
	}
	r.evs = append(r.evs, ev)
	if r.summaries != nil && ev.Type == warden.EventTokenRefuseSummary {
		r.summaries <- ev.Type
	}
	return nil
}

// tally counts the refusals recorded one by one and those summarized, and returns the summaries.
func (r *recorder) tally(t *testing.T) (individual, summarized int64, sums []identity.RefusalCounts) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.evs {
		switch ev.Type {
		case warden.EventTokenRefuse:
			individual++
		case warden.EventTokenRefuseSummary:
			var c identity.RefusalCounts
			if err := json.Unmarshal(ev.Target.Arguments, &c); err != nil {
				t.Fatal(err)
			}
			summarized += c.Count
			sums = append(sums, c)
		default:
			t.Fatalf("unexpected event %s", ev.Type)
		}
	}
	return individual, summarized, sums
}

func refusal(source string) *warden.AuditEvent {
	return &warden.AuditEvent{
		Type:     warden.EventTokenRefuse,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, Source: source},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: "invalid_token", Message: "malformed token"},
	}
}

// TestRefusalLogBounds pins issue 12 #6: 2,000 junk credentials made 2,000 durable events.
// Now at most the configured number are recorded one by one, and the summaries count the rest
// exactly: individual + summarized = sent.
func TestRefusalLogBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		limits     identity.RefusalLimits
		sources    func(i int) string
		wantFull   int64
		wantListed int // sources named in the summary
		wantDist   int
	}{
		{"one source", identity.RefusalLimits{PerSource: 60, Total: 600}, func(int) string { return "203.0.113.7:40000" }, 60, 1, 1},
		{"one source, many ports", identity.RefusalLimits{PerSource: 60, Total: 600}, func(i int) string { return fmt.Sprintf("203.0.113.7:%d", 1024+i) }, 60, 1, 1},
		{"one IPv6 /64", identity.RefusalLimits{PerSource: 60, Total: 600}, func(i int) string { return fmt.Sprintf("[2001:db8:1:2::%x]:443", i) }, 60, 1, 1},
		{"many sources, total bound", identity.RefusalLimits{PerSource: 60, Total: 600}, func(i int) string { return fmt.Sprintf("10.0.%d.%d:5000", i/250, i%250) }, 600, 20, 1400},
		{"only summaries", identity.RefusalLimits{PerSource: 0, Total: 600}, func(int) string { return "203.0.113.7:40000" }, 0, 1, 1},
		{"few sources remembered", identity.RefusalLimits{PerSource: 1, Total: 100000, MaxSources: 100}, func(i int) string { return fmt.Sprintf("10.1.%d.%d:5000", i/200, i%200) }, 2000, 0, 0},
		// Forgotten sources start afresh: the total is what bounds them.
		{"more sources than remembered", identity.RefusalLimits{PerSource: 1, Total: 500, MaxSources: 100}, func(i int) string { return fmt.Sprintf("10.2.0.%d:5000", i%150) }, 500, 20, 100},
	}
	const sent = 2000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock(t0)
			rec := &recorder{}
			tt.limits.Clock = clock
			l := identity.NewRefusalLog(rec, tt.limits, nil)
			for i := range sent {
				if err := l.Append(ctx, refusal(tt.sources(i))); err != nil {
					t.Fatal(err)
				}
				if i == sent/2 {
					clock.Advance(time.Millisecond) // within the minute: no refill worth a token
				}
			}
			max := tt.limits.MaxSources
			if max == 0 {
				max = 10_000
			}
			if n := l.Tracked(); n > 2*max {
				t.Fatalf("%d sources remembered (map and list), bound %d each", n, max)
			}
			clock.Advance(time.Second)
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			full, summarized, sums := rec.tally(t)
			if full != tt.wantFull || full+summarized != sent {
				t.Fatalf("%d recorded one by one (want %d) + %d summarized, want %d in all", full, tt.wantFull, summarized, sent)
			}
			if summarized == 0 {
				if len(sums) != 0 {
					t.Fatalf("an empty summary was recorded: %+v", sums)
				}
				return
			}
			if len(sums) != 1 {
				t.Fatalf("%d summaries, want 1", len(sums))
			}
			s := sums[0]
			var listed int64
			for _, sc := range s.Sources {
				listed += sc.Count
			}
			if len(s.Sources) != tt.wantListed || s.DistinctSources != tt.wantDist || len(s.Reasons) != 1 || s.Reasons[0] != (identity.ReasonCount{Reason: "invalid_token", Count: summarized}) ||
				!s.Since.Equal(t0) || !s.Until.Equal(t0.Add(time.Second+time.Millisecond)) {
				t.Fatalf("summary %+v", s)
			}
			if tt.wantListed == tt.wantDist && listed+s.SourcesOverflow != summarized {
				t.Fatalf("per-source counts add up to %d+%d, want %d", listed, s.SourcesOverflow, summarized)
			}
			// Another flush with nothing counted records nothing.
			if err := l.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if _, _, again := rec.tally(t); len(again) != 1 {
				t.Fatal("an empty summary was recorded")
			}
		})
	}
}

// TestRefusalLogRefills: a source's allowance comes back over a minute, and the counts of a
// summary the audit log refused are recorded in the next one rather than lost.
func TestRefusalLogRefills(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	rec := &recorder{}
	l := identity.NewRefusalLog(rec, identity.RefusalLimits{PerSource: 10, Total: 100, Clock: clock}, nil)
	send := func(n int) {
		for range n {
			if err := l.Append(ctx, refusal("198.51.100.1:1")); err != nil {
				t.Fatal(err)
			}
		}
	}
	send(30) // 10 in full, 20 counted
	rec.fail = true
	if err := l.Flush(ctx); err == nil {
		t.Fatal("a refused summary reported success")
	}
	rec.fail = false
	clock.Advance(30 * time.Second)
	send(30) // half the allowance back: 5 in full, 25 counted
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	full, summarized, sums := rec.tally(t)
	if full != 15 || summarized != 45 || len(sums) != 1 || !sums[0].Since.Equal(t0) {
		t.Fatalf("%d in full, %d summarized in %+v", full, summarized, sums)
	}
}

// TestRefusalLogRunSummarizes: Run records the counted refusals when the interval passes on
// its clock, and nothing before.
func TestRefusalLogRunSummarizes(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	rec := &recorder{summaries: make(chan string, 4)}
	l := identity.NewRefusalLog(rec, identity.RefusalLimits{PerSource: 10, Total: 100, Interval: time.Minute, Clock: clock}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	for range 15 { // 10 in full, 5 counted
		if err := l.Append(ctx, refusal("198.51.100.1:1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := clock.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - time.Nanosecond)
	select {
	case <-rec.summaries:
		t.Fatal("a summary before the interval passed")
	default:
	}
	clock.Advance(time.Nanosecond)
	select {
	case <-rec.summaries:
	case <-time.After(10 * time.Second):
		t.Fatal("no summary when the interval passed")
	}
	if full, summarized, sums := rec.tally(t); full != 10 || summarized != 5 || len(sums) != 1 || !sums[0].Until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("%d in full, %d summarized in %+v; want 10, 5 until %v", full, summarized, sums, t0.Add(time.Minute))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A source over its own limit does not use up everyone's: its excess is counted without taking
// from the total, so other sources are still recorded one by one.
func TestRefusalLogOneSourceDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rec := &recorder{}
	l := identity.NewRefusalLog(rec, identity.RefusalLimits{PerSource: 60, Total: 600, Interval: time.Minute, Clock: newClock(t0)}, nil)
	for range 2000 {
		if err := l.Append(ctx, refusal("198.51.100.1:1")); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if err := l.Append(ctx, refusal(fmt.Sprintf("203.0.113.%d:1", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if full, summarized, _ := rec.tally(t); full != 70 || summarized != 1940 {
		t.Fatalf("%d in full, %d summarized; want 70 (60 of the flood, every other source) and 1940", full, summarized)
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"192.0.2.1:1234":               "192.0.2.1",
		"[::ffff:192.0.2.1]:80":        "192.0.2.1",
		"[2001:db8:a:b:c:d:e:f]:443":   "2001:db8:a:b::/64",
		"[fe80::1%eth0]:22":            "fe80::/64",
		"192.0.2.1":                    "192.0.2.1",
		"":                             "unknown",
		"@":                            "unknown",
		"not an address:99":            "unknown",
		"[2001:db8::1]:443\nforged: x": "unknown",
	}
	for in, want := range tests {
		if got := identity.SourceKey(in); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSourceKey(f *testing.F) {
	for _, s := range []string{"192.0.2.1:1234", "[2001:db8::1]:443", "[fe80::1%eth0]:22", "@", "", "[::ffff:1.2.3.4]:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		k := identity.SourceKey(addr)
		// A key is bounded and printable, whatever the address: it goes into audit events.
		if len(k) > len("ffff:ffff:ffff:ffff::/64") || k == "" {
			t.Fatalf("SourceKey(%q) = %q", addr, k)
		}
		for _, c := range k {
			if c <= ' ' || c > '~' {
				t.Fatalf("SourceKey(%q) = %q", addr, k)
			}
		}
		if identity.SourceKey(k) != k && k != "unknown" && !isPrefix(k) {
			t.Fatalf("SourceKey of the key %q is %q", k, identity.SourceKey(k))
		}
	})
}

func isPrefix(k string) bool { return len(k) > 3 && k[len(k)-3:] == "/64" }
