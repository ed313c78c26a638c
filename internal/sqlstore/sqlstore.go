// Package sqlstore implements warden.Store over database/sql, so that the SQLite and PostgreSQL
// backends share one body of SQL and differ only in a small Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
)

// Dialect is what sets one SQL database apart from another, as far as the store is concerned.
// Statements are written with ? placeholders and in SQL that SQLite and PostgreSQL both accept.
type Dialect struct {
	// Numbered turns the ? placeholders into $1, $2, … for databases that want them.
	Numbered bool
	// ForUpdate ends a SELECT of a row that the transaction goes on to rewrite, so that a
	// concurrent read-modify-write waits instead of losing an update. It is empty where every
	// write transaction already holds the database's only write lock.
	ForUpdate string
	// LockTable, formatted with a table name, is run first in a transaction that must not
	// interleave with another one writing that table: one that retires every signing key, one
	// that appends audit events, which must commit in Seq order, or one that assigns the next
	// policy version. Empty where write transactions cannot interleave.
	LockTable string
	// LockMigrations is run first in the migration transaction so that several processes opening
	// one database at once apply each migration once. Empty where the transaction itself locks.
	LockMigrations string
	// IsUniqueViolation reports whether err says a row would break a UNIQUE or PRIMARY KEY
	// constraint.
	IsUniqueViolation func(err error) bool
	// TargetResource is the SQL expression of an audit event's target.resource, read from its
	// body (the hashed JSON): no column copies it.
	TargetResource string
}

// rebind rewrites the ? placeholders of q for the dialect. No statement of this package has a ?
// anywhere but in a placeholder.
func (d Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Store is warden.Store over a SQL database.
type Store struct {
	write   *sql.DB
	read    *sql.DB
	dialect Dialect
	// head reads the newest event, and insertEvents[k] inserts 1<<k events. They are prepared
	// once because appends are the hot path: without that SQLite would parse each statement
	// again for every batch.
	head         *sql.Stmt
	insertEvents []*sql.Stmt
}

var _ warden.Store = (*Store)(nil)

// New returns a Store that runs transactions and writes on write and plain reads on read. The two
// may be the same pool; SQLite uses a one-connection write pool so that writers queue in Go
// rather than in SQLite's busy handler. The Store owns both pools and closes them on Close.
func New(ctx context.Context, write, read *sql.DB, d Dialect) (*Store, error) {
	queries := []string{headSQL}
	for n := 1; n <= insertRows; n *= 2 {
		queries = append(queries, d.rebind(insertSQL(n)))
	}
	stmts := make([]*sql.Stmt, 0, len(queries))
	for _, q := range queries {
		stmt, err := write.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range stmts {
				s.Close()
			}
			return nil, storeError(err)
		}
		stmts = append(stmts, stmt)
	}
	return &Store{write: write, read: read, dialect: d, head: stmts[0], insertEvents: stmts[1:]}, nil
}

// Ping checks that both pools reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return storeError(err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return storeError(err)
	}
	return nil
}

// Close closes the pools.
func (s *Store) Close() error {
	err := s.head.Close()
	for _, stmt := range s.insertEvents {
		err = errors.Join(err, stmt.Close())
	}
	err = errors.Join(err, s.write.Close())
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// inTx runs fn in a write transaction and commits if fn returns nil. Errors of fn come back as
// they are, so fn maps its own.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storeError(err)
	}
	defer tx.Rollback() // undoes fn's work when it fails; a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return storeError(err)
	}
	return nil
}

// lockTable serialises the transaction with every other one that locks table.
func (s *Store) lockTable(ctx context.Context, tx *sql.Tx, table string) error {
	if s.dialect.LockTable == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(s.dialect.LockTable, table)); err != nil {
		return storeError(err)
	}
	return nil
}

// querier is what a statement runs on: a pool or a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// exec runs a statement and returns how many rows it changed.
func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (int, error) {
	res, err := q.ExecContext(ctx, s.dialect.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// storeError hides an unexpected database error behind a public message and keeps it for the
// log. An error that already carries a warden code, such as a time the store cannot keep, keeps
// that code.
func storeError(err error) error {
	var we *warden.Error
	switch {
	case errors.As(err, &we):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return warden.WrapError(warden.EUnavailable, "store request canceled or timed out", err)
	default:
		return warden.WrapError(warden.EInternal, "store error", err)
	}
}
