package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// policySetColumns leaves out files, which PolicySets does not return and which may be large.
const policySetColumns = `version, created_by, created_at, comment`

func scanPolicySet(row scanner) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	if err := row.Scan(&ps.Version, &ps.CreatedBy, timeColumn{&ps.CreatedAt}, &ps.Comment); err != nil {
		return nil, err
	}
	return &ps, nil
}

func scanPolicySetWithFiles(row scanner) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	err := row.Scan(&ps.Version, &ps.CreatedBy, timeColumn{&ps.CreatedAt}, &ps.Comment, jsonColumn{&ps.Files})
	if err != nil {
		return nil, err
	}
	return &ps, nil
}

// CreatePolicySet stores ps as the latest version plus one and sets ps.Version. If ifLatest is
// not -1 and the latest version (0 when there is none) is not ifLatest, it stores nothing and
// returns EConflict.
func (s *Store) CreatePolicySet(ctx context.Context, ps *warden.PolicySet, ifLatest int64) error {
	for name, text := range ps.Files {
		// JSON would turn bytes that are not UTF-8 into U+FFFD, and the policies read back would
		// not be the ones applied.
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
		// Without the lock two concurrent creators could both read the same latest version; one
		// would then fail on the primary key instead of being told about the conflict, or, with
		// ifLatest -1, fail where it should have become the next version.
		if err := s.lockTable(ctx, tx, "policy_sets"); err != nil {
			return err
		}
		var latest int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM policy_sets`).Scan(&latest); err != nil {
			return storeError(err)
		}
		if ifLatest != -1 && latest != ifLatest {
			return warden.Errorf(warden.EConflict, "policy version is %d, not %d: someone applied in between", latest, ifLatest)
		}
		version = latest + 1
		_, err := s.exec(ctx, tx, `INSERT INTO policy_sets (`+policySetColumns+`, files) VALUES (?, ?, ?, ?, ?)`,
			version, ps.CreatedBy, unixNanos(ps.CreatedAt), ps.Comment, files)
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

// PolicySet returns one version with its files; version 0 means the latest.
func (s *Store) PolicySet(ctx context.Context, version int64) (*warden.PolicySet, error) {
	var row *sql.Row
	switch {
	case version < 0:
		return nil, warden.Errorf(warden.EInvalid, "policy version %d does not exist: versions start at 1, and 0 means the latest", version)
	case version == 0:
		row = s.read.QueryRowContext(ctx, `SELECT `+policySetColumns+`, files FROM policy_sets ORDER BY version DESC LIMIT 1`)
	default:
		row = s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT `+policySetColumns+`, files FROM policy_sets WHERE version = ?`),
			version)
	}
	ps, err := scanPolicySetWithFiles(row)
	if errors.Is(err, sql.ErrNoRows) {
		if version == 0 {
			return nil, warden.Errorf(warden.ENotFound, "no policies have been applied")
		}
		return nil, warden.Errorf(warden.ENotFound, "policy version %d not found", version)
	}
	if err != nil {
		return nil, storeError(err)
	}
	return ps, nil
}

// PolicySets lists every version, newest first, without files.
func (s *Store) PolicySets(ctx context.Context) ([]*warden.PolicySet, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+policySetColumns+` FROM policy_sets ORDER BY version DESC`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanPolicySet)
}
