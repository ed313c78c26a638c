package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenhq/warden"
)

// effects are the decision effects a call can end with.
var effects = [...]string{warden.EffectAllow, warden.EffectDeny, warden.EffectApprovalRequired, warden.EffectApproved,
	warden.EffectRejected, warden.EffectExpired, warden.EffectError}

// maxEventTypes bounds the types warden_audit_events_total labels: event types are warden's
// own words, but a bound costs nothing.
const maxEventTypes = 256

// eventType is t, or Other once maxEventTypes others have been seen.
func (m *Metrics) eventType(t string) string {
	m.eventTypesMu.Lock()
	defer m.eventTypesMu.Unlock()
	if m.eventTypes[t] {
		return t
	}
	if len(m.eventTypes) >= maxEventTypes {
		return Other
	}
	m.eventTypes[t] = true
	return t
}

// Watch registers the gauges src reads at scrape time. Call it once, before serving.
func (m *Metrics) Watch(src Sources) {
	gauge := func(name, help string, f func() int) {
		if f != nil {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) }))
		}
	}
	gauge("warden_calls_in_flight", "Allowed calls on their way upstream on this replica.", src.InFlight)
	gauge("warden_mcp_sessions", "Open MCP sessions on this replica.", src.MCPSessions)
	gauge("warden_audit_queue_events", "Audit events waiting for the next group commit.", src.AuditQueue)
	gauge("warden_sandboxes", "warden run sandboxes registered with this replica.", src.Sandboxes)
	m.reg.MustRegister(&scraped{src: src})
}

var (
	approvalsDesc = prometheus.NewDesc("warden_approvals_pending", "Approval requests waiting for a person (all replicas).", nil, nil)
	budgetUsed    = prometheus.NewDesc("warden_budget_used", "A budget's use now: calls in a rate's bucket or a quota's window, a sum's total, calls in flight.", []string{"budget"}, nil)
	budgetLimit   = prometheus.NewDesc("warden_budget_limit", "A budget's limit.", []string{"budget"}, nil)
	killVersion   = prometheus.NewDesc("warden_kill_state_version", "The fleet's newest kill-state version.", nil, nil)
	replicaLag    = prometheus.NewDesc("warden_replica_kill_state_lag_versions", "How many kill-state versions a replica's applied state is behind the fleet's newest.", []string{"replica"}, nil)
	scrapeErrors  = prometheus.NewDesc("warden_metrics_scrape_errors", "Sources this scrape could not read (their metrics are missing from it).", nil, nil)
)

// scraped collects what is read from the store or the fleet when a scraper asks.
type scraped struct{ src Sources }

func (s *scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{approvalsDesc, budgetUsed, budgetLimit, killVersion, replicaLag, scrapeErrors} {
		ch <- d
	}
}

func (s *scraped) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	failed := 0
	if f := s.src.ApprovalsPending; f != nil {
		if n, err := f(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(approvalsDesc, prometheus.GaugeValue, float64(n))
		} else {
			failed++
		}
	}
	if f := s.src.Budgets; f != nil {
		for _, b := range f(ctx) {
			ch <- prometheus.MustNewConstMetric(budgetUsed, prometheus.GaugeValue, b.Used, b.ID)
			ch <- prometheus.MustNewConstMetric(budgetLimit, prometheus.GaugeValue, b.Limit, b.ID)
		}
	}
	if f := s.src.KillState; f != nil {
		if v, lags, err := f(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(killVersion, prometheus.GaugeValue, float64(v))
			for _, l := range lags {
				ch <- prometheus.MustNewConstMetric(replicaLag, prometheus.GaugeValue, float64(l.Lag), l.Replica)
			}
		} else {
			failed++
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrors, prometheus.GaugeValue, float64(failed))
}
