package server_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/seal"
	"github.com/wardenhq/warden/internal/server"
)

// onlyAnnouncements configures a replica on store whose polls are slowed (an hour, a minute of
// staleness) so that a change can reach it only by the fleet's announcement; the acknowledgement
// timeout is long for a loaded machine (a replica answers in ms).
func onlyAnnouncements(store string) func(*config.Config) {
	return func(c *config.Config) {
		c.Store = store
		c.Tokens.RefreshInterval = config.Duration(time.Hour)
		c.KillSwitch.MaxStaleness = config.Duration(time.Minute)
		c.KillSwitch.AckTimeout = config.Duration(10 * time.Second)
	}
}

// startReplicaB starts a second replica, "replica-b", beside a: the same master key and admin
// token in a data directory of its own, configured by edit (which names the shared store), and
// waits until a sees it live.
func startReplicaB(t *testing.T, a *instance, edit func(*config.Config)) *instance {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{seal.MasterKeyFile, server.AdminTokenFile} {
		data, err := os.ReadFile(filepath.Join(a.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startPrepared(t, "127.0.0.1:0", dir, clock.Real{}, func(c *config.Config) { edit(c); c.ReplicaID = "replica-b" }, nil)
	waitLive(t, a, "replica-b")
	return b
}
