package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

const adminTokenColumns = `name, role, hash, created_by, created_at, revoked_at, email`

func scanAdminToken(row scanner) (*warden.AdminToken, error) {
	var t warden.AdminToken
	err := row.Scan(&t.Name, &t.Role, &t.Hash, &t.CreatedBy, timeColumn{&t.CreatedAt}, timeColumn{&t.RevokedAt}, &t.Email)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateAdminToken stores a new token; a taken name is EConflict, revoked or not, and so is a
// taken hash.
func (s *Store) CreateAdminToken(ctx context.Context, t *warden.AdminToken) error {
	_, err := s.exec(ctx, s.write, `INSERT INTO admin_tokens (`+adminTokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.Name, string(t.Role), t.Hash, t.CreatedBy, unixNanos(t.CreatedAt), unixNanos(t.RevokedAt), t.Email)
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "admin token %q already exists", t.Name)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// AdminTokenByHash returns the token with the given hash, revoked or not.
func (s *Store) AdminTokenByHash(ctx context.Context, hash []byte) (*warden.AdminToken, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+adminTokenColumns+` FROM admin_tokens WHERE hash = ?`), hash)
	t, err := scanAdminToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "admin token not found")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return t, nil
}

// AdminTokens lists every token, ordered by name.
func (s *Store) AdminTokens(ctx context.Context) ([]*warden.AdminToken, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+adminTokenColumns+` FROM admin_tokens ORDER BY name`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanAdminToken)
}

// RevokeAdminToken marks the named token revoked at the given time. A token revoked before keeps
// the time of its first revocation.
func (s *Store) RevokeAdminToken(ctx context.Context, name string, at time.Time) error {
	if at.IsZero() {
		return warden.Errorf(warden.EInvalid, "revoking admin token %q needs a time", name)
	}
	n, err := s.exec(ctx, s.write, `UPDATE admin_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?`,
		unixNanos(at), name)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "admin token %q not found", name)
	}
	return nil
}
