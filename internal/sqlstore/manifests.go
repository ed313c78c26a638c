package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/wardenhq/warden"
)

var _ warden.ToolManifestStore = (*Store)(nil)

const manifestColumns = `tool, name, state, digest, manifest, held_digest, held_manifest, diff, findings, first_seen,
	accepted_by, accepted_reason`

func scanManifest(row scanner) (*warden.ToolManifest, error) {
	var m warden.ToolManifest
	var manifest, held, diff, findings string
	err := row.Scan(&m.Tool, &m.Name, &m.State, &m.Digest, &manifest, &m.HeldDigest, &held, &diff, &findings,
		timeColumn{&m.FirstSeen}, &m.AcceptedBy, &m.AcceptedReason)
	if err != nil {
		return nil, err
	}
	m.Manifest, m.HeldManifest, m.Diff, m.Findings = rawOrNil(manifest), rawOrNil(held), rawOrNil(diff), rawOrNil(findings)
	return &m, nil
}

// rawOrNil is a stored JSON text, nil for "".
func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// ToolManifests lists the manifests of one server, or of every server, by server then name.
func (s *Store) ToolManifests(ctx context.Context, tool string) ([]*warden.ToolManifest, error) {
	q, args := `SELECT `+manifestColumns+` FROM tool_manifests ORDER BY tool, name`, []any(nil)
	if tool != "" {
		q, args = `SELECT `+manifestColumns+` FROM tool_manifests WHERE tool = ? ORDER BY name`, []any{tool}
	}
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanManifest)
}

// PutToolManifest stores a manifest, replacing the one of the same server and name.
func (s *Store) PutToolManifest(ctx context.Context, m *warden.ToolManifest) error {
	return s.putToolManifest(ctx, s.write, m)
}

// UpdateToolManifests reads a server's manifests and stores what fn returns, in one
// transaction that holds the server's tools row for update (PostgreSQL) or the one writer
// (SQLite), so updates of one server's manifests take turns across replicas.
func (s *Store) UpdateToolManifests(ctx context.Context, tool string, fn func([]*warden.ToolManifest) ([]*warden.ToolManifest, error)) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT name FROM tools WHERE name = ?`+s.dialect.ForUpdate), tool).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return warden.Errorf(warden.ENotFound, "tool %q not found", tool)
		}
		if err != nil {
			return storeError(err)
		}
		rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT `+manifestColumns+` FROM tool_manifests WHERE tool = ? ORDER BY name`), tool)
		if err != nil {
			return storeError(err)
		}
		current, err := collect(rows, scanManifest)
		if err != nil {
			return err
		}
		puts, err := fn(current)
		if err != nil {
			return err
		}
		for _, m := range puts {
			if m.Tool != tool {
				return warden.Errorf(warden.EInvalid, "tool manifest of %q in an update of %q", m.Tool, tool)
			}
			if err := s.putToolManifest(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) putToolManifest(ctx context.Context, q querier, m *warden.ToolManifest) error {
	if m.Tool == "" || m.Name == "" {
		return warden.Errorf(warden.EInvalid, "a tool manifest needs a tool and a name")
	}
	switch m.State {
	case warden.ManifestPinned, warden.ManifestHeld, warden.ManifestRemoved:
	default:
		return warden.Errorf(warden.EInvalid, "tool manifest state %q: want pinned, held or removed", m.State)
	}
	_, err := s.exec(ctx, q, `INSERT INTO tool_manifests (`+manifestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tool, name) DO UPDATE SET state = excluded.state, digest = excluded.digest,
			manifest = excluded.manifest, held_digest = excluded.held_digest, held_manifest = excluded.held_manifest,
			diff = excluded.diff, findings = excluded.findings, first_seen = excluded.first_seen,
			accepted_by = excluded.accepted_by, accepted_reason = excluded.accepted_reason`,
		m.Tool, m.Name, m.State, m.Digest, string(m.Manifest), m.HeldDigest, string(m.HeldManifest), string(m.Diff),
		string(m.Findings), unixNanos(m.FirstSeen), m.AcceptedBy, m.AcceptedReason)
	if err != nil {
		return storeError(err)
	}
	return nil
}

// DeleteToolManifests forgets every manifest of a server.
func (s *Store) DeleteToolManifests(ctx context.Context, tool string) error {
	if _, err := s.exec(ctx, s.write, `DELETE FROM tool_manifests WHERE tool = ?`, tool); err != nil {
		return storeError(err)
	}
	return nil
}
