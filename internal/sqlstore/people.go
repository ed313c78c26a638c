package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

const personSessionColumns = `hash, kind, name, email, role, via, created_at, expires_at, revoked_at`

// endedSessionsKept is how long an ended session stays in the store before a later sign-in
// deletes it.
const endedSessionsKept = 24 * time.Hour

func scanPersonSession(row scanner) (*warden.PersonSession, error) {
	var ps warden.PersonSession
	err := row.Scan(&ps.Hash, &ps.Kind, &ps.Name, &ps.Email, &ps.Role, &ps.Via,
		timeColumn{&ps.CreatedAt}, timeColumn{&ps.ExpiresAt}, timeColumn{&ps.RevokedAt})
	if err != nil {
		return nil, err
	}
	return &ps, nil
}

// CreatePersonSession stores a new session, deleting sessions that ended over a day before it.
func (s *Store) CreatePersonSession(ctx context.Context, ps *warden.PersonSession) error {
	if ps.CreatedAt.IsZero() || ps.ExpiresAt.IsZero() {
		return warden.Errorf(warden.EInvalid, "a person session needs its creation and expiry times")
	}
	cutoff := boundNanos(ps.CreatedAt.Add(-endedSessionsKept))
	if _, err := s.exec(ctx, s.write, `DELETE FROM person_sessions WHERE expires_at < ? OR revoked_at < ?`, cutoff, cutoff); err != nil {
		return storeError(err)
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO person_sessions (`+personSessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		ps.Hash, ps.Kind, ps.Name, ps.Email, string(ps.Role), ps.Via, unixNanos(ps.CreatedAt), unixNanos(ps.ExpiresAt), unixNanos(ps.RevokedAt))
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "a person session with this token already exists")
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// PersonSessionByHash returns the session with the given hash, ended or not.
func (s *Store) PersonSessionByHash(ctx context.Context, hash []byte) (*warden.PersonSession, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+personSessionColumns+` FROM person_sessions WHERE hash = ?`), hash)
	ps, err := scanPersonSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "session not found")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return ps, nil
}

// RevokePersonSession ends the session; revoking again keeps the first time.
func (s *Store) RevokePersonSession(ctx context.Context, hash []byte, at time.Time) error {
	if at.IsZero() {
		return warden.Errorf(warden.EInvalid, "revoking a session needs a time")
	}
	n, err := s.exec(ctx, s.write, `UPDATE person_sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE hash = ?`, unixNanos(at), hash)
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "session not found")
	}
	return nil
}

// LivePersonSessions returns the email's sessions that have not expired or been revoked at now.
func (s *Store) LivePersonSessions(ctx context.Context, email string, now time.Time) ([]*warden.PersonSession, error) {
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT `+personSessionColumns+` FROM person_sessions
		WHERE email = ? AND expires_at > ? AND revoked_at IS NULL ORDER BY created_at`), email, boundNanos(now))
	if err != nil {
		return nil, storeError(err)
	}
	defer rows.Close()
	var out []*warden.PersonSession
	for rows.Next() {
		ps, err := scanPersonSession(rows)
		if err != nil {
			return nil, storeError(err)
		}
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(err)
	}
	return out, nil
}

func scanSignInFlow(row scanner) (*warden.SignInFlow, error) {
	var f warden.SignInFlow
	var data string
	if err := row.Scan(&f.Hash, &f.Kind, &data, timeColumn{&f.ExpiresAt}); err != nil {
		return nil, err
	}
	f.Data = []byte(data)
	return &f, nil
}

func flowResult(f *warden.SignInFlow, err error) (*warden.SignInFlow, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "sign-in not found or expired")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return f, nil
}

// CreateSignInFlow stores a step of a sign-in, deleting the steps expired at now.
func (s *Store) CreateSignInFlow(ctx context.Context, f *warden.SignInFlow, now time.Time) error {
	if _, err := s.exec(ctx, s.write, `DELETE FROM sign_in_flows WHERE expires_at <= ?`, boundNanos(now)); err != nil {
		return storeError(err)
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO sign_in_flows (hash, kind, data, expires_at) VALUES (?, ?, ?, ?)`,
		f.Hash, f.Kind, string(f.Data), unixNanos(f.ExpiresAt))
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "a sign-in step with this secret already exists")
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// SignInFlow returns a step that has not expired at now.
func (s *Store) SignInFlow(ctx context.Context, hash []byte, kind string, now time.Time) (*warden.SignInFlow, error) {
	row := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT hash, kind, data, expires_at FROM sign_in_flows WHERE hash = ? AND kind = ? AND expires_at > ?`),
		hash, kind, boundNanos(now))
	return flowResult(scanSignInFlow(row))
}

// UpdateSignInFlow replaces the data of a step that has not expired at now.
func (s *Store) UpdateSignInFlow(ctx context.Context, hash []byte, kind string, data []byte, now time.Time) error {
	n, err := s.exec(ctx, s.write, `UPDATE sign_in_flows SET data = ? WHERE hash = ? AND kind = ? AND expires_at > ?`,
		string(data), hash, kind, boundNanos(now))
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.ENotFound, "sign-in not found or expired")
	}
	return nil
}

// TakeSignInFlow deletes a step that has not expired at now and returns it, in one statement.
func (s *Store) TakeSignInFlow(ctx context.Context, hash []byte, kind string, now time.Time) (*warden.SignInFlow, error) {
	row := s.write.QueryRowContext(ctx, s.dialect.rebind(`DELETE FROM sign_in_flows WHERE hash = ? AND kind = ? AND expires_at > ? RETURNING hash, kind, data, expires_at`),
		hash, kind, boundNanos(now))
	return flowResult(scanSignInFlow(row))
}
