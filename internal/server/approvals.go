package server

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
)

// newApprovals builds the approval service from the server configuration. A webhook header
// written "env:NAME" is read from the environment, so that a receiver's credential stays out of
// the file.
func newApprovals(cfg config.Config, store warden.Store, audit warden.AuditLog, log *slog.Logger, getenv func(string) string, clk clock.Clock) (*approval.Service, error) {
	c := cfg.Approvals
	hooks := make([]approval.Webhook, 0, len(c.Webhooks))
	for i, w := range c.Webhooks {
		headers := map[string]string{}
		for k, v := range w.Headers {
			if name, ok := strings.CutPrefix(v, "env:"); ok {
				if v = getenv(name); v == "" {
					return nil, fmt.Errorf("approvals.webhooks[%d]: header %s names environment variable %s, which is not set", i, k, name)
				}
			}
			headers[k] = v
		}
		hooks = append(hooks, approval.Webhook{URL: w.URL, Format: w.Format, Headers: headers, Timeout: time.Duration(w.Timeout), Retries: w.Retries})
	}
	return approval.New(store, audit, log, approval.Options{
		Hold:               time.Duration(c.Hold),
		TTL:                time.Duration(c.TTL),
		Poll:               time.Duration(c.Poll),
		SeparationOfDuties: c.SeparationOfDuties,
		CriticalApprovers:  c.CriticalApprovers,
		MaxPendingPerAgent: c.MaxPendingPerAgent,
		Webhooks:           hooks,
		BaseURL:            cfg.PublicURL,
		Clock:              clk,
	}), nil
}
