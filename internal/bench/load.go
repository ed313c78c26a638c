package bench

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Latency is a distribution's percentiles, in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// percentiles computes nearest-rank percentiles of samples, which it sorts.
func percentiles(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(samples)))) - 1
		return ms(samples[min(max(i, 0), len(samples)-1)])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: ms(samples[len(samples)-1])}
}

// minus is l - o at each percentile: the latency warden adds to a call, percentile by
// percentile (not the percentiles of per-call differences, which one run cannot pair up).
func (l Latency) minus(o Latency) Latency {
	return Latency{P50: l.P50 - o.P50, P90: l.P90 - o.P90, P99: l.P99 - o.P99, P999: l.P999 - o.P999, Max: l.Max - o.Max}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// callFunc makes one call and says whether it succeeded. The call's latency is measured until
// it returns; after, when not nil, is the rest of the worker's cycle, done untimed (the decision
// API's outcome report).
type callFunc func(ctx context.Context) (after func(context.Context), err error)

// target is one way of reaching the upstream: warden, directly, or through the reverse proxy.
type target struct {
	name string
	// worker prepares one worker's caller (an MCP worker opens its own session) and returns it
	// with what releases it.
	worker func(ctx context.Context) (callFunc, func(), error)

	workers []callFunc
	closers []func()

	mu       sync.Mutex
	samples  []time.Duration
	calls    atomic.Int64
	errors   atomic.Int64
	firstErr atomic.Pointer[string]
	elapsed  time.Duration
}

func (t *target) open(ctx context.Context, n int) error {
	for range n {
		call, release, err := t.worker(ctx)
		if err != nil {
			return err
		}
		t.workers = append(t.workers, call)
		t.closers = append(t.closers, release)
	}
	return nil
}

func (t *target) close() {
	for _, c := range t.closers {
		c()
	}
	t.closers = nil
}

// TargetResult is what one target measured.
type TargetResult struct {
	Calls      int64   `json:"calls"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	Throughput float64 `json:"calls_per_second"`
	LatencyMS  Latency `json:"latency_ms"`
}

func (t *target) result() TargetResult {
	r := TargetResult{Calls: t.calls.Load(), Errors: t.errors.Load(), Seconds: t.elapsed.Seconds(), LatencyMS: percentiles(t.samples)}
	if p := t.firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	if r.Seconds > 0 {
		r.Throughput = float64(r.Calls-r.Errors) / r.Seconds
	}
	return r
}

// slice drives t for d: flat out when rate is 0 (each worker calls as soon as its last call
// ended; latency is from send to answer), else open loop at rate calls a second (each call is
// scheduled in advance and its latency counts from the scheduled time, so calls that queue
// behind slow ones are charged for it). record false discards the samples (warm-up).
func (t *target) slice(ctx context.Context, d time.Duration, rate float64, record bool, live *progress) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	var sched chan time.Time
	if rate > 0 {
		sched = make(chan time.Time, len(t.workers))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(sched)
			interval := time.Duration(float64(time.Second) / rate)
			for i := 0; ; i++ {
				at := start.Add(time.Duration(i) * interval)
				if !at.Before(end) {
					return
				}
				if wait := time.Until(at); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
				}
				select {
				case sched <- at:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	for _, call := range t.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			one := func(from time.Time) {
				after, err := call(ctx)
				lat := time.Since(from)
				if after != nil {
					defer after(ctx)
				}
				if !record {
					return
				}
				t.calls.Add(1)
				live.calls.Add(1)
				if err != nil {
					t.errors.Add(1)
					live.errors.Add(1)
					msg := err.Error()
					t.firstErr.CompareAndSwap(nil, &msg)
					return
				}
				local = append(local, lat)
			}
			if sched != nil {
				for at := range sched {
					one(at)
				}
			} else {
				for time.Now().Before(end) && ctx.Err() == nil {
					one(time.Now())
				}
			}
			t.mu.Lock()
			t.samples = append(t.samples, local...)
			t.mu.Unlock()
		}()
	}
	wg.Wait()
	if record {
		t.elapsed += time.Since(start)
	}
}

// progress counts the current slice's calls for the progress line.
type progress struct {
	calls, errors atomic.Int64
}
