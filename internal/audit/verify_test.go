package audit_test

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
)

// TestVerifyNamesTheBreak tampers with the database directly, in each way an intruder with
// write access to it might, and expects verify to name what was done and where.
func TestVerifyNamesTheBreak(t *testing.T) {
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
	l := openLog(t)
	if r := l.verify(t, nil); !r.OK || r.Events != 0 {
		t.Fatalf("empty log: %+v", r)
	}
}
