package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

var _ warden.DetectStore = (*Store)(nil)

const detectCursor = "detect"

// AcquireDetectLease takes or renews the detector's lease: the upsert changes the row only when
// holder already holds it or its lease has lapsed, so two replicas never both get a row back.
func (s *Store) AcquireDetectLease(ctx context.Context, holder string, now, expires time.Time) (int64, bool, error) {
	if holder == "" || !expires.After(now) {
		return 0, false, warden.Errorf(warden.EInvalid, "a detector lease names its holder and ends after now")
	}
	var seq int64
	err := s.write.QueryRowContext(ctx, s.dialect.rebind(`INSERT INTO detect_cursor (name, seq, holder, expires_at) VALUES (?, 0, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE detect_cursor.holder = excluded.holder OR detect_cursor.expires_at <= ?
		RETURNING seq`), detectCursor, holder, unixNanos(expires), unixNanos(now)).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, storeError(err)
	}
	return seq, true, nil
}

// SaveDetectState stores baselines and the cursor together, while holder holds the lease.
func (s *Store) SaveDetectState(ctx context.Context, holder string, seq int64, baselines map[string][]byte, now time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE detect_cursor SET seq = ? WHERE name = ? AND holder = ?`, seq, detectCursor, holder)
		if err != nil {
			return storeError(err)
		}
		if n == 0 {
			return warden.Errorf(warden.EConflict, "another replica holds the detector's lease")
		}
		for agent, body := range baselines {
			if _, err := s.exec(ctx, tx, `INSERT INTO detect_baselines (agent, body, updated_at) VALUES (?, ?, ?)
				ON CONFLICT (agent) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`,
				agent, body, unixNanos(now)); err != nil {
				return storeError(err)
			}
		}
		return nil
	})
}

// DetectBaselines returns the baseline bodies of agents, or every one.
func (s *Store) DetectBaselines(ctx context.Context, agents ...string) (map[string][]byte, error) {
	q := `SELECT agent, body FROM detect_baselines`
	if len(agents) > 0 {
		q += ` WHERE agent IN (` + placeholders(len(agents)) + `)`
	}
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), anys(agents)...)
	if err != nil {
		return nil, storeError(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var agent string
		var body []byte
		if err := rows.Scan(&agent, &body); err != nil {
			return nil, storeError(err)
		}
		out[agent] = body
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(err)
	}
	return out, nil
}

// PutDetectHold adds or replaces a hold.
func (s *Store) PutDetectHold(ctx context.Context, h *warden.DetectHold) error {
	if h.Agent == "" || h.Finding == "" {
		return warden.Errorf(warden.EInvalid, "a hold names its agent and finding")
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO detect_holds (agent, tool, action, resource, finding, until) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (agent, tool, action, resource) DO UPDATE SET finding = excluded.finding, until = excluded.until`,
		h.Agent, h.Tool, h.Action, h.Resource, h.Finding, unixNanos(h.Until))
	if err != nil {
		return storeError(err)
	}
	return nil
}

// DetectHolds returns the holds in force at now.
func (s *Store) DetectHolds(ctx context.Context, now time.Time) ([]*warden.DetectHold, error) {
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT agent, tool, action, resource, finding, until FROM detect_holds WHERE until > ? ORDER BY agent, tool, action, resource`), unixNanos(now))
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, func(row scanner) (*warden.DetectHold, error) {
		var h warden.DetectHold
		if err := row.Scan(&h.Agent, &h.Tool, &h.Action, &h.Resource, &h.Finding, timeColumn{&h.Until}); err != nil {
			return nil, err
		}
		return &h, nil
	})
}

// AckDetectFinding records an acknowledgement once.
func (s *Store) AckDetectFinding(ctx context.Context, a *warden.DetectAck) error {
	if a.Finding == "" || a.By == "" || a.Reason == "" {
		return warden.Errorf(warden.EInvalid, "an acknowledgement names its finding, who and why")
	}
	n, err := s.exec(ctx, s.write, `INSERT INTO detect_acks (finding, by_name, reason, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (finding) DO NOTHING`, a.Finding, a.By, a.Reason, unixNanos(a.At))
	if err != nil {
		return storeError(err)
	}
	if n == 0 {
		return warden.Errorf(warden.EConflict, "finding %s is already acknowledged", a.Finding)
	}
	return nil
}

// DetectAcks returns the acknowledgements of findings, in one query.
func (s *Store) DetectAcks(ctx context.Context, findings []string) (map[string]*warden.DetectAck, error) {
	out := map[string]*warden.DetectAck{}
	if len(findings) == 0 {
		return out, nil
	}
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT finding, by_name, reason, created_at FROM detect_acks WHERE finding IN (`+placeholders(len(findings))+`)`), anys(findings)...)
	if err != nil {
		return nil, storeError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a warden.DetectAck
		if err := rows.Scan(&a.Finding, &a.By, &a.Reason, timeColumn{&a.At}); err != nil {
			return nil, storeError(err)
		}
		out[a.Finding] = &a
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(err)
	}
	return out, nil
}
