package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/wardenhq/warden"
)

const signingKeyColumns = `kid, alg, public_key, sealed_private_key, created_at, retired_at`

func scanSigningKey(row scanner) (*warden.SigningKey, error) {
	var k warden.SigningKey
	err := row.Scan(&k.ID, &k.Algorithm, &k.Public, &k.Sealed, timeColumn{&k.CreatedAt}, timeColumn{&k.RetiredAt})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateSigningKey stores k and retires, as of k.CreatedAt, every key that was signing.
func (s *Store) CreateSigningKey(ctx context.Context, k *warden.SigningKey) error {
	if k.CreatedAt.IsZero() {
		// The creation time is when the key takes over, and so when the others retire.
		return warden.Errorf(warden.EInvalid, "signing key %q has no creation time", k.ID)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Without the lock two concurrent rotations would each retire only the keys committed
		// before they began, and leave both new keys signing.
		if err := s.lockTable(ctx, tx, "signing_keys"); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL`,
			unixNanos(k.CreatedAt)); err != nil {
			return storeError(err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Algorithm, k.Public, k.Sealed, unixNanos(k.CreatedAt), unixNanos(k.RetiredAt))
		if err != nil && s.dialect.IsUniqueViolation(err) {
			return warden.Errorf(warden.EConflict, "signing key %q already exists", k.ID)
		}
		if err != nil {
			return storeError(err)
		}
		return nil
	})
}

// SigningKeys lists every key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]*warden.SigningKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanSigningKey)
}

// DeleteSigningKeysRetiredBefore removes keys retired before t; a key still signing stays.
func (s *Store) DeleteSigningKeysRetiredBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := s.exec(ctx, s.write, `DELETE FROM signing_keys WHERE retired_at < ?`, boundNanos(t))
	if err != nil {
		return 0, storeError(err)
	}
	return n, nil
}

const revokedTokenColumns = `jti, agent_id, expires_at, revoked_at`

func scanRevokedToken(row scanner) (*warden.RevokedToken, error) {
	var r warden.RevokedToken
	if err := row.Scan(&r.ID, &r.AgentID, timeColumn{&r.ExpiresAt}, timeColumn{&r.RevokedAt}); err != nil {
		return nil, err
	}
	return &r, nil
}

// RevokeToken records a revocation; revoking twice keeps the first record.
func (s *Store) RevokeToken(ctx context.Context, r *warden.RevokedToken) error {
	if r.ExpiresAt.IsZero() {
		// The expiry says how long the revocation must be kept; without one it would be pruned at once.
		return warden.Errorf(warden.EInvalid, "revoked token %q has no expiry", r.ID)
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO revoked_tokens (`+revokedTokenColumns+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (jti) DO NOTHING`,
		r.ID, r.AgentID, unixNanos(r.ExpiresAt), unixNanos(r.RevokedAt))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// RevokedTokens lists revocations of tokens that expire after t, soonest expiry first.
func (s *Store) RevokedTokens(ctx context.Context, after time.Time) ([]*warden.RevokedToken, error) {
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT `+revokedTokenColumns+` FROM revoked_tokens
		WHERE expires_at > ? ORDER BY expires_at, jti`), boundNanos(after))
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanRevokedToken)
}

// PruneRevokedTokens forgets revocations of tokens that expired before t.
func (s *Store) PruneRevokedTokens(ctx context.Context, before time.Time) (int, error) {
	n, err := s.exec(ctx, s.write, `DELETE FROM revoked_tokens WHERE expires_at < ?`, boundNanos(before))
	if err != nil {
		return 0, storeError(err)
	}
	return n, nil
}
