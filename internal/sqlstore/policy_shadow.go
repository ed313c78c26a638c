package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

const policyShadowColumns = `version, files, base, created_by, created_at, comment`

// PutPolicyShadow makes ps the candidate policy set, ending any other, as one more than the
// newest version ever stored, and sets ps.Version.
func (s *Store) PutPolicyShadow(ctx context.Context, ps *warden.PolicyShadow) error {
	for name, text := range ps.Files {
		if !utf8.ValidString(name) || !utf8.ValidString(text) {
			return warden.Errorf(warden.EInvalid, "policy file %q is not UTF-8 text", name)
		}
	}
	files, err := jsonText(ps.Files)
	if err != nil {
		return storeError(err)
	}
	var version int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Two puts at once must not both take the same next version.
		if err := s.lockTable(ctx, tx, "policy_shadows"); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM policy_shadows`).Scan(&version); err != nil {
			return storeError(err)
		}
		if _, err := s.exec(ctx, tx, `UPDATE policy_shadows SET ended = ? WHERE ended = ?`, true, false); err != nil {
			return storeError(err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO policy_shadows (`+policyShadowColumns+`, ended) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			version, files, ps.Base, ps.CreatedBy, unixNanos(ps.CreatedAt), ps.Comment, false)
		if err != nil {
			return storeError(err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ps.Version = version
	return nil
}

// PolicyShadow returns the candidate policy set.
func (s *Store) PolicyShadow(ctx context.Context) (*warden.PolicyShadow, error) {
	var ps warden.PolicyShadow
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+policyShadowColumns+` FROM policy_shadows WHERE ended = ? ORDER BY version DESC LIMIT 1`), false).
		Scan(&ps.Version, jsonColumn{&ps.Files}, &ps.Base, &ps.CreatedBy, timeColumn{&ps.CreatedAt}, &ps.Comment)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "no shadow policy set is applied")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &ps, nil
}

// EndPolicyShadow ends the candidate policy set if it is still version.
func (s *Store) EndPolicyShadow(ctx context.Context, version int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTable(ctx, tx, "policy_shadows"); err != nil {
			return err
		}
		var current int64
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT version FROM policy_shadows WHERE ended = ? ORDER BY version DESC LIMIT 1`), false).Scan(&current)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return warden.Errorf(warden.ENotFound, "no shadow policy set is applied")
		case err != nil:
			return storeError(err)
		case current != version:
			return warden.Errorf(warden.EConflict, "the shadow policy set is version %d, not %d: someone applied another in between", current, version)
		}
		if _, err := s.exec(ctx, tx, `UPDATE policy_shadows SET ended = ? WHERE version = ?`, true, version); err != nil {
			return storeError(err)
		}
		return nil
	})
}
