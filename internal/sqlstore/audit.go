package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// How many events one search returns when the filter sets no limit, and at most.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// The columns besides seq, hash and body are copies of the fields that AuditFilter selects on,
// so that a search can use an index; body is the event's canonical encoding, which hash covers.
// Only body and hash are trusted: verification compares every copy with its body
// (warden.AuditIndexOf), so a copy changed to hide an event from a search is a break it names.
const auditColumns = `seq, id, time, type, actor_id, actor_name, tool, action, effect, session_id, on_behalf_of, risk, hash, body`

// insertRows is how many events one execution of the largest prepared insert writes: a
// multi-row INSERT costs SQLite one statement execution for the lot, which on the append path,
// where the writer's time per event bounds the log's throughput, is a third of the cost per
// event. It is a power of two: the rest of a batch goes through the prepared inserts of the
// powers of two below it.
const insertRows = 16

// insertSQL is an INSERT of n events.
func insertSQL(n int) string {
	row := `(?` + strings.Repeat(`, ?`, strings.Count(auditColumns, ",")) + `)`
	return `INSERT INTO audit_events (` + auditColumns + `) VALUES ` + row + strings.Repeat(`, `+row, n-1)
}

// checkEvent refuses what can never be stored, before a transaction begins.
func checkEvent(ev *warden.AuditEvent) error {
	if ev == nil {
		return warden.Errorf(warden.EInvalid, "audit batch holds a nil event")
	}
	if ev.Time.IsZero() {
		return warden.Errorf(warden.EInvalid, "audit event %q has no time", ev.ID)
	}
	return nil
}

// chained is an event as it goes into the chain: its seq, prev_hash, canonical encoding and hash.
type chained struct {
	seq        int64
	prev, hash string
	body       []byte
}

// chain fixes ev's place in the log after the event with seq prevSeq and hash prev.
func chain(ev *warden.AuditEvent, prevSeq int64, prev string) (chained, error) {
	c := *ev
	c.Seq = prevSeq + 1
	c.PrevHash = prev
	c.Time = ev.Time.UTC()
	body, err := warden.AuditCanonical(&c)
	if err != nil {
		return chained{}, warden.WrapError(warden.EInvalid, "audit event cannot be encoded", err)
	}
	return chained{seq: c.Seq, prev: prev, hash: warden.AuditHash(body), body: body}, nil
}

// unplaced is an event encoded before its place in the chain is known: its canonical encoding
// at seq 0 with no predecessor, cut where the seq goes. Encoding is most of the work of chaining
// an event, and this way it is done before the transaction rather than while it holds the
// log's lock.
type unplaced struct {
	prefix, rest []byte // canonical = prefix + seq + rest, with prev_hash before rest's last '}'
}

// encodeUnplaced encodes ev for place. ok is false if the encoding does not have the shape
// place relies on; the event is then encoded whole under the lock.
func encodeUnplaced(ev *warden.AuditEvent) (u unplaced, ok bool, err error) {
	c := *ev
	c.Seq, c.PrevHash, c.Hash = 0, "", ""
	c.Time = ev.Time.UTC()
	body, err := warden.AuditCanonical(&c)
	if err != nil {
		return u, false, warden.WrapError(warden.EInvalid, "audit event cannot be encoded", err)
	}
	// The body begins {"schema_version":N,"id":"…","seq":0, — the id a JSON string whose end
	// is its first unescaped quote.
	head := `{"schema_version":` + strconv.Itoa(c.SchemaVersion) + `,"id":"`
	if !bytes.HasPrefix(body, []byte(head)) || body[len(body)-1] != '}' {
		return u, false, nil
	}
	i := len(head)
	for i < len(body) && body[i] != '"' {
		if body[i] == '\\' {
			i++
		}
		i++
	}
	const seq = `","seq":`
	if !bytes.HasPrefix(body[i:], []byte(seq+"0,")) {
		return u, false, nil
	}
	i += len(seq)
	return unplaced{prefix: body[:i], rest: body[i+1:]}, true, nil
}

// encoded is an event checked and encoded ahead of its append: what EncodeAuditEvent returns.
type encoded struct {
	u         unplaced
	placeable bool
}

// EncodeAuditEvent does the part of appending ev that does not depend on its place in the log,
// checking and encoding it, so that a caller can do it on its own goroutine before handing ev
// to AppendEncodedAuditEvents: the audit log's appenders do it in parallel while its one
// writer commits the batch before theirs. It returns nil for an event it cannot encode, which
// AppendEncodedAuditEvents then refuses as AppendAuditEvents would.
func (s *Store) EncodeAuditEvent(ev *warden.AuditEvent) any {
	if checkEvent(ev) != nil {
		return nil
	}
	u, ok, err := encodeUnplaced(ev)
	if err != nil {
		return nil
	}
	return &encoded{u: u, placeable: ok}
}

// encodeAll encodes what of a batch was not encoded ahead, on as many cores as there are:
// encoding is the part of an append that parallelises, and the group commit's writer would
// otherwise do it alone.
func encodeAll(evs []*warden.AuditEvent, ahead []any) ([]encoded, error) {
	out := make([]encoded, len(evs))
	errs := make([]error, len(evs))
	encode := func(from, to int) {
		for i := from; i < to; i++ {
			if e, ok := ahead[i].(*encoded); ok && e != nil {
				out[i] = *e
			} else if errs[i] = checkEvent(evs[i]); errs[i] == nil {
				out[i].u, out[i].placeable, errs[i] = encodeUnplaced(evs[i])
			}
		}
	}
	todo := 0
	for _, e := range ahead {
		if e, ok := e.(*encoded); !ok || e == nil {
			todo++
		}
	}
	workers := min(runtime.GOMAXPROCS(0), todo/16+1)
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { encode(w*len(evs)/workers, (w+1)*len(evs)/workers) })
	}
	encode(0, len(evs)/workers)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// place is chain for an event encoded by encodeUnplaced. prev is a hash this store wrote, which
// is lowercase hex and goes into JSON as it is.
func (u unplaced) place(prevSeq int64, prev string) chained {
	seq := prevSeq + 1
	body := make([]byte, 0, len(u.prefix)+len(u.rest)+len(prev)+32)
	body = append(body, u.prefix...)
	body = strconv.AppendInt(body, seq, 10)
	body = append(body, u.rest[:len(u.rest)-1]...)
	if prev != "" {
		body = append(body, `,"prev_hash":"`...)
		body = append(body, prev...)
		body = append(body, '"')
	}
	body = append(body, '}')
	return chained{seq: seq, prev: prev, hash: warden.AuditHash(body), body: body}
}

// isHex reports whether s is lowercase hex, which place may put into JSON unescaped.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// AppendAuditEvents stores evs in order in one transaction that extends the chain and, once it
// has committed, sets the Seq, PrevHash and Hash of each. A batch that fails leaves evs as
// they were.
func (s *Store) AppendAuditEvents(ctx context.Context, evs []*warden.AuditEvent) error {
	return s.AppendEncodedAuditEvents(ctx, evs, make([]any, len(evs)))
}

// AppendEncodedAuditEvents is AppendAuditEvents for events of which some were encoded ahead by
// EncodeAuditEvent: encoded[i] is what it returned for evs[i], unchanged since, or nil.
func (s *Store) AppendEncodedAuditEvents(ctx context.Context, evs []*warden.AuditEvent, encoded []any) error {
	if len(evs) == 0 {
		return nil
	}
	if len(encoded) != len(evs) {
		return warden.Errorf(warden.EInternal, "audit batch of %d events has %d encodings", len(evs), len(encoded))
	}
	enc, err := encodeAll(evs, encoded)
	if err != nil {
		return err
	}
	links := make([]chained, len(evs))
	args := make([]any, 0, insertRows*14)
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The head is read and extended under the lock, so appends from every replica take
		// turns: each sees the last one's head, and seqs commit in order, which a reader that
		// follows the log by seq relies on.
		if err := s.lockTable(ctx, tx, "audit_events"); err != nil {
			return err
		}
		seq, hash, err := scanHead(tx.StmtContext(ctx, s.head).QueryRowContext(ctx))
		if err != nil {
			return err
		}
		if seq > 0 && hash == "" {
			if seq, hash, err = s.chainUnhashed(ctx, tx); err != nil {
				return err
			}
		}
		for i, ev := range evs {
			var link chained
			if enc[i].placeable && isHex(hash) {
				link = enc[i].u.place(seq, hash)
			} else if link, err = chain(ev, seq, hash); err != nil {
				return err
			}
			links[i] = link
			seq, hash = link.seq, link.hash
		}
		// Full groups of insertRows, then at most one group of each smaller power of two.
		inserts := make([]*sql.Stmt, len(s.insertEvents))
		for start := 0; start < len(evs); {
			k := len(s.insertEvents) - 1
			for 1<<k > len(evs)-start {
				k--
			}
			end := start + 1<<k
			args = args[:0]
			for i := start; i < end; i++ {
				args = append(args, auditArgs(evs[i], links[i])...)
			}
			if inserts[k] == nil {
				inserts[k] = tx.StmtContext(ctx, s.insertEvents[k])
			}
			_, err := inserts[k].ExecContext(ctx, args...)
			if err != nil && s.dialect.IsUniqueViolation(err) {
				return warden.Errorf(warden.EConflict, "an audit event of this batch already exists")
			}
			if err != nil {
				return storeError(err)
			}
			start = end
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, ev := range evs {
		ev.Seq, ev.PrevHash, ev.Hash = links[i].seq, links[i].prev, links[i].hash
	}
	return nil
}

func auditArgs(ev *warden.AuditEvent, link chained) []any {
	ix := warden.AuditIndexOf(ev)
	return []any{link.seq, ix.ID, unixNanos(ev.Time), ix.Type, ix.ActorID, ix.ActorName, ix.Tool,
		ix.Action, ix.Effect, ix.SessionID, ix.OnBehalfOf, ix.Risk,
		link.hash, string(link.body)}
}

const headSQL = `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`

func (s *Store) headTx(ctx context.Context, q querier) (int64, string, error) {
	return scanHead(q.QueryRowContext(ctx, headSQL))
}

func scanHead(row *sql.Row) (int64, string, error) {
	var seq int64
	var hash string
	err := row.Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", storeError(err)
	}
	return seq, hash, nil
}

// chainUnhashed brings events written before the log was a hash chain into it, once: they are
// numbered 1, 2, 3, … in the order they were written (their seqs could have gaps) and hashed.
// Every unhashed event precedes every hashed one, so renumbering downwards in seq order never
// collides with a seq still in use.
func (s *Store) chainUnhashed(ctx context.Context, tx *sql.Tx) (int64, string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, body FROM audit_events WHERE hash = '' ORDER BY seq`)
	if err != nil {
		return 0, "", storeError(err)
	}
	type old struct {
		seq  int64
		body string
	}
	var olds []old
	for rows.Next() {
		var o old
		if err := rows.Scan(&o.seq, &o.body); err != nil {
			rows.Close()
			return 0, "", storeError(err)
		}
		olds = append(olds, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, "", storeError(err)
	}
	var seq int64
	var hash string
	for _, o := range olds {
		var ev warden.AuditEvent
		if err := json.Unmarshal([]byte(o.body), &ev); err != nil {
			return 0, "", warden.WrapError(warden.EInternal, "an audit event written before the hash chain cannot be read", err)
		}
		link, err := chain(&ev, seq, hash)
		if err != nil {
			return 0, "", err
		}
		if _, err := s.exec(ctx, tx, `UPDATE audit_events SET seq = ?, hash = ?, risk = ?, body = ? WHERE seq = ?`,
			link.seq, link.hash, ev.Target.Risk.Level(), string(link.body), o.seq); err != nil {
			return 0, "", storeError(err)
		}
		seq, hash = link.seq, link.hash
	}
	return seq, hash, nil
}

// AuditHead returns the seq and hash of the newest event.
func (s *Store) AuditHead(ctx context.Context) (int64, string, error) {
	return s.headTx(ctx, s.read)
}

// auditWhere is the condition of a search's filter, without its cursors.
func (s *Store) auditWhere(f warden.AuditFilter) ([]string, []any) {
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
	// The conditions of the partial indexes (migration 0003), written as the indexes have them,
	// so that the query planner sees the index applies.
	if f.Effect != "" && f.Effect != warden.EffectAllow {
		match(`effect != 'allow'`)
	}
	if f.OnBehalfOf != "" {
		match(`on_behalf_of != ''`)
	}
	if f.Resource != "" {
		match(s.dialect.TargetResource+` = ?`, f.Resource)
	}
	if level := f.MinRisk.Level(); level > 0 {
		match(`risk >= ?`, level)
	}
	if !f.Since.IsZero() {
		match(`time >= ?`, boundNanos(f.Since))
	}
	if !f.Until.IsZero() {
		match(`time < ?`, boundNanos(f.Until))
	}
	return where, args
}

// CountAuditEvents counts the events f's filter matches, up to upTo (the scan stops there).
func (s *Store) CountAuditEvents(ctx context.Context, f warden.AuditFilter, upTo int64) (int64, error) {
	where, args := s.auditWhere(f)
	q := `SELECT 1 FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	var n int64
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT COUNT(*) FROM (`+q+` LIMIT ?) AS matching`), append(args, upTo)...).Scan(&n)
	if err != nil {
		return 0, storeError(err)
	}
	return n, nil
}

// AuditEvents returns events matching f, in log order. Since is inclusive and Until exclusive,
// so that consecutive windows neither overlap nor leave a gap.
func (s *Store) AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error) {
	where, args := s.auditWhere(f)
	if f.AfterSeq > 0 {
		where, args = append(where, `seq > ?`), append(args, f.AfterSeq)
	}
	if f.BeforeSeq > 0 {
		where, args = append(where, `seq < ?`), append(args, f.BeforeSeq)
	}
	q := `SELECT seq, hash, body FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	order := ` ORDER BY seq`
	if f.Newest {
		order = ` ORDER BY seq DESC`
	}
	q += order + ` LIMIT ?`
	args = append(args, auditLimit(f.Limit))

	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(q), args...)
	if err != nil {
		return nil, storeError(err)
	}
	evs, err := collect(rows, scanAuditEvent)
	if f.Newest {
		slices.Reverse(evs)
	}
	return evs, err
}

func scanAuditEvent(row scanner) (*warden.AuditEvent, error) {
	var seq int64
	var hash, body string
	if err := row.Scan(&seq, &hash, &body); err != nil {
		return nil, err
	}
	var ev warden.AuditEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return nil, err
	}
	// The columns say where the event is in the log; verify is what compares them with the
	// body. An event written before the chain read back here before its first append after
	// the upgrade still has seq 0 in its body.
	ev.Seq, ev.Hash = seq, hash
	return &ev, nil
}

// ScanAuditRecords calls fn with each record after seq after, in seq order, with the copies
// kept for search, which verification checks against the body. The read is one query, so a
// scan of the whole log sees one consistent state of it.
func (s *Store) ScanAuditRecords(ctx context.Context, after int64, fn func(*warden.AuditRecord) error) error {
	rows, err := s.read.QueryContext(ctx, s.dialect.rebind(`SELECT `+auditColumns+` FROM audit_events WHERE seq > ? ORDER BY seq`), after)
	if err != nil {
		return storeError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r warden.AuditRecord
		var ix warden.AuditIndex
		var nanos sql.NullInt64 // unixNanos stores the zero time as NULL
		if err := rows.Scan(&r.Seq, &ix.ID, &nanos, &ix.Type, &ix.ActorID, &ix.ActorName, &ix.Tool, &ix.Action,
			&ix.Effect, &ix.SessionID, &ix.OnBehalfOf, &ix.Risk, &r.Hash, &r.Body); err != nil {
			return storeError(err)
		}
		ix.Time = nanos.Int64
		r.Index = &ix
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return storeError(err)
	}
	return nil
}

// PruneAuditEvents deletes the events up to and including seq through, the size of a stored
// checkpoint, keeping at least the newest event so that the chain always has a head to extend.
func (s *Store) PruneAuditEvents(ctx context.Context, through int64) (int, error) {
	var n int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockTable(ctx, tx, "audit_events"); err != nil {
			return err
		}
		var anchors int
		if err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT count(*) FROM audit_checkpoints WHERE size = ?`), through).
			Scan(&anchors); err != nil {
			return storeError(err)
		}
		if anchors == 0 {
			return warden.Errorf(warden.EInvalid, "no checkpoint of size %d anchors a prune there", through)
		}
		head, _, err := s.headTx(ctx, tx)
		if err != nil {
			return err
		}
		if through >= head {
			return warden.Errorf(warden.EInvalid, "a prune through seq %d would leave no event after it (the head is %d)", through, head)
		}
		n, err = s.exec(ctx, tx, `DELETE FROM audit_events WHERE seq <= ?`, through)
		if err != nil {
			return storeError(err)
		}
		return nil
	})
	return n, err
}

// AddAuditCheckpoint stores c unless a checkpoint of its size is already stored.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c *warden.AuditCheckpoint) error {
	if c.Size <= 0 || c.Hash == "" || c.Note == "" || c.Time.IsZero() {
		return warden.Errorf(warden.EInvalid, "a checkpoint needs a size above 0, a hash, a note and a time")
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO audit_checkpoints (size, hash, time, note) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING`,
		c.Size, c.Hash, unixNanos(c.Time), c.Note)
	if err != nil {
		return storeError(err)
	}
	return nil
}

// AuditCheckpoints returns every checkpoint, by size.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]*warden.AuditCheckpoint, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT size, hash, time, note FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, func(row scanner) (*warden.AuditCheckpoint, error) {
		var c warden.AuditCheckpoint
		if err := row.Scan(&c.Size, &c.Hash, timeColumn{&c.Time}, &c.Note); err != nil {
			return nil, err
		}
		return &c, nil
	})
}

// LatestAuditCheckpoint returns the largest checkpoint of at most atMost events (0: any).
func (s *Store) LatestAuditCheckpoint(ctx context.Context, atMost int64) (*warden.AuditCheckpoint, error) {
	if atMost <= 0 {
		atMost = math.MaxInt64
	}
	var c warden.AuditCheckpoint
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT size, hash, time, note FROM audit_checkpoints WHERE size <= ? ORDER BY size DESC LIMIT 1`), atMost).
		Scan(&c.Size, &c.Hash, timeColumn{&c.Time}, &c.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, warden.Errorf(warden.ENotFound, "no checkpoint has been signed yet")
	}
	if err != nil {
		return nil, storeError(err)
	}
	return &c, nil
}

// CreateAuditKey stores a checkpoint key.
func (s *Store) CreateAuditKey(ctx context.Context, k *warden.AuditKey) error {
	if k.Name == "" || len(k.Public) == 0 || len(k.Sealed) == 0 || k.CreatedAt.IsZero() {
		return warden.Errorf(warden.EInvalid, "a checkpoint key needs a name, both halves and a creation time")
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO audit_keys (name, public_key, sealed_private_key, created_at) VALUES (?, ?, ?, ?)`,
		k.Name, k.Public, k.Sealed, unixNanos(k.CreatedAt))
	if err != nil && s.dialect.IsUniqueViolation(err) {
		return warden.Errorf(warden.EConflict, "checkpoint key %q already exists", k.Name)
	}
	if err != nil {
		return storeError(err)
	}
	return nil
}

// AuditKeys returns every checkpoint key, oldest first.
func (s *Store) AuditKeys(ctx context.Context) ([]*warden.AuditKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT name, public_key, sealed_private_key, created_at FROM audit_keys ORDER BY created_at, name`)
	if err != nil {
		return nil, storeError(err)
	}
	return collect(rows, func(row scanner) (*warden.AuditKey, error) {
		var k warden.AuditKey
		if err := row.Scan(&k.Name, &k.Public, &k.Sealed, timeColumn{&k.CreatedAt}); err != nil {
			return nil, err
		}
		return &k, nil
	})
}

// AuditSinkCursor returns the seq of the last event the named sink acknowledged, 0 if none.
func (s *Store) AuditSinkCursor(ctx context.Context, sink string) (int64, error) {
	var seq int64
	err := s.read.QueryRowContext(ctx, s.dialect.rebind(`SELECT seq FROM audit_sink_cursors WHERE name = ?`), sink).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, storeError(err)
	}
	return seq, nil
}

// SaveAuditSinkCursor records that the named sink acknowledged every event up to seq.
func (s *Store) SaveAuditSinkCursor(ctx context.Context, sink string, seq int64) error {
	if sink == "" || seq < 0 {
		return warden.Errorf(warden.EInvalid, "a sink cursor needs a sink name and a seq of 0 or more")
	}
	_, err := s.exec(ctx, s.write, `INSERT INTO audit_sink_cursors (name, seq, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at`,
		sink, seq, time.Now().UnixNano())
	if err != nil {
		return storeError(err)
	}
	return nil
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
