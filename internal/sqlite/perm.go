package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// The database holds the audit log, and with it every call's arguments: its files are for the
// owner alone. SQLite creates the -wal and -shm files with the permissions of the database
// file, so making that one private before the driver first opens it makes all three private.
const fileMode = 0o600

// secureFiles creates the database file at path with fileMode if it does not exist, so that
// SQLite never creates it under the umask, and makes private an existing database, -wal or
// -shm file that other users may read or write. A file that cannot be made private (another
// user owns it) is a warning, as is a directory that lets other users in: they may list it,
// open what is readable in it, or put files there.
func secureFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: create %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		mode := fi.Mode().Perm()
		if mode&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, mode&0o700); err != nil {
			log.Warn("a database file is open to other users and cannot be made private; it holds the audit log",
				"file", p, "mode", fmt.Sprintf("%04o", mode), "err", err)
			continue
		}
		log.Warn("a database file was open to other users; made it private", "file", p,
			"was", fmt.Sprintf("%04o", mode), "now", fmt.Sprintf("%04o", mode&0o700))
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err == nil && dirOpenToOthers(fi.Mode().Perm()) {
		log.Warn("the database's directory lets other users in: they may list it or put files in it; make it private (chmod 700)",
			"dir", dir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	return nil
}

// dirOpenToOthers reports whether a directory of mode m lets users other than its owner write
// in it, or list it and reach its files.
func dirOpenToOthers(m fs.FileMode) bool {
	return m&0o022 != 0 || m&0o050 == 0o050 || m&0o005 == 0o005
}
