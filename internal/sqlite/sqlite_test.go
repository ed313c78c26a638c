package sqlite_test

import (
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/sqlite"
	"github.com/wardenhq/warden/internal/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) warden.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
		return storetest.Opened(t, s, err)
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	storetest.RunReopen(t, func() (warden.Store, error) { return sqlite.Open(t.Context(), path) }, rawDB(t, path))
}

func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	storetest.RunConcurrentOpen(t, func() (warden.Store, error) { return sqlite.Open(t.Context(), path) }, rawDB(t, path))
}

func TestOpenOddPath(t *testing.T) {
	// Characters that would start or escape a URI's query must stay part of the file name.
	path := filepath.Join(t.TempDir(), "data?mode=ro&x=%41 #1", "warden.db")
	if _, err := sqlite.Open(t.Context(), path); err == nil {
		t.Fatal("opened a database in a directory that does not exist")
	}
	path = filepath.Join(t.TempDir(), "warden?mode=ro&x=%41 #1.db")
	s, err := sqlite.Open(t.Context(), path)
	storetest.Opened(t, s, err)
	if err := s.CreateAgent(t.Context(), &warden.Agent{ID: "ag_a", Name: "a", Status: warden.AgentActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(`SELECT 1 FROM agents`); err != nil {
		t.Fatal(err)
	}
}

// rawDB opens the database file at path directly, to look at what the store wrote.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: "_busy_timeout=10000"}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkAppendAuditEvents is the baseline for the audit log's write path on SQLite.
func BenchmarkAppendAuditEvents(b *testing.B) {
	storetest.RunAppendBenchmark(b, func(b *testing.B) warden.Store {
		s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "warden.db"))
		return storetest.Opened(b, s, err)
	})
}
