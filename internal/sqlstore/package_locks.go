package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

var _ warden.PackageLockStore = (*Store)(nil)

// MaxPackageLock bounds a stored dependency lock.
const MaxPackageLock = 16 << 20

// PutPackageLock stores an npm package's dependency lock under the sha256 digest of its bytes;
// one already stored is kept as it is (the same digest is the same bytes).
func (s *Store) PutPackageLock(ctx context.Context, digest string, lock []byte) error {
	sum := sha256.Sum256(lock)
	if !warden.ValidDigest(digest) || digest != "sha256:"+hex.EncodeToString(sum[:]) {
		return warden.Errorf(warden.EInvalid, "the package lock's digest is not %s", digest)
	}
	if len(lock) == 0 || len(lock) > MaxPackageLock || !utf8.Valid(lock) {
		return warden.Errorf(warden.EInvalid, "a package lock is UTF-8 text of 1 to %d bytes", MaxPackageLock)
	}
	if _, err := s.exec(ctx, s.write, `INSERT INTO tool_package_locks (digest, lock) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`,
		digest, string(lock)); err != nil {
		return storeError(err)
	}
	return nil
}

// PackageLock returns the lock stored under digest.
func (s *Store) PackageLock(ctx context.Context, digest string) ([]byte, error) {
	var lock string
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT lock FROM tool_package_locks WHERE digest = ?`), digest).Scan(&lock)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "no package lock %s is stored", digest)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return []byte(lock), nil
}
