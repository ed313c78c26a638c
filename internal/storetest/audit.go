package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var auditTests = []storeTest{
	{"RoundTrip", testAuditRoundTrip},
	{"SeqIncreases", testAuditSeq},
	{"AppendAllOrNothing", testAuditAllOrNothing},
	{"Filter", testAuditFilter},
	{"Limit", testAuditLimit},
	{"ConcurrentAppendsTailInOrder", testAuditConcurrentTail},
	{"Chain", testAuditChain},
	{"ConcurrentAppendsChain", testAuditConcurrentChain},
	{"CanonicalRoundTrip", testAuditCanonicalRoundTrip},
	{"EncodedAhead", testAuditEncodedAhead},
	{"Head", testAuditHead},
	{"ScanRecords", testAuditScanRecords},
	{"Prune", testAuditPrune},
	{"Checkpoints", testAuditCheckpoints},
	{"Keys", testAuditKeys},
	{"SinkCursors", testAuditSinkCursors},
	{"CanceledContext", testAuditCanceledContext},
	{"Closed", testAuditClosed},
}

func newEvent(id string, at time.Time, typ string) *warden.AuditEvent {
	return &warden.AuditEvent{
		SchemaVersion: warden.AuditSchemaVersion,
		ID:            id,
		Time:          at,
		Type:          typ,
		Actor:         warden.EventActor{Kind: warden.ActorSystem},
	}
}

func appendEvents(t *testing.T, s warden.Store, evs ...*warden.AuditEvent) {
	t.Helper()
	if err := s.AppendAuditEvents(t.Context(), evs); err != nil {
		t.Fatalf("AppendAuditEvents: %v", err)
	}
}

func auditEvents(t *testing.T, s warden.Store, f warden.AuditFilter) []*warden.AuditEvent {
	t.Helper()
	evs, err := s.AuditEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("AuditEvents(%+v): %v", f, err)
	}
	return evs
}

func eventIDs(evs []*warden.AuditEvent) []string {
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.ID)
	}
	return ids
}

func testAuditRoundTrip(t *testing.T, s warden.Store) {
	ev := &warden.AuditEvent{
		SchemaVersion: warden.AuditSchemaVersion,
		ID:            "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6C",
		Time:          base,
		Type:          "tool.call",
		Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", Owner: "alice@example.com",
			OnBehalfOf: "bob@example.com", SessionID: "sess-1", Source: "127.0.0.1:50123", Replica: "r1"},
		Target: warden.EventTarget{Tool: "github", Action: "issues.create", Resource: "repo:acme/widgets",
			Arguments:  json.RawMessage(`{"title":"<script>&amp;","labels":["bug"],"n":1.5,"none":null,"redacted":"[REDACTED]"}`),
			ArgsSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Reason: "policy_allow", Message: "allowed by triage",
			Policies: []string{"policy0", "policy7"}, PolicyVersion: 12},
		Outcome: warden.EventOutcome{Status: warden.StatusOK, UpstreamStatus: 201, LatencyMS: 12.375, BytesIn: 512,
			BytesOut: 2048},
		TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:   "00f067aa0ba902b7",
		PrevHash: "a prev_hash of the caller's is replaced",
		Hash:     "and so is its hash",
	}
	ev.Target.Risk = warden.RiskHigh
	minimal := newEvent("01JQ8Z6Y4T3V2W1X0Y9Z8A7B6D", base.Add(time.Second), warden.EventServerStart)
	appendEvents(t, s, ev, minimal)
	if ev.Seq != 1 || minimal.Seq != 2 {
		t.Fatalf("seqs %d, %d; want 1, 2", ev.Seq, minimal.Seq)
	}
	if ev.PrevHash != "" || minimal.PrevHash != ev.Hash || len(ev.Hash) != 64 || len(minimal.Hash) != 64 {
		t.Fatalf("chain: first (prev %q, hash %q), second (prev %q, hash %q)", ev.PrevHash, ev.Hash, minimal.PrevHash, minimal.Hash)
	}
	wantFull, wantMinimal := *ev, *minimal
	wantFull.Time, wantMinimal.Time = ev.Time.UTC(), minimal.Time.UTC()
	got := auditEvents(t, s, warden.AuditFilter{})
	wantEqual(t, "events", got, []*warden.AuditEvent{&wantFull, &wantMinimal})
}

func testAuditSeq(t *testing.T, s warden.Store) {
	if got := auditEvents(t, s, warden.AuditFilter{}); len(got) != 0 {
		t.Fatalf("AuditEvents of an empty store = %v", got)
	}
	appendEvents(t, s) // an empty batch is no error
	var all []*warden.AuditEvent
	for batch := range 3 {
		var evs []*warden.AuditEvent
		for i := range batch + 1 {
			evs = append(evs, newEvent(fmt.Sprintf("b%d-e%d", batch, i), base, warden.EventTokenIssue))
		}
		appendEvents(t, s, evs...)
		all = append(all, evs...)
	}
	for i := range all {
		if all[i].Seq != int64(i+1) {
			t.Fatalf("event %s got seq %d; want %d: seqs run 1, 2, 3, … without gaps", all[i].ID, all[i].Seq, i+1)
		}
	}
	got := auditEvents(t, s, warden.AuditFilter{})
	wantEqual(t, "events in log order", eventIDs(got), eventIDs(all))
	for i := range got {
		if got[i].Seq != all[i].Seq {
			t.Fatalf("event %s reads back with seq %d, was given %d", got[i].ID, got[i].Seq, all[i].Seq)
		}
	}
}

func testAuditAllOrNothing(t *testing.T, s warden.Store) {
	existing := newEvent("existing", base, warden.EventServerStart)
	appendEvents(t, s, existing)
	noTime := newEvent("no-time", time.Time{}, warden.EventServerStart)
	tests := []struct {
		name  string
		batch func() []*warden.AuditEvent
		code  string
	}{
		{"duplicate in batch", func() []*warden.AuditEvent {
			return []*warden.AuditEvent{newEvent("a", base, "x"), newEvent("b", base, "x"), newEvent("a", base, "x")}
		}, warden.EConflict},
		{"duplicate of stored", func() []*warden.AuditEvent {
			return []*warden.AuditEvent{newEvent("c", base, "x"), newEvent(existing.ID, base, "x")}
		}, warden.EConflict},
		{"nil event", func() []*warden.AuditEvent { return []*warden.AuditEvent{newEvent("d", base, "x"), nil} }, warden.EInvalid},
		{"no time", func() []*warden.AuditEvent { return []*warden.AuditEvent{newEvent("e", base, "x"), noTime} }, warden.EInvalid},
		{"arguments not JSON", func() []*warden.AuditEvent {
			ev := newEvent("f", base, "x")
			ev.Target.Arguments = json.RawMessage(`{"unterminated`)
			return []*warden.AuditEvent{newEvent("g", base, "x"), ev}
		}, warden.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			batch := tt.batch()
			wantCode(t, s.AppendAuditEvents(t.Context(), batch), tt.code)
			for _, ev := range batch {
				if ev != nil && ev.Seq != 0 {
					t.Errorf("event %s of a failed batch was given seq %d", ev.ID, ev.Seq)
				}
			}
			wantEqual(t, "events after a failed batch", eventIDs(auditEvents(t, s, warden.AuditFilter{})), []string{existing.ID})
		})
	}
	// A failed batch leaves no gap: the next event follows the one before it.
	next := newEvent("next", base, "x")
	appendEvents(t, s, next)
	if next.Seq != existing.Seq+1 || next.PrevHash != existing.Hash {
		t.Fatalf("after failed batches the next event got seq %d, prev %q; want %d, %q", next.Seq, next.PrevHash, existing.Seq+1, existing.Hash)
	}
}

func testAuditFilter(t *testing.T, s warden.Store) {
	at := func(minutes int) time.Time { return base.Add(time.Duration(minutes) * time.Minute) }
	alice := warden.EventActor{Kind: warden.ActorHuman, ID: "usr_alice", Name: "alice", Role: "admin"}
	bot := warden.EventActor{Kind: warden.ActorAgent, ID: "ag_bot", Name: "bot", SessionID: "s1"}
	other := warden.EventActor{Kind: warden.ActorAgent, ID: "ag_other", Name: "other", SessionID: "s2"}

	e1 := newEvent("e1", at(0), warden.EventAgentCreate)
	e1.Actor = alice
	e2 := newEvent("e2", at(1), warden.EventTokenIssue)
	e2.Actor, e2.Decision.Effect = bot, warden.EffectAllow
	e3 := newEvent("e3", at(2), "tool.call")
	e3.Actor, e3.Actor.OnBehalfOf = bot, "bob"
	e3.Target = warden.EventTarget{Tool: "github", Action: "issues.create", Resource: "repo:acme/web"}
	e3.Decision.Effect = warden.EffectAllow
	e4 := newEvent("e4", at(3), "tool.call")
	e4.Actor = other
	e4.Target = warden.EventTarget{Tool: "github", Action: "issues.delete", Resource: "repo:acme/web2"}
	e4.Decision.Effect = warden.EffectDeny
	e4.Target.Risk = warden.RiskCritical
	e3.Target.Risk = warden.RiskMedium
	e5 := newEvent("e5", at(4), warden.EventAgentRotate)
	e5.Actor = alice
	e5.Target.Risk = warden.RiskHigh
	e6 := newEvent("e6", at(5), "agentx.thing")
	e7 := newEvent("e7", at(6), "agent")
	appendEvents(t, s, e1, e2, e3, e4, e5)
	appendEvents(t, s, e6, e7)

	all := []string{"e1", "e2", "e3", "e4", "e5", "e6", "e7"}
	tests := []struct {
		name   string
		filter warden.AuditFilter
		want   []string
	}{
		{"everything", warden.AuditFilter{}, all},
		{"agent by ID", warden.AuditFilter{Agent: "ag_bot"}, []string{"e2", "e3"}},
		{"agent by name", warden.AuditFilter{Agent: "bot"}, []string{"e2", "e3"}},
		{"person by name", warden.AuditFilter{Agent: "alice"}, []string{"e1", "e5"}},
		{"type exact", warden.AuditFilter{Type: warden.EventTokenIssue}, []string{"e2"}},
		{"type exact matches no prefix", warden.AuditFilter{Type: "agent"}, []string{"e7"}},
		{"type prefix", warden.AuditFilter{Type: "agent.*"}, []string{"e1", "e5"}},
		{"type prefix without dot", warden.AuditFilter{Type: "agent*"}, []string{"e1", "e5", "e6", "e7"}},
		{"type prefix with underscore", warden.AuditFilter{Type: "agent.rotate_*"}, []string{"e5"}},
		{"type prefix is case-sensitive", warden.AuditFilter{Type: "Agent.*"}, nil},
		{"type wildcards are literal", warden.AuditFilter{Type: "agent.%"}, nil},
		{"type star alone", warden.AuditFilter{Type: "*"}, all},
		{"effect", warden.AuditFilter{Effect: warden.EffectDeny}, []string{"e4"}},
		{"tool", warden.AuditFilter{Tool: "github"}, []string{"e3", "e4"}},
		{"action", warden.AuditFilter{Action: "issues.create"}, []string{"e3"}},
		{"session", warden.AuditFilter{SessionID: "s1"}, []string{"e2", "e3"}},
		{"on behalf of", warden.AuditFilter{OnBehalfOf: "bob"}, []string{"e3"}},
		{"resource, exact", warden.AuditFilter{Resource: "repo:acme/web"}, []string{"e3"}},
		{"resource of a type", warden.AuditFilter{Resource: "repo:acme/web2", Type: "tool.*"}, []string{"e4"}},
		{"resource is no pattern", warden.AuditFilter{Resource: "repo:acme/%"}, nil},
		{"since is inclusive", warden.AuditFilter{Since: at(2)}, []string{"e3", "e4", "e5", "e6", "e7"}},
		{"until is exclusive", warden.AuditFilter{Until: at(2)}, []string{"e1", "e2"}},
		{"window", warden.AuditFilter{Since: at(1), Until: at(3)}, []string{"e2", "e3"}},
		{"window in another zone", warden.AuditFilter{Since: at(1).UTC(), Until: at(3).In(time.FixedZone("UTC-5", -5*60*60))},
			[]string{"e2", "e3"}},
		{"nanosecond before", warden.AuditFilter{Until: at(2).Add(time.Nanosecond)}, []string{"e1", "e2", "e3"}},
		{"after seq", warden.AuditFilter{AfterSeq: e3.Seq}, []string{"e4", "e5", "e6", "e7"}},
		{"limit", warden.AuditFilter{Limit: 2}, []string{"e1", "e2"}},
		{"limit after seq", warden.AuditFilter{Limit: 2, AfterSeq: e2.Seq}, []string{"e3", "e4"}},
		{"combined", warden.AuditFilter{Tool: "github", Effect: warden.EffectAllow, Agent: "bot"}, []string{"e3"}},
		{"min risk high", warden.AuditFilter{MinRisk: warden.RiskHigh}, []string{"e4", "e5"}},
		{"min risk low", warden.AuditFilter{MinRisk: warden.RiskLow}, []string{"e3", "e4", "e5"}},
		{"min risk critical", warden.AuditFilter{MinRisk: warden.RiskCritical}, []string{"e4"}},
		{"newest", warden.AuditFilter{Newest: true, Limit: 3}, []string{"e5", "e6", "e7"}},
		{"newest of a type", warden.AuditFilter{Newest: true, Limit: 1, Type: "tool.call"}, []string{"e4"}},
		{"newest after seq", warden.AuditFilter{Newest: true, Limit: 10, AfterSeq: e5.Seq}, []string{"e6", "e7"}},
		{"before seq", warden.AuditFilter{BeforeSeq: e3.Seq}, []string{"e1", "e2"}},
		{"newest before seq", warden.AuditFilter{Newest: true, Limit: 2, BeforeSeq: e6.Seq}, []string{"e4", "e5"}},
		{"newest before seq of a tool", warden.AuditFilter{Newest: true, Limit: 1, BeforeSeq: e4.Seq, Tool: "github"}, []string{"e3"}},
		{"between seqs", warden.AuditFilter{AfterSeq: e2.Seq, BeforeSeq: e5.Seq}, []string{"e3", "e4"}},
		{"nothing matches", warden.AuditFilter{Agent: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, "event IDs", eventIDs(auditEvents(t, s, tt.filter)), tt.want)
		})
	}

	// A count is of the whole search, cursors and limit aside, and stops at upTo.
	for _, tc := range []struct {
		name   string
		filter warden.AuditFilter
		upTo   int64
		want   int64
	}{
		{"all", warden.AuditFilter{}, 100, 7},
		{"a tool", warden.AuditFilter{Tool: "github"}, 100, 2},
		{"cursors and limit aside", warden.AuditFilter{Tool: "github", Limit: 1, AfterSeq: e3.Seq, BeforeSeq: e4.Seq, Newest: true}, 100, 2},
		{"min risk", warden.AuditFilter{MinRisk: warden.RiskLow}, 100, 3},
		{"up to", warden.AuditFilter{}, 5, 5},
		{"nothing", warden.AuditFilter{Agent: "nobody"}, 100, 0},
	} {
		n, err := s.CountAuditEvents(context.Background(), tc.filter, tc.upTo)
		if err != nil || n != tc.want {
			t.Errorf("count %s = %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
}

func testAuditLimit(t *testing.T, s warden.Store) {
	const total = 1050
	for batch := 0; batch < total; batch += 350 {
		var evs []*warden.AuditEvent
		for i := batch; i < batch+350; i++ {
			evs = append(evs, newEvent(fmt.Sprintf("e%04d", i), base.Add(time.Duration(i)*time.Millisecond), "x"))
		}
		appendEvents(t, s, evs...)
	}
	tests := []struct {
		limit, want int
	}{
		{0, 100},
		{-1, 100},
		{1, 1},
		{999, 999},
		{1000, 1000},
		{1001, 1000},
		{1 << 30, 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got := auditEvents(t, s, warden.AuditFilter{Limit: tt.limit})
			if len(got) != tt.want {
				t.Fatalf("limit %d returned %d events, want %d", tt.limit, len(got), tt.want)
			}
			if got[0].ID != "e0000" || got[len(got)-1].ID != fmt.Sprintf("e%04d", tt.want-1) {
				t.Fatalf("limit %d returned %s … %s, want the first events of the log", tt.limit, got[0].ID, got[len(got)-1].ID)
			}
		})
	}
}

// testAuditConcurrentTail appends from several writers while a reader follows the log by
// AfterSeq, as an audit stream does. The reader must see every event exactly once, which holds
// only if events become visible in Seq order, and each batch must stay in one piece.
func testAuditConcurrentTail(t *testing.T, s warden.Store) {
	const writers, batches, batchSize = 4, 10, 5
	done := make(chan error, 1)
	go func() {
		done <- concurrently(writers, func(w int) error {
			for b := range batches {
				var evs []*warden.AuditEvent
				for i := range batchSize {
					evs = append(evs, newEvent(fmt.Sprintf("w%d-b%d-e%d", w, b, i), base, "x"))
				}
				if err := s.AppendAuditEvents(t.Context(), evs); err != nil {
					return err
				}
			}
			return nil
		})
	}()

	var seen []*warden.AuditEvent
	for finished := false; ; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		after := int64(0)
		if len(seen) > 0 {
			after = seen[len(seen)-1].Seq
		}
		evs := auditEvents(t, s, warden.AuditFilter{AfterSeq: after, Limit: 1000})
		seen = append(seen, evs...)
		if finished && len(evs) == 0 {
			break
		}
	}
	ids := eventIDs(seen)
	wantEqual(t, "events the tail saw", len(ids), writers*batches*batchSize)
	slices.Sort(ids)
	if len(slices.Compact(ids)) != writers*batches*batchSize {
		t.Fatal("the tail saw an event twice")
	}
	for i := 0; i < len(seen); i += batchSize {
		w, b := -1, -1
		for j, ev := range seen[i : i+batchSize] {
			var gw, gb, ge int
			if _, err := fmt.Sscanf(ev.ID, "w%d-b%d-e%d", &gw, &gb, &ge); err != nil {
				t.Fatalf("event %s: %v", ev.ID, err)
			}
			if j == 0 {
				w, b = gw, gb
			}
			if gw != w || gb != b || ge != j {
				t.Fatalf("event %s at position %d: batches interleaved or out of order", ev.ID, i+j)
			}
		}
	}
}

// testAuditChain checks the links: each event's hash is the SHA-256 of the body the store keeps,
// and each names the hash of the one before.
func testAuditChain(t *testing.T, s warden.Store) {
	for b := range 4 {
		var evs []*warden.AuditEvent
		for i := range b + 1 {
			evs = append(evs, newEvent(fmt.Sprintf("b%d-e%d", b, i), base, "x"))
		}
		appendEvents(t, s, evs...)
	}
	prev := ""
	var seq int64
	err := s.ScanAuditRecords(t.Context(), 0, func(r *warden.AuditRecord) error {
		seq++
		if r.Seq != seq {
			return fmt.Errorf("record %d follows %d", r.Seq, seq-1)
		}
		if got := warden.AuditHash(r.Body); got != r.Hash {
			return fmt.Errorf("record %d: hash %s, but its body hashes to %s", r.Seq, r.Hash, got)
		}
		var body struct {
			Seq      int64  `json:"seq"`
			PrevHash string `json:"prev_hash"`
			Hash     string `json:"hash"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return err
		}
		if body.Seq != r.Seq || body.PrevHash != prev || body.Hash != "" {
			return fmt.Errorf("record %d: body has seq %d, prev_hash %q, hash %q; want %d, %q and no hash",
				r.Seq, body.Seq, body.PrevHash, body.Hash, r.Seq, prev)
		}
		prev = r.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "records", seq, int64(10))
}

// testAuditConcurrentChain appends from many writers at once, as several replicas do on one
// database: the chain must come out whole, with no seq twice and none skipped.
func testAuditConcurrentChain(t *testing.T, s warden.Store) {
	const writers, batches = 8, 6
	err := concurrently(writers, func(w int) error {
		for b := range batches {
			ev := newEvent(fmt.Sprintf("w%d-b%d", w, b), base, "x")
			if err := s.AppendAuditEvents(t.Context(), []*warden.AuditEvent{ev, newEvent(ev.ID+"-2", base, "x")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	prev, n := "", int64(0)
	err = s.ScanAuditRecords(t.Context(), 0, func(r *warden.AuditRecord) error {
		n++
		var body struct {
			PrevHash string `json:"prev_hash"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			return err
		}
		if r.Seq != n || body.PrevHash != prev || warden.AuditHash(r.Body) != r.Hash {
			return fmt.Errorf("record %d (expected %d) does not extend the chain", r.Seq, n)
		}
		prev = r.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "events", n, int64(writers*batches*2))
}

// testAuditCanonicalRoundTrip checks that an event read back encodes to the very bytes the
// store hashed, so that an export (AuditLine of the canonical encoding) verifies.
func testAuditCanonicalRoundTrip(t *testing.T, s warden.Store) {
	ev := newEvent("odd", base, warden.EventToolCall)
	ev.Target = warden.EventTarget{Tool: "t", Action: "a<b>&c", Arguments: json.RawMessage(`{ "b" : [1, 2.50, 1e3], "a": "\u00e9<x>", "n": null }`)}
	ev.Decision.Message = "quote \" backslash \\ tab \t nul \u0000 line\u2028"
	ev.Outcome.LatencyMS = 0.1 + 0.2
	appendEvents(t, s, ev, newEvent("plain", base, "x"))
	read := auditEvents(t, s, warden.AuditFilter{})
	var bodies [][]byte
	err := s.ScanAuditRecords(t.Context(), 0, func(r *warden.AuditRecord) error {
		bodies = append(bodies, r.Body)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range read {
		got, err := warden.AuditCanonical(ev)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(bodies[i]) {
			t.Errorf("event %d encodes again as\n%s\nbut the store hashed\n%s", ev.Seq, got, bodies[i])
		}
		line := warden.AuditLine(got, ev.Hash)
		var back warden.AuditEvent
		if err := json.Unmarshal(line, &back); err != nil || back.Hash != ev.Hash {
			t.Errorf("export line %s: %v", line, err)
		}
	}
}

// encodingStore is a store whose callers may encode events ahead of their append, as the audit
// log's appenders do.
type encodingStore interface {
	EncodeAuditEvent(ev *warden.AuditEvent) any
	AppendEncodedAuditEvents(ctx context.Context, evs []*warden.AuditEvent, encoded []any) error
}

// testAuditEncodedAhead appends events encoded ahead, in batches whose sizes are no multiple of
// the store's multi-row insert, beside some not encoded ahead: the log must be the chain that
// plain appends make, each body the canonical encoding of its event.
func testAuditEncodedAhead(t *testing.T, s warden.Store) {
	es, ok := s.(encodingStore)
	if !ok {
		t.Skip("the store does not encode ahead")
	}
	n := 0
	for _, size := range []int{1, 21, 3, 16, 40} {
		evs := make([]*warden.AuditEvent, size)
		encs := make([]any, size)
		for i := range evs {
			n++
			evs[i] = newEvent(fmt.Sprintf("ahead-%03d", n), base.Add(time.Duration(n)*time.Millisecond), warden.EventToolCall)
			evs[i].Target.Arguments = json.RawMessage(fmt.Sprintf(`{ "n" : %d }`, n))
			if n%5 != 0 {
				encs[i] = es.EncodeAuditEvent(evs[i])
			}
		}
		if err := es.AppendEncodedAuditEvents(t.Context(), evs, encs); err != nil {
			t.Fatal(err)
		}
	}
	prev, seq := "", int64(0)
	err := s.ScanAuditRecords(t.Context(), 0, func(r *warden.AuditRecord) error {
		seq++
		var ev warden.AuditEvent
		if err := json.Unmarshal(r.Body, &ev); err != nil {
			return err
		}
		canonical, err := warden.AuditCanonical(&ev)
		if err != nil {
			return err
		}
		switch {
		case r.Seq != seq || ev.Seq != seq:
			return fmt.Errorf("record %d (body %d) where %d belongs", r.Seq, ev.Seq, seq)
		case ev.ID != fmt.Sprintf("ahead-%03d", seq):
			return fmt.Errorf("record %d is event %s", seq, ev.ID)
		case ev.PrevHash != prev || warden.AuditHash(r.Body) != r.Hash:
			return fmt.Errorf("record %d does not extend the chain", seq)
		case string(canonical) != string(r.Body):
			return fmt.Errorf("record %d: body\n%s\nis not the canonical encoding\n%s", seq, r.Body, canonical)
		}
		prev = r.Hash
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "records", seq, int64(n))
}

func testAuditHead(t *testing.T, s warden.Store) {
	seq, hash, err := s.AuditHead(t.Context())
	if err != nil || seq != 0 || hash != "" {
		t.Fatalf("head of an empty log: %d %q %v", seq, hash, err)
	}
	a, b := newEvent("a", base, "x"), newEvent("b", base, "x")
	appendEvents(t, s, a, b)
	seq, hash, err = s.AuditHead(t.Context())
	if err != nil || seq != b.Seq || hash != b.Hash {
		t.Fatalf("head: %d %q %v; want %d %q", seq, hash, err, b.Seq, b.Hash)
	}
}

func testAuditScanRecords(t *testing.T, s warden.Store) {
	for i := range 5 {
		appendEvents(t, s, newEvent(fmt.Sprintf("e%d", i), base, "x"))
	}
	var seqs []int64
	err := s.ScanAuditRecords(t.Context(), 2, func(r *warden.AuditRecord) error {
		seqs = append(seqs, r.Seq)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "seqs after 2", seqs, []int64{3, 4, 5})
	stop := fmt.Errorf("stop")
	n := 0
	err = s.ScanAuditRecords(t.Context(), 0, func(r *warden.AuditRecord) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Fatalf("a scan whose callback fails: %v after %d records; want that error after 1", err, n)
	}
}

func testAuditPrune(t *testing.T, s warden.Store) {
	var evs []*warden.AuditEvent
	for i := range 6 {
		evs = append(evs, newEvent(fmt.Sprintf("e%d", i), base.Add(time.Duration(i)*time.Minute), "x"))
	}
	appendEvents(t, s, evs...)
	_, err := s.PruneAuditEvents(t.Context(), 3)
	wantCode(t, err, warden.EInvalid) // no checkpoint anchors it
	for _, size := range []int64{3, 6} {
		c := &warden.AuditCheckpoint{Size: size, Hash: evs[size-1].Hash, Time: base, Note: "note"}
		if err := s.AddAuditCheckpoint(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.PruneAuditEvents(t.Context(), 6)
	wantCode(t, err, warden.EInvalid) // it would delete the head
	n, err := s.PruneAuditEvents(t.Context(), 3)
	if err != nil || n != 3 {
		t.Fatalf("prune through 3: %d, %v", n, err)
	}
	wantEqual(t, "events left", eventIDs(auditEvents(t, s, warden.AuditFilter{})), []string{"e3", "e4", "e5"})
	next := newEvent("next", base, "x")
	appendEvents(t, s, next)
	if next.Seq != 7 || next.PrevHash != evs[5].Hash {
		t.Fatalf("after a prune the next event got seq %d prev %q; want 7 and the head's hash", next.Seq, next.PrevHash)
	}
}

func testAuditCheckpoints(t *testing.T, s warden.Store) {
	if cs, err := s.AuditCheckpoints(t.Context()); err != nil || len(cs) != 0 {
		t.Fatalf("checkpoints of a new store: %v %v", cs, err)
	}
	add := func(c *warden.AuditCheckpoint) {
		t.Helper()
		if err := s.AddAuditCheckpoint(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	c10 := &warden.AuditCheckpoint{Size: 10, Hash: "h10", Time: base, Note: "n10"}
	c2 := &warden.AuditCheckpoint{Size: 2, Hash: "h2", Time: base.Add(time.Second), Note: "n2"}
	add(c10)
	add(c2)
	add(&warden.AuditCheckpoint{Size: 10, Hash: "other", Time: base, Note: "another replica's"})
	cs, err := s.AuditCheckpoints(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w2, w10 := *c2, *c10
	w2.Time, w10.Time = c2.Time.UTC(), c10.Time.UTC()
	wantEqual(t, "checkpoints", cs, []*warden.AuditCheckpoint{&w2, &w10})
	for _, c := range []struct {
		atMost int64
		want   *warden.AuditCheckpoint
	}{{0, &w10}, {10, &w10}, {9, &w2}, {2, &w2}} {
		got, err := s.LatestAuditCheckpoint(t.Context(), c.atMost)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, fmt.Sprintf("latest checkpoint of at most %d", c.atMost), got, c.want)
	}
	_, err = s.LatestAuditCheckpoint(t.Context(), 1)
	wantCode(t, err, warden.ENotFound)
	for _, bad := range []*warden.AuditCheckpoint{
		{Size: 0, Hash: "h", Time: base, Note: "n"},
		{Size: 1, Time: base, Note: "n"},
		{Size: 1, Hash: "h", Time: base},
		{Size: 1, Hash: "h", Note: "n"},
	} {
		wantCode(t, s.AddAuditCheckpoint(t.Context(), bad), warden.EInvalid)
	}
}

func testAuditKeys(t *testing.T, s warden.Store) {
	k1 := &warden.AuditKey{Name: "example.com/audit", Public: []byte("pub1"), Sealed: []byte("sealed1"), CreatedAt: base}
	k2 := &warden.AuditKey{Name: "b", Public: []byte("pub2"), Sealed: []byte("sealed2"), CreatedAt: base.Add(time.Second)}
	for _, k := range []*warden.AuditKey{k2, k1} {
		if err := s.CreateAuditKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, s.CreateAuditKey(t.Context(), &warden.AuditKey{Name: "b", Public: []byte("p"), Sealed: []byte("s"), CreatedAt: base}), warden.EConflict)
	wantCode(t, s.CreateAuditKey(t.Context(), &warden.AuditKey{Name: "c", Public: []byte("p"), CreatedAt: base}), warden.EInvalid)
	keys, err := s.AuditKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := *k1, *k2
	w1.CreatedAt, w2.CreatedAt = k1.CreatedAt.UTC(), k2.CreatedAt.UTC()
	wantEqual(t, "keys, oldest first", keys, []*warden.AuditKey{&w1, &w2})
}

func testAuditSinkCursors(t *testing.T, s warden.Store) {
	cursor := func(name string) int64 {
		t.Helper()
		seq, err := s.AuditSinkCursor(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		return seq
	}
	wantEqual(t, "cursor of a new sink", cursor("webhook"), int64(0))
	for _, seq := range []int64{5, 9} {
		if err := s.SaveAuditSinkCursor(t.Context(), "webhook", seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveAuditSinkCursor(t.Context(), "file", 3); err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "webhook cursor", cursor("webhook"), int64(9))
	wantEqual(t, "file cursor", cursor("file"), int64(3))
	wantCode(t, s.SaveAuditSinkCursor(t.Context(), "", 1), warden.EInvalid)
	wantCode(t, s.SaveAuditSinkCursor(t.Context(), "x", -1), warden.EInvalid)
}

// auditCalls invokes every audit method beyond append and search with valid arguments.
func auditCalls(s warden.Store) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"AuditHead": func(ctx context.Context) error { _, _, err := s.AuditHead(ctx); return err },
		"ScanAuditRecords": func(ctx context.Context) error {
			return s.ScanAuditRecords(ctx, 0, func(*warden.AuditRecord) error { return nil })
		},
		"PruneAuditEvents": func(ctx context.Context) error { _, err := s.PruneAuditEvents(ctx, 1); return err },
		"AddAuditCheckpoint": func(ctx context.Context) error {
			return s.AddAuditCheckpoint(ctx, &warden.AuditCheckpoint{Size: 2, Hash: "h", Time: base, Note: "n"})
		},
		"AuditCheckpoints": func(ctx context.Context) error { _, err := s.AuditCheckpoints(ctx); return err },
		"LatestAuditCheckpoint": func(ctx context.Context) error {
			_, err := s.LatestAuditCheckpoint(ctx, 0)
			if warden.ErrorCode(err) == warden.ENotFound {
				return nil
			}
			return err
		},
		"CreateAuditKey": func(ctx context.Context) error {
			return s.CreateAuditKey(ctx, &warden.AuditKey{Name: "k", Public: []byte("p"), Sealed: []byte("s"), CreatedAt: base})
		},
		"AuditKeys":           func(ctx context.Context) error { _, err := s.AuditKeys(ctx); return err },
		"AuditSinkCursor":     func(ctx context.Context) error { _, err := s.AuditSinkCursor(ctx, "x"); return err },
		"SaveAuditSinkCursor": func(ctx context.Context) error { return s.SaveAuditSinkCursor(ctx, "x", 1) },
	}
}

func seedAudit(t *testing.T, s warden.Store) {
	t.Helper()
	appendEvents(t, s, newEvent("a", base, "x"), newEvent("b", base, "x"))
	if err := s.AddAuditCheckpoint(t.Context(), &warden.AuditCheckpoint{Size: 1, Hash: "h", Time: base, Note: "n"}); err != nil {
		t.Fatal(err)
	}
}

func testAuditCanceledContext(t *testing.T, s warden.Store) {
	seedAudit(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range auditCalls(s) {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("with a canceled context: %v; want an error that is context.Canceled", err)
			}
		})
	}
	if got := eventIDs(auditEvents(t, s, warden.AuditFilter{})); len(got) != 2 {
		t.Errorf("events after canceled calls: %v", got)
	}
}

func testAuditClosed(t *testing.T, s warden.Store) {
	seedAudit(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range auditCalls(s) {
		t.Run(name, func(t *testing.T) {
			if err := call(t.Context()); err == nil {
				t.Fatal("succeeded on a closed store")
			}
		})
	}
}
