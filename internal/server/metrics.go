package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/metrics"
)

// watch gives the metrics the gauges of the server's parts, read at scrape time.
func (s *Server) watch(m *metrics.Metrics) {
	m.Watch(metrics.Sources{
		InFlight:    func() int { return s.Pipeline.InFlight("") },
		MCPSessions: s.MCP.Sessions,
		AuditQueue:  s.Audit.QueueDepth,
		Sandboxes:   s.Kill.Runners.Len,
		ApprovalsPending: func(ctx context.Context) (int, error) {
			now := s.Pipeline.Clock.Now()
			as, err := s.Store.Approvals(ctx, warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending}})
			n := 0
			for _, a := range as {
				if a.ExpiresAt.After(now) {
					n++
				}
			}
			return n, err
		},
		Budgets: func(context.Context) []metrics.BudgetUse {
			now := s.Pipeline.Clock.Now()
			var out []metrics.BudgetUse
			for _, agent := range s.Budgets.Agents() {
				for _, st := range s.Budgets.Show(agent, now) {
					out = append(out, metrics.BudgetUse{ID: st.Budget.ID, Used: st.Used, Limit: st.Limit})
				}
			}
			return out
		},
		KillState: func(ctx context.Context) (int64, []metrics.ReplicaLag, error) {
			rs, err := s.Fleet.Replicas(ctx)
			if err != nil {
				return 0, nil, err
			}
			lags := make([]metrics.ReplicaLag, 0, len(rs.Replicas))
			for _, r := range rs.Replicas {
				if r.Live {
					lags = append(lags, metrics.ReplicaLag{Replica: r.ID, Lag: r.LagVersions})
				}
			}
			return rs.Version, lags, nil
		},
	})
}

// listenMetrics opens telemetry.metrics_listen, when it is set: /metrics without
// authentication, for a scraper on this host. A non-loopback address is logged as a warning.
func (s *Server) listenMetrics() error {
	addr := s.Config.Telemetry.MetricsListen
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if !s.Config.Telemetry.MetricsLoopback() {
		s.log.Warn("telemetry.metrics_listen is not a loopback address: anyone who reaches it reads warden's metrics without a token", "listen", addr)
	}
	s.metricsLn = ln
	return nil
}

// MetricsAddr is the address of the unauthenticated metrics listener, "" when there is none.
func (s *Server) MetricsAddr() string {
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}

// metricsServer serves /metrics alone, without authentication, on the metrics listener.
func (s *Server) metricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 16 << 10}
}

// serveMetrics serves the metrics listener until srv is closed.
func (s *Server) serveMetrics(srv *http.Server) error {
	if err := srv.Serve(s.metricsLn); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
