// Package sqlite is warden's embedded store: warden.Store in one SQLite file, for a single
// `warden serve` with nothing else to install.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// dialect is SQLite's: every write goes through the one connection of the write pool and
// every transaction on it begins IMMEDIATE, so a transaction holds the database's write lock
// from its first statement and needs no row or table locks.
var dialect = sqlstore.Dialect{
	TargetResource: "json_extract(body, '$.target.resource')",
	IsUniqueViolation: func(err error) bool {
		var e *sqlitedriver.Error
		return errors.As(err, &e) &&
			(e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
}

// Store is warden.Store in a SQLite database.
type Store struct {
	*sqlstore.Store
	checkpoints *checkpointer
}

var _ warden.Store = (*Store)(nil)

// busyTimeout bounds how long a connection waits for a lock another holds, such as another
// process's writer or a backup, before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Open is OpenLog with the default logger.
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenLog(ctx, path, slog.Default())
}

// OpenLog opens, creating it if need be, the SQLite database at path, brings its schema up to
// date and returns a Store on it. Its files are private to the owner (secureFiles); what cannot
// be made so is a warning on log.
//
// SQLite lets one writer in at a time. Rather than have concurrent writers retry in SQLite's
// busy handler, which wakes them in no order and gives up after a timeout, writes share one
// connection that database/sql hands out in turn; reads run on a pool of their own, which WAL
// lets go on beside the writer.
func OpenLog(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if err := secureFiles(abs, log); err != nil {
		return nil, err
	}
	busy := strconv.FormatInt(busyTimeout.Milliseconds(), 10)
	// busy_timeout still matters: another process, such as a backup, may hold the lock.
	// synchronous=FULL makes a commit durable once it returns, as audit events need to be.
	// The journal mode is not set here but once, by enableWAL.
	write, err := openPool(abs, 1, url.Values{
		"_txlock":       {"immediate"},
		"_synchronous":  {"FULL"},
		"_busy_timeout": {busy},
		"_foreign_keys": {"1"},
		"_pragma":       {"temp_store(memory)"},
	})
	if err != nil {
		return nil, err
	}
	err = enableWAL(ctx, write)
	if err == nil {
		var migrations fs.FS
		if migrations, err = fs.Sub(migrationFiles, "migrations"); err == nil {
			err = sqlstore.Migrate(ctx, write, dialect, migrations)
		}
	}
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// query_only keeps a write that was sent to the wrong pool from ever taking the lock.
	read, err := openPool(abs, runtime.GOMAXPROCS(0), url.Values{
		"_busy_timeout": {busy},
		"_foreign_keys": {"1"},
		"_query_only":   {"1"},
	})
	if err != nil {
		write.Close()
		return nil, err
	}
	store, err := sqlstore.New(ctx, write, read, dialect)
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ckpt, err := openPool(abs, 1, url.Values{
		"_synchronous":  {"FULL"},
		"_busy_timeout": {busy},
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return &Store{Store: store, checkpoints: startCheckpointer(ckpt)}, nil
}

// Close stops the checkpointer and closes the database.
func (s *Store) Close() error {
	return errors.Join(s.checkpoints.stop(), s.Store.Close())
}

// enableWAL puts the database file in WAL mode, which the file keeps from then on, so that every
// later connection is in WAL mode from the start.
//
// It is done once here rather than by every connection as it opens because switching a file to
// WAL, which rewrites its header, upgrades a read lock to a write lock, and SQLite does not call
// the busy handler for an upgrade, to avoid deadlock. Of several processes that open a new
// database at once, all but one would fail at once with SQLITE_BUSY whatever busy_timeout says;
// here they try again, for as long as busy_timeout would have them wait.
func enableWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	delay := time.Millisecond
	for {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		switch {
		case err == nil && strings.EqualFold(mode, "wal"):
			return nil
		case err == nil:
			return fmt.Errorf("the database cannot be put in WAL mode (its journal mode is %s); keep it on a local file system", mode)
		case !isBusy(err) || time.Now().After(deadline):
			return fmt.Errorf("enable WAL: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("enable WAL: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, of any extended kind.
func isBusy(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// openPool opens a pool of at most size connections to the database file at the absolute path,
// each set up by the driver parameters in params.
func openPool(path string, size int, params url.Values) (*sql.DB, error) {
	// A file: URI escapes any character of the path that would otherwise start the parameters.
	dsn := (&url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(size)
	// Keeping every connection open spares reopening the file and rereading the schema.
	db.SetMaxIdleConns(size)
	return db, nil
}
