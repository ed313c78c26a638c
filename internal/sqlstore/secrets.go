package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

const secretColumns = `name, sealed, created_at, updated_at`

func scanSecret(row scanner) (*warden.Secret, error) {
	var sec warden.Secret
	if err := row.Scan(&sec.Name, &sec.Sealed, timeColumn{&sec.CreatedAt}, timeColumn{&sec.UpdatedAt}); err != nil {
		return nil, err
	}
	return &sec, nil
}

// PutSecret creates the secret or replaces its value and UpdatedAt, keeping the CreatedAt it was
// first stored with; it sets sec.CreatedAt to that time, so that sec then reads as the store does.
func (s *Store) PutSecret(ctx context.Context, sec *warden.Secret) error {
	if len(sec.Sealed) == 0 {
		// Sealing always yields bytes; none means the caller forgot to seal.
		return warden.Errorf(warden.EInvalid, "secret %q has no sealed value", sec.Name)
	}
	var createdAt time.Time
	err := s.write.QueryRowContext(ctx, s.dialect.rebind(`INSERT INTO secrets (`+secretColumns+`) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at
		RETURNING created_at`),
		sec.Name, sec.Sealed, unixNanos(sec.CreatedAt), unixNanos(sec.UpdatedAt)).Scan(timeColumn{&createdAt})
	if err != nil {
		return storeError(err)
	}
	sec.CreatedAt = createdAt
	return nil
}

// Secret returns the named secret, sealed.
func (s *Store) Secret(ctx context.Context, name string) (*warden.Secret, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+secretColumns+` FROM secrets WHERE name = ?`), name)
	sec, err := scanSecret(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "secret %q not found", name)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return sec, nil
}

// Secrets lists every secret, ordered by name.
func (s *Store) Secrets(ctx context.Context) ([]*warden.Secret, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+secretColumns+` FROM secrets ORDER BY name`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanSecret)
}

// DeleteSecret removes the named secret.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	n, err := s.exec(ctx, s.write, `DELETE FROM secrets WHERE name = ?`, name)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "secret %q not found", name)
	}
	return nil
}
