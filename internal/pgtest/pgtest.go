// Package pgtest gives tests a PostgreSQL database of their own. It is for tests only: no
// production package imports it.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Env names the variable that points the tests at a PostgreSQL server (a postgres:// URL whose
// user may create databases). .ci/run and `make test` set it.
const Env = "WARDEN_TEST_POSTGRES"

// Database creates a database of its own for t on the server Env names, drops it when t ends
// (ending its connections), and returns its URL. Without the variable the test skips, saying
// what it needs; with it, a server that cannot be reached fails the test, so that CI never
// passes by skipping.
func Database(t testing.TB) string {
	t.Helper()
	server := os.Getenv(Env)
	if server == "" {
		t.Skip(Env + " is not set; set it to a postgres:// URL to run the PostgreSQL tests")
	}
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	admin := DB(t, server)
	var b [8]byte
	rand.Read(b[:])
	name := "warden_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(context.Background(), `CREATE DATABASE `+name); err != nil {
		t.Fatalf("PostgreSQL at %s: create database: %v", Env, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// DB opens a database/sql handle on dsn, closed when t ends.
func DB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
