package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/wardenhq/warden"
)

// Lockdown returns the lockdown in force; none stored means none.
func (s *Store) Lockdown(ctx context.Context) (warden.Lockdown, error) {
	var l warden.Lockdown
	err := s.read.QueryRowContext(ctx, `SELECT body FROM lockdown WHERE id = 1`).Scan(jsonColumn{&l})
	if errors.Is(err, sql.ErrNoRows) {
		return warden.Lockdown{}, nil
	}
	if err != nil {
		return warden.Lockdown{}, storeError(err)
	}
	return l, nil
}

// SetLockdown replaces the lockdown.
func (s *Store) SetLockdown(ctx context.Context, l warden.Lockdown) error {
	body, err := jsonText(l)
	if err != nil {
		return err
	}
	if _, err := s.exec(ctx, s.write, `INSERT INTO lockdown (id, body) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body`, body); err != nil {
		return storeError(err)
	}
	return nil
}

// Quarantine records a quarantined digest; a digest already quarantined keeps its first record.
func (s *Store) Quarantine(ctx context.Context, q *warden.Quarantine) error {
	if q.Digest == "" {
		return warden.Errorf(warden.EInvalid, "a quarantine needs a digest")
	}
	if _, err := s.exec(ctx, s.write, `INSERT INTO quarantine (digest, reason, by, at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING`,
		q.Digest, q.Reason, q.By, unixNanos(q.At)); err != nil {
		return storeError(err)
	}
	return nil
}

// Quarantined lists every quarantined digest, ordered by digest.
func (s *Store) Quarantined(ctx context.Context) ([]*warden.Quarantine, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT digest, reason, by, at FROM quarantine ORDER BY digest`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, func(row scanner) (*warden.Quarantine, error) {
		var q warden.Quarantine
		err := row.Scan(&q.Digest, &q.Reason, &q.By, timeColumn{&q.At})
		return &q, err
	})
}
