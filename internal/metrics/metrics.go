// Package metrics exports warden's Prometheus metrics: the calls the pipeline decides and their
// outcomes (gateway.Observer), the audit log's commits, and gauges read when a scraper asks.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

	// Label children resolved once per label set: a call costs one lookup in a sync.Map, not
	// the hashing of its label values that WithLabelValues does (BenchmarkPipeline).
	callSeries     sync.Map // callKey → *callSeries
	outcomeSeries  sync.Map // callKey → *outcomeSeries
	decisionSeries [3]map[string]prometheus.Observer

	eventTypesMu sync.Mutex
	eventTypes   map[string]bool // the types warden_audit_events_total has a series of
}

var _ gateway.Observer = (*Metrics)(nil)

type callKey struct {
	entry, tool, action, effect, reason string
}

type callSeries struct{ calls prometheus.Counter }

type outcomeSeries struct{ operation, upstream prometheus.Observer }

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
	m.reg.MustRegister(m.calls, m.decision, m.operation, m.upstream, m.commit, m.batch, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for i, e := range entries {
		m.decisionSeries[i] = map[string]prometheus.Observer{}
		for _, eff := range effects {
			m.decisionSeries[i][eff] = m.decision.WithLabelValues(e, eff)
		}
	}
	return m
}

// Registry is where the metrics are registered, for a test or another exposition.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: ScrapeTimeout, MaxRequestsInFlight: 4})
}

// Decided counts one decided call (gateway.Observer).
func (m *Metrics) Decided(c gateway.CallLabels, effect, reason string, took time.Duration) {
	k := callKey{c.Entry, c.Tool, c.Action, effect, reason}
	s, ok := m.callSeries.Load(k)
	if !ok {
		s, _ = m.callSeries.LoadOrStore(k, &callSeries{calls: m.calls.WithLabelValues(k.entry, k.tool, k.action, k.effect, k.reason)})
	}
	s.(*callSeries).calls.Inc()
	m.decisionObserver(c.Entry, effect).Observe(took.Seconds())
}

func (m *Metrics) decisionObserver(entry, effect string) prometheus.Observer {
	for i, e := range entries {
		if e == entry {
			if o, ok := m.decisionSeries[i][effect]; ok {
				return o
			}
		}
	}
	return m.decision.WithLabelValues(entry, effect)
}

// Finished records the outcome of an allowed call (gateway.Observer).
func (m *Metrics) Finished(c gateway.CallLabels, o gateway.Outcome) {
	k := callKey{entry: c.Entry, tool: c.Tool, action: c.Action, effect: o.Status}
	s, ok := m.outcomeSeries.Load(k)
	if !ok {
		os := &outcomeSeries{upstream: m.upstream.WithLabelValues(k.tool, k.effect)}
		if k.entry == gateway.EntryMCP {
			os.operation = m.operation.WithLabelValues(k.tool, k.action, k.effect)
		}
		s, _ = m.outcomeSeries.LoadOrStore(k, os)
	}
	os := s.(*outcomeSeries)
	sec := o.Latency.Seconds()
	if os.operation != nil {
		os.operation.Observe(sec)
	}
	os.upstream.Observe(sec)
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
