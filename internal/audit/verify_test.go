package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
)

// TestVerifyNamesTheBreak tampers with the database directly, in each way an intruder with
// write access to it might, and expects verify to name what was done and where.
func TestVerifyNamesTheBreak(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		tamper func(t *testing.T, l *testLog)
		kind   string
		seq    int64
	}{
		{"altered", func(t *testing.T, l *testLog) {
			l.exec(t, `UPDATE audit_events SET body = replace(body, '"effect":"allow"', '"effect":"deny"') WHERE seq = 5`)
		}, audit.BreakAltered, 5},
		{"altered and rehashed", func(t *testing.T, l *testLog) {
			ev := l.body(t, 5)
			ev.Decision.Effect = warden.EffectDeny
			l.rewrite(t, 5, ev)
		}, audit.BreakAltered, 5},
		{"altered to garbage", func(t *testing.T, l *testLog) {
			l.exec(t, `UPDATE audit_events SET body = 'not json' WHERE seq = 7`)
		}, audit.BreakAltered, 7},
		{"copy for search changed", func(t *testing.T, l *testLog) {
			l.exec(t, `UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 5`)
		}, audit.BreakIndex, 5},
		{"deleted", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq = 5`)
		}, audit.BreakDeleted, 5},
		{"deleted two", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq IN (5, 6)`)
		}, audit.BreakDeleted, 5},
		{"deleted and renumbered", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq = 5`)
			l.shift(t, 6, -1)
		}, audit.BreakDeleted, 5},
		{"deleted from the start", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq <= 3`)
		}, audit.BreakDeleted, 1},
		{"inserted and linked", func(t *testing.T, l *testLog) {
			forged := l.body(t, 5)
			l.shift(t, 5, 1)
			prev := l.body(t, 4)
			forged.Seq, forged.PrevHash, forged.ID = 5, hashOf(t, l, 4), "01FORGED"
			forged.Decision.Message = "nothing to see " + prev.ID
			canonical, _ := warden.AuditCanonical(forged)
			l.exec(t, `INSERT INTO audit_events (seq, id, time, type, actor_id, actor_name, tool, action, effect, session_id, on_behalf_of, risk, hash, body)
				VALUES (5, '01FORGED', 0, 'tool.call', '', '', '', '', '', '', '', 0, ?, ?)`, warden.AuditHash(canonical), string(canonical))
		}, audit.BreakInserted, 5},
		{"inserted unlinked", func(t *testing.T, l *testLog) {
			forged := l.body(t, 5)
			l.shift(t, 5, 1)
			forged.Seq, forged.PrevHash, forged.ID = 5, strings.Repeat("0", 64), "01FORGED"
			canonical, _ := warden.AuditCanonical(forged)
			l.exec(t, `INSERT INTO audit_events (seq, id, time, type, actor_id, actor_name, tool, action, effect, session_id, on_behalf_of, risk, hash, body)
				VALUES (5, '01FORGED', 0, 'tool.call', '', '', '', '', '', '', '', 0, ?, ?)`, warden.AuditHash(canonical), string(canonical))
		}, audit.BreakInserted, 5},
		{"reordered neighbours", func(t *testing.T, l *testLog) { l.swap(t, 5, 6) }, audit.BreakReordered, 5},
		{"reordered far apart", func(t *testing.T, l *testLog) { l.swap(t, 3, 8) }, audit.BreakReordered, 3},
		{"truncated below a checkpoint", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq > 7`)
		}, audit.BreakTruncated, 8},
		{"rewritten from an event on", func(t *testing.T, l *testLog) {
			// Change event 3 and recompute every hash after it: the chain is whole again, and
			// only the signed checkpoint at 10 knows.
			ev := l.body(t, 3)
			ev.Decision.Effect = warden.EffectDeny
			prev := l.rewrite(t, 3, ev)
			for seq := int64(4); seq <= 12; seq++ {
				ev := l.body(t, seq)
				ev.PrevHash = prev
				prev = l.rewrite(t, seq, ev)
			}
		}, audit.BreakRewritten, 1},
		{"checkpoint hash changed", func(t *testing.T, l *testLog) {
			l.exec(t, `UPDATE audit_checkpoints SET hash = ? WHERE size = 10`, strings.Repeat("ab", 32))
		}, audit.BreakCheckpoint, 10},
		{"checkpoint signature forged", func(t *testing.T, l *testLog) {
			l.exec(t, `UPDATE audit_checkpoints SET note = replace(note, '10', '11') WHERE size = 10`)
		}, audit.BreakCheckpoint, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newTamperLog(t)
			if r := l.verify(t, nil); !r.OK {
				t.Fatalf("before tampering: %+v", r.Break)
			}
			tt.tamper(t, l)
			r := l.verify(t, nil)
			if r.OK || r.Break.Kind != tt.kind || r.Break.Seq != tt.seq {
				t.Fatalf("verify after %s: %+v; want %s at seq %d", tt.name, r.Break, tt.kind, tt.seq)
			}
			t.Logf("%s: %s", tt.name, r.Break.Message)
		})
	}
}

// newTamperLog writes 12 events with a checkpoint at 10.
func newTamperLog(t *testing.T) *testLog {
	l := openLog(t)
	l.appendN(t, 10)
	if _, err := l.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	l.appendN(t, 2)
	return l
}

func hashOf(t *testing.T, l *testLog, seq int64) string {
	var h string
	if err := l.raw.QueryRow(`SELECT hash FROM audit_events WHERE seq = ?`, seq).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestVerifyExportedCheckpoint keeps a checkpoint outside the database, then lets an intruder
// cover their tracks inside it — removing the stored checkpoints too — and expects the exported
// one to catch them.
func TestVerifyExportedCheckpoint(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		tamper func(t *testing.T, l *testLog)
		kind   string
		seq    int64
	}{
		{"untouched", func(t *testing.T, l *testLog) {}, "", 0},
		{"truncated", func(t *testing.T, l *testLog) {
			l.exec(t, `DELETE FROM audit_events WHERE seq > 8`)
		}, audit.BreakTruncated, 9},
		{"rewritten", func(t *testing.T, l *testLog) {
			ev := l.body(t, 6)
			ev.Decision.Effect = warden.EffectDeny
			prev := l.rewrite(t, 6, ev)
			for seq := int64(7); seq <= 12; seq++ {
				ev := l.body(t, seq)
				ev.PrevHash = prev
				prev = l.rewrite(t, seq, ev)
			}
		}, audit.BreakRewritten, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newTamperLog(t)
			exported, err := l.LatestCheckpoint(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, l)
			l.exec(t, `DELETE FROM audit_checkpoints`)
			if r := l.verify(t, nil); tt.kind != "" && !r.OK {
				t.Fatalf("without the exported checkpoint the tampering should pass unnoticed here: %+v", r.Break)
			}
			r := l.verify(t, []byte(exported.Note))
			if tt.kind == "" {
				if !r.OK || r.Extends != 10 {
					t.Fatalf("verify: %+v %+v", r, r.Break)
				}
				return
			}
			if r.OK || r.Break.Kind != tt.kind || r.Break.Seq != tt.seq {
				t.Fatalf("verify: %+v; want %s at %d", r.Break, tt.kind, tt.seq)
			}
		})
	}
	l := newTamperLog(t)
	if _, err := audit.Verify(t.Context(), l.store, audit.VerifyOptions{Verifiers: l.keys.Verifiers, External: []byte("not a checkpoint\n")}); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a file that is not a checkpoint: %v", err)
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	if r := l.verify(t, nil); !r.OK || r.Events != 0 {
		t.Fatalf("empty log: %+v", r)
	}
}

// TestVerifyProgress: the log's VerifyProgress tells its callback each count of events checked,
// one more each time, ending at the report's count.
func TestVerifyProgress(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	l.appendN(t, 12)
	var seen []int64
	r, err := l.VerifyProgress(context.Background(), func(checked int64) { seen = append(seen, checked) })
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.Events < 12 || len(seen) == 0 || seen[len(seen)-1] != r.Events {
		t.Fatalf("report %+v, progress %v", r, seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != seen[i-1]+1 {
			t.Fatalf("progress %v does not count the events one by one", seen)
		}
	}
}

// records is a Source of the records it holds and no checkpoints.
type records []*warden.AuditRecord

func (rs records) ScanAuditRecords(_ context.Context, after int64, fn func(*warden.AuditRecord) error) error {
	for _, r := range rs {
		if r.Seq > after {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (records) AuditCheckpoints(context.Context) ([]*warden.AuditCheckpoint, error) { return nil, nil }

// FuzzVerifyRecord verifies a log whose second record is any body, correctly hashed, with any
// copies beside it. Verification reads the body as an audit event and its copies as the store
// keeps them: whatever they hold, it reports, never fails or panics, and it calls the log
// intact only if every copy is what the body says.
func FuzzVerifyRecord(f *testing.F) {
	first := &warden.AuditEvent{SchemaVersion: 2, ID: "01A", Seq: 1, Time: time.Unix(1, 0).UTC(), Type: "tool.call"}
	firstBody, err := warden.AuditCanonical(first)
	if err != nil {
		f.Fatal(err)
	}
	firstHash := warden.AuditHash(firstBody)
	f.Add(`{"schema_version":2,"id":"01B","seq":2,"time":"1970-01-01T00:00:02Z","type":"tool.call","actor":{"kind":"agent","name":"bot"},"prev_hash":"`+firstHash+`"}`, "01B", int64(2e9), "tool.call", "bot", "", 0)
	f.Add(`{"seq":2,"prev_hash":"`+firstHash+`","actor":{"kind":"agent","name":"bot"}}`, "", int64(0), "", "someone-else", "", 0)
	f.Add(`{"seq":2,"prev_hash":"`+firstHash+`","time":"garbage"}`, "", int64(0), "", "", "", 0)
	f.Add(`{"seq":2,"prev_hash":"`+firstHash+`","target":{"risk":"critical","tool":"t"}}`, "", int64(0), "", "", "t", 4)
	f.Add(`not json`, "x", int64(-1), "y", "z", "w", -3)
	f.Fuzz(func(t *testing.T, body, id string, nanos int64, typ, name, tool string, risk int) {
		ix := warden.AuditIndex{ID: id, Time: nanos, Type: typ, ActorName: name, Tool: tool, Risk: risk}
		src := records{
			{Seq: 1, Hash: firstHash, Body: firstBody, Index: ptr(warden.AuditIndexOf(first))},
			{Seq: 2, Hash: warden.AuditHash([]byte(body)), Body: []byte(body), Index: &ix},
		}
		r, err := audit.Verify(t.Context(), src, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("verify failed rather than report: %v", err)
		}
		if r.OK != (r.Break == nil) {
			t.Fatalf("ok %v with break %+v", r.OK, r.Break)
		}
		if !r.OK {
			return
		}
		var ev warden.AuditEvent
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			t.Fatalf("an unreadable body verified: %v", err)
		}
		if warden.AuditIndexOf(&ev) != ix {
			t.Fatalf("copies %+v verified against a body whose copies are %+v", ix, warden.AuditIndexOf(&ev))
		}
	})
}

func ptr[T any](v T) *T { return &v }
