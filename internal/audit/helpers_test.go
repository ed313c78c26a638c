package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/sqlite"
)

// testLog is a Log on a real SQLite store in a temporary directory, with a raw connection to
// the same file for tests that tamper with it.
type testLog struct {
	*audit.Log
	store *sqlite.Store
	raw   *sql.DB
	keys  *checkpoint.Keys
}

func openLog(t testing.TB) *testLog {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	// t.TempDir's directories are 0755, which the store warns about on stderr; here that would
	// fall into the middle of a benchmark's result line, which make bench parses.
	store, err := sqlite.OpenLog(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	keys, err := checkpoint.LoadOrCreate(context.Background(), store, make([]byte, 32), "test.example/audit", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := audit.New(store, audit.Options{Replica: "r1", Keys: keys})
	t.Cleanup(func() { l.Close() })
	raw, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: "_busy_timeout=10000"}).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &testLog{Log: l, store: store, raw: raw, keys: keys}
}

func event(i int) *warden.AuditEvent {
	return &warden.AuditEvent{
		Type:     warden.EventToolCall,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", SessionID: "s1"},
		Target:   warden.EventTarget{Tool: "github", Action: "issues.create", Resource: fmt.Sprintf("repo:acme/%d", i), Arguments: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Reason: "policy_allow"},
	}
}

func (l *testLog) appendN(t testing.TB, n int) {
	t.Helper()
	for i := range n {
		if err := l.Append(context.Background(), event(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func (l *testLog) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := l.raw.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func (l *testLog) verify(t testing.TB, external []byte) *audit.Report {
	t.Helper()
	r, err := audit.Verify(context.Background(), l.store, audit.VerifyOptions{Verifiers: l.keys.Verifiers, External: external})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// body returns the stored body of event seq, decoded.
func (l *testLog) body(t testing.TB, seq int64) *warden.AuditEvent {
	t.Helper()
	var body string
	if err := l.raw.QueryRow(`SELECT body FROM audit_events WHERE seq = ?`, seq).Scan(&body); err != nil {
		t.Fatal(err)
	}
	var ev warden.AuditEvent
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

// rewrite stores ev at seq with a hash and the copies kept for search computed as warden would:
// the kind of change someone who knows the format but not the checkpoint key can make.
func (l *testLog) rewrite(t testing.TB, seq int64, ev *warden.AuditEvent) string {
	t.Helper()
	canonical, err := warden.AuditCanonical(ev)
	if err != nil {
		t.Fatal(err)
	}
	hash := warden.AuditHash(canonical)
	ix := warden.AuditIndexOf(ev)
	l.exec(t, `UPDATE audit_events SET body = ?, hash = ?, id = ?, time = ?, type = ?, actor_id = ?, actor_name = ?, tool = ?,
		action = ?, effect = ?, session_id = ?, on_behalf_of = ?, risk = ? WHERE seq = ?`, string(canonical), hash,
		ix.ID, ix.Time, ix.Type, ix.ActorID, ix.ActorName, ix.Tool, ix.Action, ix.Effect, ix.SessionID, ix.OnBehalfOf, ix.Risk, seq)
	return hash
}

// shift moves the events from seq from on by delta, as an UPDATE of a primary key must: through
// negative numbers, so that no two rows ever hold one seq.
func (l *testLog) shift(t testing.TB, from, delta int64) {
	t.Helper()
	l.exec(t, `UPDATE audit_events SET seq = -(seq + ?) WHERE seq >= ?`, delta, from)
	l.exec(t, `UPDATE audit_events SET seq = -seq WHERE seq < 0`)
}

// swap exchanges the places of events a and b.
func (l *testLog) swap(t testing.TB, a, b int64) {
	t.Helper()
	l.exec(t, `UPDATE audit_events SET seq = -1 WHERE seq = ?`, a)
	l.exec(t, `UPDATE audit_events SET seq = ? WHERE seq = ?`, a, b)
	l.exec(t, `UPDATE audit_events SET seq = ? WHERE seq = -1`, b)
}

// gateStore holds every append until the test opens the gate, so that appends queue up behind
// it and the next commit is one batch.
type gateStore struct {
	audit.Store
	mu      sync.Mutex
	gate    chan struct{}
	arrived chan struct{} // if set, told (without blocking) each time a batch reaches the gate
	fail    error
	batches []int
	atGate  int // events in the batch held at the gate now
}

// held is how many appends of log are queued or held at the gate.
func (g *gateStore) held(log *audit.Log) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.atGate + log.Queued()
}

// until waits for cond, which another goroutine makes true without any event to wait on (an
// append reaching the queue), yielding the processor rather than sleeping a guessed time.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting until %s", what)
		}
	}
}

func (g *gateStore) AppendAuditEvents(ctx context.Context, evs []*warden.AuditEvent) error {
	g.mu.Lock()
	gate, arrived := g.gate, g.arrived
	g.mu.Unlock()
	if arrived != nil {
		select {
		case arrived <- struct{}{}:
		default:
		}
	}
	if gate != nil {
		g.mu.Lock()
		g.atGate = len(evs)
		g.mu.Unlock()
		<-gate
	}
	g.mu.Lock()
	g.atGate = 0
	g.batches = append(g.batches, len(evs))
	fail := g.fail
	g.mu.Unlock()
	if fail != nil {
		return fail
	}
	return g.Store.AppendAuditEvents(ctx, evs)
}

// checkpointStore tells the test the size of each checkpoint stored, so that it waits for the
// checkpoint rather than polls for it.
type checkpointStore struct {
	audit.Store
	added chan int64
}

func (c *checkpointStore) AddAuditCheckpoint(ctx context.Context, cp *warden.AuditCheckpoint) error {
	if err := c.Store.AddAuditCheckpoint(ctx, cp); err != nil {
		return err
	}
	c.added <- cp.Size
	return nil
}
