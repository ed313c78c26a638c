// Package postgres is warden's shared store: warden.Store in a PostgreSQL database, so that
// several `warden serve` replicas can share agents, keys, tools, policies and the audit log.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// maxConns bounds each replica's share of the server's max_connections (100 by default).
const maxConns = 16

// dialect is PostgreSQL's. Transactions run at READ COMMITTED, so a read-modify-write locks its
// row and a transaction that must see every committed row of a table locks the table. The
// migration lock is a transaction-level advisory lock on a key of warden's own.
var dialect = sqlstore.Dialect{
	Numbered:       true,
	ForUpdate:      " FOR UPDATE",
	LockTable:      "LOCK TABLE %s IN EXCLUSIVE MODE",
	LockMigrations: "SELECT pg_advisory_xact_lock(7761827315) -- warden schema migrations",
	TargetResource: "(body::jsonb #>> '{target,resource}')",
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505" // unique_violation
	},
}

// Store is warden.Store in a PostgreSQL database.
type Store struct {
	*sqlstore.Store
}

var _ warden.Store = (*Store)(nil)

// Open connects to the PostgreSQL database at url (postgres://user@host:port/db?sslmode=…),
// brings its schema up to date and returns a Store on it. Replicas may open one database at once.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err == nil {
		err = sqlstore.Migrate(ctx, db, dialect, migrations)
	}
	var store *sqlstore.Store
	if err == nil {
		store, err = sqlstore.New(ctx, db, db, dialect)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{store}, nil
}
