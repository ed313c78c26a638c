package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/httpapi"
)

// mountConsole builds the web console over the API's services and mounts it at /ui/; the
// server runs its verifications of the audit log (Console.RunVerifications).
func mountConsole(api *httpapi.API, auditLog *audit.Log, publicURL string, masterKey []byte, idle time.Duration, log *slog.Logger, clk clock.Clock) (*console.Console, error) {
	c, err := console.New(console.Options{
		People: api.People, Admin: api.Admin, Kill: api.Kill, Approvals: api.Approvals, Detect: api.Detect,
		Store: api.Store, Audit: auditLog, AuditLog: api.Audit, Verifier: auditLog, Key: consoleKey(masterKey), Clock: clk, Log: log, Idle: idle,
		Secure: strings.HasPrefix(publicURL, "https://"),
	})
	if err != nil {
		return nil, err
	}
	api.Console = c.Handler()
	return c, nil
}

// consoleKey authenticates the console's CSRF tokens and activity cookies: derived from the
// master key, so that every replica accepts those of every other.
func consoleKey(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("warden console key v1"))
	return m.Sum(nil)
}
