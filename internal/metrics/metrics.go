// Package metrics exports warden's Prometheus metrics: the calls the pipeline decides and their
// outcomes (gateway.Observer), the audit log's commits, and gauges read when a scraper asks.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// Other is the label value of a tool, action or event type that is not registered: a name an
// agent chose never becomes a label of its own, so the number of series stays bounded.
const Other = gateway.OtherLabel

// BudgetUse is one budget's use against its limit, as a scrape reads it.
type BudgetUse struct {
	ID          string
	Used, Limit float64
}

// ReplicaLag is how far one replica's applied kill state is behind the fleet's newest.
type ReplicaLag struct {
	Replica string
	Lag     int64
}

// Sources are read when /metrics is scraped; a nil one is not exported. None is on a call's
// path. Each takes a context bounded by ScrapeTimeout.
type Sources struct {
	InFlight         func() int
	MCPSessions      func() int
	AuditQueue       func() int
	Sandboxes        func() int
	ApprovalsPending func(ctx context.Context) (int, error)
	Budgets          func(ctx context.Context) []BudgetUse
	// KillState returns the fleet's newest kill-state version and each replica's lag behind it.
	KillState func(ctx context.Context) (version int64, lags []ReplicaLag, err error)
}

// ScrapeTimeout bounds what one scrape reads from the store.
const ScrapeTimeout = 5 * time.Second

// Metrics is warden's registry of metrics. Its observer methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	calls     *prometheus.CounterVec
	decision  *prometheus.HistogramVec
	operation *prometheus.HistogramVec
	upstream  *prometheus.HistogramVec
	commit    prometheus.Histogram
	batch     prometheus.Histogram
	events    *prometheus.CounterVec

	shadowDiffs   *prometheus.CounterVec
	shadowDropped prometheus.Counter

	// series holds, by call labels, the label children of each tool and action resolved once:
	// a call costs one lookup in an immutable map, not the hashing of its label values that
	// WithLabelValues does (BenchmarkObserver, BenchmarkPipelineMetrics). A new label set copies
	// the map under seriesMu.
	series   atomic.Pointer[map[gateway.CallLabels]*callSeries]
	seriesMu sync.Mutex
	// decisionSeries are the decision histogram's children by entry point and effect.
	decisionSeries [len(entries)][len(effects)]prometheus.Observer

	eventTypesMu sync.Mutex
	eventTypes   map[string]bool // the types warden_audit_events_total has a series of
}

var (
	_ gateway.Observer       = (*Metrics)(nil)
	_ gateway.ShadowObserver = (*Metrics)(nil)
)

// callSeries are the children of one tool and action at one entry point.
type callSeries struct {
	m      *Metrics
	labels gateway.CallLabels
	// calls are the counters by effect and reason, copied on write: a reason is one of
	// warden's words, so the list stays short.
	calls atomic.Pointer[[]reasonCounter]
	mu    sync.Mutex // guards writes of calls (outcomes are set by CompareAndSwap)
	// outcomes are the outcome histograms' children by status (statuses), resolved on first use.
	outcomes [len(statuses)]atomic.Pointer[outcomeSeries]
}

type reasonCounter struct {
	effect, reason string
	c              prometheus.Counter
}

type outcomeSeries struct{ operation, upstream prometheus.Observer }

// statuses are the outcomes an allowed call can have.
var statuses = [...]string{warden.StatusOK, warden.StatusError, warden.StatusCanceled}

// Latency buckets in seconds: a decision takes microseconds to a commit's milliseconds; an
// upstream call up to a minute.
var (
	decisionBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	upstreamBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	batchBuckets    = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
)

var entries = [...]string{gateway.EntryMCP, gateway.EntryHTTP, gateway.EntryAuthorize}

// New returns the metrics of one warden process; Watch adds the gauges read at scrape time.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), eventTypes: map[string]bool{}}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_calls_total",
		Help: "Tool calls decided, by entry point (mcp, http, authorize), registered tool and action (else other), effect and reason.",
	}, []string{"entry", "tool", "action", "effect", "reason"})
	m.decision = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_decision_duration_seconds",
		Help:    "Time from a call's arrival at the pipeline to its decision, the audit commit of an allow included, by entry point and effect.",
		Buckets: decisionBuckets,
	}, []string{"entry", "effect"})
	m.operation = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mcp_server_operation_duration_seconds",
		Help:    "Duration of allowed MCP tools/call requests, upstream included (OpenTelemetry mcp.server.operation.duration), by registered tool (gen_ai.tool.name), action and status.",
		Buckets: upstreamBuckets,
	}, []string{"gen_ai_tool_name", "action", "status"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "warden_upstream_duration_seconds",
		Help:    "Latency of allowed calls to their upstream, every entry point, by registered tool and status.",
		Buckets: upstreamBuckets,
	}, []string{"tool", "status"})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "warden_audit_commit_duration_seconds",
		Help:    "Duration of one group commit of the audit log.",
		Buckets: decisionBuckets,
	})
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "warden_audit_commit_batch_events",
		Help:    "Events written by one group commit of the audit log.",
		Buckets: batchBuckets,
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_audit_events_total",
		Help: "Audit events committed by this process, by type (token.issue counts tokens issued, token.refuse tokens refused).",
	}, []string{"type"})
	m.shadowDiffs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_policy_shadow_diffs_total",
		Help: "Calls the candidate policy set of shadow mode decides otherwise than the live set, by change of effect (allow->deny; the same effect twice: another reason).",
	}, []string{"effect_change"})
	m.shadowDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_policy_shadow_dropped_total",
		Help: "Shadow mode's differences not recorded in the audit log because the queue to it was full (each counted in a policy.shadow_dropped event).",
	})
	m.reg.MustRegister(m.calls, m.decision, m.operation, m.upstream, m.commit, m.batch, m.events, m.shadowDiffs, m.shadowDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for i, e := range entries {
		for j, eff := range effects {
			m.decisionSeries[i][j] = m.decision.WithLabelValues(e, eff)
		}
	}
	// Every change of effect shadow mode can count exists from the start, at 0, so that a
	// dashboard's rate() over it works before the first difference.
	for _, live := range policyEffects {
		for _, shadow := range policyEffects {
			m.shadowDiffs.WithLabelValues(live + "->" + shadow)
		}
	}
	m.series.Store(&map[gateway.CallLabels]*callSeries{})
	return m
}

// Registry is where the metrics are registered, for a test or another exposition.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: ScrapeTimeout, MaxRequestsInFlight: 4})
}

// Decided counts one decided call and returns its series, for its outcome (gateway.Observer).
func (m *Metrics) Decided(c gateway.CallLabels, effect, reason string, took time.Duration) gateway.OutcomeObserver {
	s := m.seriesOf(c)
	s.counter(effect, reason).Inc()
	m.decisionObserver(c.Entry, effect).Observe(took.Seconds())
	return s
}

// policyEffects are the effects a policy decision has before any person (gateway's
// gatewayEffect).
var policyEffects = []string{warden.EffectAllow, warden.EffectDeny, warden.EffectApprovalRequired}

// ShadowDiff counts a difference of shadow mode (gateway.ShadowObserver). Both effects are
// warden's own words, so the label stays bounded.
func (m *Metrics) ShadowDiff(live, shadow string) {
	m.shadowDiffs.WithLabelValues(live + "->" + shadow).Inc()
}

// ShadowDropped counts a difference shadow mode could not queue (gateway.ShadowObserver).
func (m *Metrics) ShadowDropped() { m.shadowDropped.Inc() }

// seriesOf returns the series of c, resolved once.
func (m *Metrics) seriesOf(c gateway.CallLabels) *callSeries {
	if s := (*m.series.Load())[c]; s != nil {
		return s
	}
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old := *m.series.Load()
	if s := old[c]; s != nil {
		return s
	}
	next := make(map[gateway.CallLabels]*callSeries, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	s := &callSeries{m: m, labels: c}
	s.calls.Store(&[]reasonCounter{})
	next[c] = s
	m.series.Store(&next)
	return s
}

// counter returns the call counter of the series' effect and reason.
func (s *callSeries) counter(effect, reason string) prometheus.Counter {
	for _, rc := range *s.calls.Load() {
		if rc.effect == effect && rc.reason == reason {
			return rc.c
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.calls.Load()
	for _, rc := range old {
		if rc.effect == effect && rc.reason == reason {
			return rc.c
		}
	}
	l := s.labels
	rc := reasonCounter{effect: effect, reason: reason, c: s.m.calls.WithLabelValues(l.Entry, l.Tool, l.Action, effect, reason)}
	next := append(append(make([]reasonCounter, 0, len(old)+1), old...), rc)
	s.calls.Store(&next)
	return rc.c
}

func (m *Metrics) decisionObserver(entry, effect string) prometheus.Observer {
	for i, e := range entries {
		if e == entry {
			for j, eff := range effects {
				if eff == effect {
					return m.decisionSeries[i][j]
				}
			}
		}
	}
	return m.decision.WithLabelValues(entry, effect)
}

// Finished records the outcome of an allowed call of the series (gateway.OutcomeObserver).
func (s *callSeries) Finished(o gateway.Outcome) {
	os := s.outcome(o.Status)
	sec := o.Latency.Seconds()
	if os.operation != nil {
		os.operation.Observe(sec)
	}
	os.upstream.Observe(sec)
}

// outcome returns the outcome histograms' children of a status.
func (s *callSeries) outcome(status string) *outcomeSeries {
	i := slices.Index(statuses[:], status)
	if i >= 0 {
		if os := s.outcomes[i].Load(); os != nil {
			return os
		}
	}
	l := s.labels
	os := &outcomeSeries{upstream: s.m.upstream.WithLabelValues(l.Tool, status)}
	if l.Entry == gateway.EntryMCP {
		os.operation = s.m.operation.WithLabelValues(l.Tool, l.Action, status)
	}
	if i >= 0 {
		s.outcomes[i].CompareAndSwap(nil, os)
	}
	return os
}

// Committed records one group commit of the audit log: its events' types, and how long it took.
// The writer calls it, off every call's path.
func (m *Metrics) Committed(types []string, took time.Duration) {
	m.commit.Observe(took.Seconds())
	m.batch.Observe(float64(len(types)))
	for _, t := range types {
		m.events.WithLabelValues(m.eventType(t)).Inc()
	}
}
