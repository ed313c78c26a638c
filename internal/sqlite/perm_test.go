package sqlite_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/sqlite"
	"github.com/wardenhq/warden/internal/storetest"
)

// withUmask sets the process's umask for the test and puts it back after. The umask is the
// process's, so tests that use this must not run in parallel.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// openWritten opens the database at path with log, writes to it so that the -wal and -shm
// files exist, and returns the store.
func openWritten(t *testing.T, path string, log *slog.Logger) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenLog(t.Context(), path, log)
	storetest.Opened(t, s, err)
	ev := &warden.AuditEvent{SchemaVersion: warden.AuditSchemaVersion, ID: "01PERM", Time: time.Now(), Type: warden.EventServerStart,
		Actor: warden.EventActor{Kind: warden.ActorSystem}}
	if err := s.AppendAuditEvents(t.Context(), []*warden.AuditEvent{ev}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("with the store open and written: %v", err)
		}
	}
	return s
}

// TestFilesArePrivate opens a new database in a directory that others may read, under the
// usual umask 022: the database, -wal and -shm files are 0600 all the same, and the directory
// is warned about.
func TestFilesArePrivate(t *testing.T) {
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "warden.db")
	var logs bytes.Buffer
	openWritten(t, path, slog.New(slog.NewTextHandler(&logs, nil)))
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s is %04o, want 0600", filepath.Base(p), m)
		}
	}
	if !strings.Contains(logs.String(), "directory lets other users in") {
		t.Errorf("no warning about the 0755 directory; log:\n%s", logs.String())
	}

	// A private directory is not warned about.
	private := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	openWritten(t, filepath.Join(private, "warden.db"), slog.New(slog.NewTextHandler(&logs, nil)))
	if logs.Len() != 0 {
		t.Errorf("warnings for a private directory:\n%s", logs.String())
	}
}

// TestOpenTightensExistingFiles opens a database whose files an earlier version left readable
// by everyone: they are made private, with a warning that says so.
func TestOpenTightensExistingFiles(t *testing.T) {
	withUmask(t, 0o022)
	dir := t.TempDir()
	path := filepath.Join(dir, "warden.db")
	s := openWritten(t, path, slog.New(slog.DiscardHandler))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The -wal and -shm files may be gone after the close; make them as an older warden left them.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	s2, err := sqlite.OpenLog(t.Context(), path, slog.New(slog.NewTextHandler(&logs, nil)))
	storetest.Opened(t, s2, err)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			continue
		}
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s is %04o after opening, want 0600", filepath.Base(p), m)
		}
	}
	if n := strings.Count(logs.String(), "made it private"); n != 3 {
		t.Errorf("%d warnings of files made private, want 3; log:\n%s", n, logs.String())
	}
}
