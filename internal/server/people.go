package server

import (
	"log/slog"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/people"
)

// newPeople is people's sign-in: single sign-on when people.oidc is set, break-glass admin
// tokens always. The client secret is read here, once, and never logged.
func newPeople(cfg config.Config, store warden.Store, auditLog warden.AuditLog, adm *admin.Service, log *slog.Logger, getenv func(string) string, clk clock.Clock) (*people.Service, error) {
	opt := people.Options{
		Store: store, Audit: auditLog, Admin: adm, Clock: clk, Log: log, PublicURL: cfg.PublicURL,
		BrowserTTL: time.Duration(cfg.People.BrowserSessionTTL), CLITTL: time.Duration(cfg.People.CLISessionTTL),
	}
	if o := cfg.People.OIDC; o != nil {
		secret, err := o.Secret(getenv)
		if err != nil {
			return nil, err
		}
		opt.OIDC = &people.OIDC{
			Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, Scopes: o.Scopes,
			RoleClaim: o.RoleClaim, Roles: o.Roles, DefaultRole: o.DefaultRole,
			RequireVerifiedEmail: o.RequireVerifiedEmail == nil || *o.RequireVerifiedEmail,
		}
	}
	return people.New(opt), nil
}
