package storetest

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
)

// RunAuditIndexTamper checks that audit verification notices a copy kept for search (the
// columns beside an event's body) changed with raw SQL: such a change leaves the chain whole but
// hides the event from a search, so verify must name the event and the column. s is a new,
// empty store; db reads and writes its database directly.
func RunAuditIndexTamper(t *testing.T, s warden.Store, db *sql.DB) {
	at := time.Date(2026, 12, 7, 3, 0, 0, 123456789, time.UTC)
	var evs []*warden.AuditEvent
	for i := range 5 {
		evs = append(evs, &warden.AuditEvent{
			SchemaVersion: warden.AuditSchemaVersion,
			ID:            fmt.Sprintf("01IX%02d", i),
			Time:          at.Add(time.Duration(i) * time.Second),
			Type:          warden.EventToolCall,
			Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot",
				SessionID: "sess-1", OnBehalfOf: "alice@example.com"},
			Target:   warden.EventTarget{Tool: "bank", Action: "transfer", Risk: warden.RiskHigh},
			Decision: warden.EventDecision{Effect: warden.EffectAllow},
		})
	}
	appendEvents(t, s, evs...)
	const seq = 3
	orig := warden.AuditIndexOf(evs[seq-1])
	text := func(s string) string { return "'" + s + "'" } // the values above need no escaping
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	cases := []struct{ column, forged, restore string }{
		{"id", text("01FORGED"), text(orig.ID)},
		{"time", num(orig.Time + int64(time.Hour)), num(orig.Time)},
		{"type", text("system.start"), text(orig.Type)},
		{"actor_id", text("ag_other"), text(orig.ActorID)},
		{"actor_name", text("someone-else"), text(orig.ActorName)},
		{"tool", text("mail"), text(orig.Tool)},
		{"action", text("read"), text(orig.Action)},
		{"effect", text(warden.EffectDeny), text(orig.Effect)},
		{"session_id", text("sess-2"), text(orig.SessionID)},
		{"on_behalf_of", text("mallory@example.com"), text(orig.OnBehalfOf)},
		{"risk", num(1), num(int64(orig.Risk))},
	}
	verify := func(t *testing.T) *audit.Report {
		t.Helper()
		r, err := audit.Verify(t.Context(), s, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return r
	}
	if r := verify(t); !r.OK || r.Events != int64(len(evs)) {
		t.Fatalf("the untouched log: %+v %+v", r, r.Break)
	}
	exec := func(t *testing.T, q string) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, c := range cases {
		t.Run(c.column, func(t *testing.T) {
			exec(t, `UPDATE audit_events SET `+c.column+` = `+c.forged+` WHERE seq = `+num(seq))
			r := verify(t)
			if r.OK || r.Break == nil || r.Break.Kind != audit.BreakIndex || r.Break.Seq != seq {
				t.Fatalf("with %s of event %d changed, verify reports %+v, break %+v; want %s at seq %d",
					c.column, seq, r, r.Break, audit.BreakIndex, seq)
			}
			if want := fmt.Sprintf("%s column", c.column); !strings.Contains(r.Break.Message, want) {
				t.Fatalf("the break does not name the column: %q", r.Break.Message)
			}
			exec(t, `UPDATE audit_events SET `+c.column+` = `+c.restore+` WHERE seq = `+num(seq))
			if r := verify(t); !r.OK {
				t.Fatalf("with %s restored: %+v", c.column, r.Break)
			}
		})
	}
	// What the finding was about: the renamed actor hides the event from a search by agent,
	// and verify names the first event so hidden.
	exec(t, `UPDATE audit_events SET actor_name = 'x', actor_id = 'x' WHERE seq >= 2`)
	if got := auditEvents(t, s, warden.AuditFilter{Agent: "bot"}); len(got) != 1 {
		t.Fatalf("search by agent finds %d events, want the 1 left untouched", len(got))
	}
	if r := verify(t); r.OK || r.Break == nil || r.Break.Kind != audit.BreakIndex || r.Break.Seq != 2 {
		t.Fatalf("verify reports %+v, want %s at seq 2", r.Break, audit.BreakIndex)
	}
}
