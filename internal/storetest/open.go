package storetest

import (
	"database/sql"
	"testing"

	"github.com/wardenhq/warden"
)

// Opened fails t if opening a store failed, and otherwise closes the store when t ends.
func Opened(t testing.TB, s warden.Store, err error) warden.Store {
	t.Helper()
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// RunReopen checks that a database opened again keeps its data and has no migration applied
// twice. open opens one and the same database each time; db reads that database directly.
func RunReopen(t *testing.T, open func() (warden.Store, error), db *sql.DB) {
	first, err := open()
	if err != nil {
		t.Fatal(err)
	}
	createAgent(t, first, newAgent("kept"))
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	applied := migrationVersions(t, db)

	second, err := open()
	if err != nil {
		t.Fatalf("open again: %v", err)
	}
	defer second.Close()
	wantEqual(t, "agent after reopening", getAgent(t, second, "kept"), inUTC(newAgent("kept")))
	wantEqual(t, "migrations after reopening", migrationVersions(t, db), applied)
}

// RunConcurrentOpen checks that several replicas opening one new database at once all succeed
// and migrate it once. open opens that database; db reads it directly.
func RunConcurrentOpen(t *testing.T, open func() (warden.Store, error), db *sql.DB) {
	const replicas = 4
	stores := make([]warden.Store, replicas)
	err := concurrently(replicas, func(i int) error {
		s, err := open()
		if err == nil {
			stores[i] = s
		}
		return err
	})
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	migrationVersions(t, db)
	createAgent(t, stores[0], newAgent("shared"))
	getAgent(t, stores[replicas-1], "shared")
}

// migrationVersions returns the versions in schema_migrations, of which there must be some. A
// migration applied twice would have failed the open: its CREATE TABLEs would already exist.
func migrationVersions(t *testing.T, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) == 0 {
		t.Fatal("schema_migrations is empty")
	}
	return versions
}
