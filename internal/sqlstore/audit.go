package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// How many events one search returns when the filter sets no limit, and at most.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// The columns besides body are copies of the fields that AuditFilter selects on, so that a search
// can use an index; body is the event itself.
const auditColumns = `id, time, type, actor_id, actor_name, tool, action, effect, session_id, on_behalf_of, body`

const insertEventSQL = `INSERT INTO audit_events (` + auditColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`

func auditArgs(ev *warden.AuditEvent) ([]any, error) {
	if ev == nil {
		return nil, warden.Errorf(warden.EInvalid, "audit batch holds a nil event")
	}
	if ev.Time.IsZero() {
		return nil, warden.Errorf(warden.EInvalid, "audit event %q has no time", ev.ID)
	}
	// Seq is not known until the row is in: the body holds 0 and the seq column the real one.
	body := *ev
	body.Seq = 0
	body.Time = ev.Time.UTC()
	text, err := jsonText(&body)
	if err != nil {
		return nil, warden.WrapError(warden.EInvalid, "audit event cannot be encoded", err)
	}
	return []any{ev.ID, unixNanos(ev.Time), ev.Type, ev.Actor.ID, ev.Actor.Name, ev.Target.Tool, ev.Target.Action,
		ev.Decision.Effect, ev.Actor.SessionID, ev.Actor.OnBehalfOf, text}, nil
}

// AppendAuditEvents stores evs in order in one transaction and, once it has committed, sets the
// Seq of each.
func (s *Store) AppendAuditEvents(ctx context.Context, evs []*warden.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	rows := make([][]any, len(evs))
	for i, ev := range evs {
		args, err := auditArgs(ev)
		if err != nil {
			return err
		}
		rows[i] = args
	}
	seqs := make([]int64, len(evs))
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Appends take turns so that they commit in the order of the Seqs they were given: a
		// reader that has seen Seq n never later finds an event below n appear.
		if err := s.lockTable(ctx, tx, "audit_events"); err != nil {
			return err
		}
		insert := tx.StmtContext(ctx, s.insertEvent)
		for i, args := range rows {
			err := insert.QueryRowContext(ctx, args...).Scan(&seqs[i])
			if err != nil && s.dialect.IsUniqueViolation(err) {
				return warden.Errorf(warden.EConflict, "audit event %q already exists", evs[i].ID)
			}
			if err != nil {
				return storeError(err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, ev := range evs {
		ev.Seq = seqs[i]
	}
	return nil
}

// AuditEvents returns events matching f, in log order. Since is inclusive and Until exclusive,
// so that consecutive windows neither overlap nor leave a gap.
func (s *Store) AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error) {
	var where []string
	var args []any
	match := func(cond string, vals ...any) {
		where = append(where, cond)
		args = append(args, vals...)
	}
	if f.Agent != "" {
		match(`(actor_id = ? OR actor_name = ?)`, f.Agent, f.Agent)
	}
	if prefix, ok := strings.CutSuffix(f.Type, "*"); ok {
		if prefix != "" {
			match(`type >= ?`, prefix)
		}
		if end, ok := prefixEnd(prefix); ok {
			match(`type < ?`, end)
		}
	} else if f.Type != "" {
		match(`type = ?`, f.Type)
	}
	for _, c := range []struct{ column, value string }{
		{"effect", f.Effect}, {"tool", f.Tool}, {"action", f.Action},
		{"session_id", f.SessionID}, {"on_behalf_of", f.OnBehalfOf},
	} {
		if c.value != "" {
			match(c.column+` = ?`, c.value)
		}
	}
	if !f.Since.IsZero() {
		match(`time >= ?`, boundNanos(f.Since))
	}
	if !f.Until.IsZero() {
		match(`time < ?`, boundNanos(f.Until))
	}
	if f.AfterSeq > 0 {
		match(`seq > ?`, f.AfterSeq)
	}
	q := `SELECT seq, body FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY seq LIMIT ?`
	args = append(args, auditLimit(f.Limit))

	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, scanAuditEvent)
}

func scanAuditEvent(row scanner) (*warden.AuditEvent, error) {
	var seq int64
	var body string
	if err := row.Scan(&seq, &body); err != nil {
		return nil, err
	}
	var ev warden.AuditEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return nil, err
	}
	ev.Seq = seq
	return &ev, nil
}

func auditLimit(n int) int {
	switch {
	case n <= 0:
		return defaultAuditLimit
	case n > maxAuditLimit:
		return maxAuditLimit
	}
	return n
}

// prefixEnd returns the least string above, in byte order, every string that starts with
// prefix, so that a prefix match is an index range. ok is false when there is no such string:
// every string from prefix on starts with it. Byte order is code point order in UTF-8, and it is
// the order of SQLite's BINARY and PostgreSQL's "C" collation, which the type column uses.
func prefixEnd(prefix string) (end string, ok bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		last := prefix[len(prefix)-1]
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.RuneError && size == 1:
			// Not UTF-8; the byte itself is what compares.
			if last < 0xff {
				return prefix + string([]byte{last + 1}), true
			}
		case r == utf8.MaxRune:
			// Nothing follows it, so the bound moves to the rune before.
		case r+1 == 0xd800:
			// Surrogates are not characters; the next one is past them.
			return prefix + string(rune(0xe000)), true
		default:
			return prefix + string(r+1), true
		}
	}
	return "", false
}
