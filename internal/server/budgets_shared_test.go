package server_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/server"
)

// TestReplicasShareBudgets opens two replicas on one PostgreSQL database: a quota spent on one is
// spent on the other, because the server makes budgets shared on PostgreSQL.
func TestReplicasShareBudgets(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	dir := t.TempDir() // one data directory: the replicas share the master key, as a fleet must
	open := func(replica string) *server.Server {
		cfg := config.Default()
		cfg.Data, cfg.Store, cfg.ReplicaID = dir, dsn, replica
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := server.Open(t.Context(), cfg, slog.New(slog.DiscardHandler), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		return srv
	}
	a, b := open("replica-a"), open("replica-b")
	bud, err := budget.ParseSpec("triage-bot", "github", "", "quota 1/day")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Budgets.Put(t.Context(), bud); err != nil {
		t.Fatal(err)
	}
	if err := b.Budgets.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	u := budget.Usage{Agent: "triage-bot", Tool: "github", Action: "issues.list", Now: time.Now()}
	if _, d, err := a.Budgets.Consume(u); d != nil || err != nil {
		t.Fatalf("first call on replica a: %v %v", d, err)
	}
	if _, d, err := b.Budgets.Consume(u); d == nil || err != nil {
		t.Fatalf("second call on replica b = (%v, %v), want the quota's denial", d, err)
	}
}
