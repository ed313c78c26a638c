package sqlite_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/sqlite"
	"github.com/wardenhq/warden/internal/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) warden.Store {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
		return storetest.Opened(t, s, err)
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	storetest.RunReopen(t, func() (warden.Store, error) { return sqlite.Open(t.Context(), path) }, rawDB(t, path))
}

func TestAuditIndexTamper(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := sqlite.Open(t.Context(), path)
	storetest.RunAuditIndexTamper(t, storetest.Opened(t, s, err), rawDB(t, path))
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	storetest.RunConcurrentOpen(t, func() (warden.Store, error) { return sqlite.Open(t.Context(), path) }, rawDB(t, path))
}

func TestOpenOddPath(t *testing.T) {
	t.Parallel()
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

// TestCheckpointer checks that the WAL is copied into the database file beside the writer:
// these appends stay far below the 1000 pages at which a commit would checkpoint it itself.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warden.db")
	s, err := sqlite.Open(t.Context(), path)
	storetest.Opened(t, s, err)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Everything written so far (the migrations) is copied first, so that only the appends below
	// can make the file grow.
	raw, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	before := size()
	for i := range 5 {
		evs := make([]*warden.AuditEvent, 64)
		for j := range evs {
			evs[j] = &warden.AuditEvent{
				SchemaVersion: warden.AuditSchemaVersion, ID: fmt.Sprintf("ev-%d-%d", i, j), Time: time.Now(),
				Type: warden.EventToolCall, Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot"},
			}
		}
		if err := s.AppendAuditEvents(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); size() == before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the database file did not grow: nothing checkpointed the WAL")
		}
	}
}
