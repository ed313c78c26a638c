package seal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the name of the master key file in the data directory.
const MasterKeyFile = "master.key"

// LoadOrCreateMasterKey returns the master key. env is the value of WARDEN_MASTER_KEY as the
// caller read it: when set it wins and must be 32 bytes in standard base64 or hex. Otherwise the
// key is read from dataDir/master.key, which is created with mode 0600 on first use. A key file
// that others may read, or of the wrong length, is an error rather than a silent new key: a new
// key would make every sealed secret unreadable.
func LoadOrCreateMasterKey(dataDir string, env string) ([]byte, error) {
	if env != "" {
		return parseMasterKey(env)
	}
	if dataDir == "" {
		return nil, errors.New("master key: no data directory and WARDEN_MASTER_KEY is not set")
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	key, err := readMasterKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createMasterKey(dataDir, path)
	}
	return key, err
}

// parseMasterKey never repeats the value in its error: it is a secret even when malformed.
func parseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == hex.EncodedLen(KeySize) {
		if key, err := hex.DecodeString(s); err == nil {
			return key, nil
		}
	}
	if len(s) == base64.StdEncoding.EncodedLen(KeySize) {
		if key, err := base64.StdEncoding.Strict().DecodeString(s); err == nil && len(key) == KeySize {
			return key, nil
		}
	}
	return nil, errors.New("WARDEN_MASTER_KEY must be 32 bytes in standard base64 or hex; make one with: openssl rand -base64 32")
}

func readMasterKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Check the opened file, not the path: a symlink (a mounted secret) is fine, and what is
	// checked is exactly what is read.
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("master key %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&^0o600 != 0 {
		return nil, fmt.Errorf("master key %s has mode %04o; it must not be readable by others: chmod 600 %s", path, perm, path)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("master key %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key %s holds %d bytes, want %d: restore it from a backup (every sealed secret depends on it)", path, len(key), KeySize)
	}
	return key, nil
}

// createMasterKey writes the key to a temporary file and links it into place, so a crash never
// leaves a short key behind and two processes starting at once end up with the same key.
func createMasterKey(dataDir, path string) ([]byte, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	key := make([]byte, KeySize)
	rand.Read(key)

	tmp, err := os.CreateTemp(dataDir, ".master.key-*")
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSynced(tmp, key); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readMasterKey(path)
		}
		return nil, fmt.Errorf("master key: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return key, nil
}

func writeSynced(f *os.File, data []byte) error {
	// CreateTemp makes the file 0600 already; Chmod guards against an unusual umask or platform.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
