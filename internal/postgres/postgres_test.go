package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/wardenhq/warden"
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

// testDatabase creates a database of its own for t on the server that WARDEN_TEST_POSTGRES
// names, drops it when t ends, and returns its URL. Without the variable the test skips; with
// it, a server that cannot be reached fails the test, so that CI never passes by skipping.
func testDatabase(t testing.TB) string {
	t.Helper()
	server := os.Getenv("WARDEN_TEST_POSTGRES")
	if server == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set; set it to a postgres:// URL to run the PostgreSQL store tests")
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("WARDEN_TEST_POSTGRES: %v", err)
	}
	name := "warden_test_" + randomHex()
	admin := rawDB(t, server)
	if _, err := admin.ExecContext(t.Context(), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("PostgreSQL at WARDEN_TEST_POSTGRES: create database: %v", err)
	}
	t.Cleanup(func() {
		// t's context has ended by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
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

// rawDB connects to the database at dsn directly, closing the connection when t ends.
func rawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
