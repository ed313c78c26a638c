package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/postgres"
	"github.com/wardenhq/warden/internal/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	db := rawDB(t, dsn)
	storetest.Run(t, func(t *testing.T) warden.Store {
		s, err := postgres.Open(t.Context(), testSchema(t, db, dsn))
		return storetest.Opened(t, s, err)
	})
}

// BenchmarkAppendAuditEvents is the baseline for the audit log's write path on PostgreSQL.
func BenchmarkAppendAuditEvents(b *testing.B) {
	storetest.RunAppendBenchmark(b, func(b *testing.B) warden.Store {
		s, err := postgres.Open(b.Context(), testDatabase(b))
		return storetest.Opened(b, s, err)
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	storetest.RunReopen(t, func() (warden.Store, error) { return postgres.Open(t.Context(), dsn) }, rawDB(t, dsn))
}

func TestAuditIndexTamper(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	s, err := postgres.Open(t.Context(), dsn)
	storetest.RunAuditIndexTamper(t, storetest.Opened(t, s, err), rawDB(t, dsn))
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	storetest.RunConcurrentOpen(t, func() (warden.Store, error) { return postgres.Open(t.Context(), dsn) }, rawDB(t, dsn))
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	testDatabase(t) // skips with the rest when there is no server to test against
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("opened a store on a port where no server listens")
	}
}

// testSchema creates a schema in the database at dsn and returns a URL whose connections work in
// it. The parallel subtests of the contract each get an empty store this way at the cost of one
// CREATE DATABASE in all, which takes seconds on a busy server.
func testSchema(t *testing.T, db *sql.DB, dsn string) string {
	t.Helper()
	name := "test_" + randomHex()
	if _, err := db.ExecContext(t.Context(), `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func testDatabase(t testing.TB) string { return pgtest.Database(t) }

func rawDB(t testing.TB, dsn string) *sql.DB { return pgtest.DB(t, dsn) }
