package storetest

import (
	"encoding/json"
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
		PrevHash: "prev",
		Hash:     "hash",
	}
	minimal := newEvent("01JQ8Z6Y4T3V2W1X0Y9Z8A7B6D", base.Add(time.Second), warden.EventServerStart)
	appendEvents(t, s, ev, minimal)
	if ev.Seq == 0 || minimal.Seq <= ev.Seq {
		t.Fatalf("seqs %d, %d; want increasing and above 0", ev.Seq, minimal.Seq)
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
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("event %s got seq %d after %s got %d; want increasing in order", all[i].ID, all[i].Seq, all[i-1].ID, all[i-1].Seq)
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
	e3.Target = warden.EventTarget{Tool: "github", Action: "issues.create"}
	e3.Decision.Effect = warden.EffectAllow
	e4 := newEvent("e4", at(3), "tool.call")
	e4.Actor = other
	e4.Target = warden.EventTarget{Tool: "github", Action: "issues.delete"}
	e4.Decision.Effect = warden.EffectDeny
	e5 := newEvent("e5", at(4), warden.EventAgentRotate)
	e5.Actor = alice
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
		{"nothing matches", warden.AuditFilter{Agent: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, "event IDs", eventIDs(auditEvents(t, s, tt.filter)), tt.want)
		})
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
