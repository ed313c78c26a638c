package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/sqlite"
)

type rig struct {
	store *sqlite.Store
	log   *audit.Log
	clk   *clock.Fake
}

func newRig(t testing.TB) *rig {
	t.Helper()
	store, err := sqlite.OpenLog(context.Background(), filepath.Join(t.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := clock.NewFake(day0.AddDate(0, 0, 7).Add(11 * time.Hour))
	l := audit.New(store, audit.Options{Replica: "r1", Clock: clk})
	t.Cleanup(func() { l.Close() })
	return &rig{store: store, log: l, clk: clk}
}

// start runs a Runner until stop is called or the test ends.
func (r *rig) start(t *testing.T, holds *Holds) (stop func()) {
	t.Helper()
	run := &Runner{Store: r.store, Notifier: r.log, Audit: r.log, Holds: holds, Replica: "r1", Clock: r.clk}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); run.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// appendAll writes events through the audit log, as the gateway does.
func (r *rig) appendAll(t *testing.T, evs []*warden.AuditEvent) {
	t.Helper()
	for _, ev := range evs {
		ev.ID = ""
		if err := r.log.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// waitFindings waits, at most limit of real time, until the log holds n detect events after
// seq after, and returns them.
func (r *rig) waitFindings(t *testing.T, after int64, n int, limit time.Duration) []*warden.AuditEvent {
	t.Helper()
	deadline := time.After(limit)
	for {
		changed := r.log.Changed()
		evs, err := r.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "detect.*", AfterSeq: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) >= n {
			return evs
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d findings after %v, want %d: %v", len(evs), limit, n, evs)
		}
	}
}

// waitLearned waits, at most limit of real time, until the stored baseline of agent has learned
// n calls: the runner has read the log that far.
func (r *rig) waitLearned(t *testing.T, agent string, n int64, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		bodies, err := r.store.DetectBaselines(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var b Baseline
		if body, ok := bodies[agent]; ok {
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
		}
		if b.Calls >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the runner learned %d of %d calls of %s in %v", b.Calls, n, agent, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) head(t *testing.T) int64 {
	seq, _, err := r.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestRunnerFindsContainsAndRestarts: a week of traffic through the audit log, then a call of a
// high-risk action never seen: its detect.first_seen_action event is in the log within a second
// of the call, and the agent's calls of that action are held for a person (the default ladder).
// A new runner (a restart) starts from the stored baseline and cursor: the same week replayed
// finds nothing, and the hold is still in force.
func TestRunnerFindsContainsAndRestarts(t *testing.T) {
	r := newRig(t)
	var week []*warden.AuditEvent
	for day := range 7 {
		week = append(week, workday(day)...)
	}
	r.appendAll(t, week)
	holds := NewHolds()
	stop := r.start(t, holds)
	// The second a finding may take is from its call, once the runner is on the log's head:
	// reading a week of backlog first is not what the bound is about.
	r.waitLearned(t, "bot", calls(week), time.Minute)

	before := r.head(t)
	called := time.Now()
	r.appendAll(t, []*warden.AuditEvent{call(r.clk.Now(), "repo", "delete", "acme/app", warden.RiskHigh, warden.EffectAllow)})
	found := r.waitFindings(t, before, 1, time.Second)
	t.Logf("finding recorded %v after the call", time.Since(called))
	f := found[0]
	if f.Type != "detect.first_seen_action" || f.Target.Resource != "agent:bot" || f.Target.Risk != warden.RiskHigh || f.Actor.Kind != warden.ActorSystem {
		t.Fatalf("finding %+v", f)
	}
	if !holds.Held("bot", "repo", "delete", "acme/app", r.clk.Now()) || holds.Held("bot", "mail", "read", "/v1/messages/1", r.clk.Now()) || holds.Held("other", "repo", "delete", "acme/app", r.clk.Now()) {
		t.Fatalf("the hold is not exactly the agent's calls of the new action: %+v", holds.List(r.clk.Now()))
	}
	if holds.Held("bot", "repo", "delete", "acme/app", r.clk.Now().Add(25*time.Hour)) {
		t.Fatal("the hold outlives approve_for")
	}

	// Restart: a second runner takes over from the store once the first's lease lapses.
	stop()
	r.clk.Advance(time.Minute)
	holds2 := NewHolds()
	run2 := &Runner{Store: r.store, Audit: r.log, Holds: holds2, Replica: "r2", Clock: r.clk}
	if _, err := run2.Step(context.Background()); err != nil || !run2.leader {
		t.Fatalf("the second runner did not take over: leader %v err %v", run2.leader, err)
	}
	if !holds2.Held("bot", "repo", "delete", "acme/other", r.clk.Now()) {
		t.Fatal("the hold did not survive the restart")
	}
	if b := run2.det.Baseline("bot"); b == nil || b.Calls != calls(week)+1 {
		t.Fatalf("the stored baseline: %+v", b)
	}
	before = r.head(t)
	replay := workday(8) // Tuesday
	r.appendAll(t, replay)
	for more := true; more; {
		var err error
		if more, err = run2.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := r.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "detect.*", AfterSeq: before}); len(evs) != 0 {
		t.Fatalf("the benign replay was reported after the restart: %+v", evs[0])
	}

	// An event older than an hour (the first run over an existing log) is learned, not acted on.
	r.appendAll(t, []*warden.AuditEvent{call(r.clk.Now().Add(-2*time.Hour), "vault", "export", "", warden.RiskCritical, warden.EffectAllow)})
	if _, err := run2.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if evs, _ := r.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "detect.*", AfterSeq: before}); len(evs) != 0 || holds2.Held("bot", "vault", "export", "", r.clk.Now()) {
		t.Fatalf("an old call was acted on: %+v", evs)
	}
	if _, ok := run2.det.Baseline("bot").Actions["vault/export"]; !ok {
		t.Fatal("an old call was not learned")
	}

	// A finding is told to the webhooks (Findings) once it is on record: the alert of its event.
	told := &toldFindings{}
	run2.Findings = told
	before = r.head(t)
	r.appendAll(t, []*warden.AuditEvent{call(r.clk.Now(), "egress", "connect", "paste.evil.example:443", warden.RiskMedium, warden.EffectAllow)})
	if _, err := run2.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, _ := r.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "detect.*", AfterSeq: before})
	if len(evs) != 1 || len(told.alerts) != 1 || told.alerts[0].ID != evs[0].ID || told.alerts[0].Kind != FirstSeenHost ||
		told.alerts[0].Agent != "bot" || told.alerts[0].Observed != "paste.evil.example:443" {
		t.Fatalf("findings recorded %d, told %+v", len(evs), told.alerts)
	}
}

// toldFindings records the findings a Runner tells.
type toldFindings struct{ alerts []apitype.Alert }

func (f *toldFindings) NotifyFinding(a apitype.Alert) { f.alerts = append(f.alerts, a) }

// TestAlertsPages: the newest findings without a cursor; after a cursor, the findings right
// after it, so that a client paging with the last seq it saw skips none (fails when a page
// after a cursor is cut from its tail); an agent's findings are selected by the store, so its
// old ones are found behind a thousand newer findings of others (fails when the agent is
// filtered out of the newest thousand).
func TestAlertsPages(t *testing.T) {
	r := newRig(t)
	for i := range 5 {
		r.appendAll(t, []*warden.AuditEvent{{Type: warden.EventDetectPrefix + "first_seen_action",
			Actor:  warden.EventActor{Kind: warden.ActorSystem, Name: "warden-detect"},
			Target: warden.EventTarget{Tool: "mail", Action: fmt.Sprintf("a%d", i), Resource: "agent:bot", Arguments: []byte(`{"agent":"bot","detector":"first_seen_action"}`)}}})
	}
	s := &Service{Store: r.store, Clock: r.clk}
	page := func(after int64, limit int) (actions []string, seqs []int64) {
		t.Helper()
		as, err := s.Alerts(context.Background(), "bot", after, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			actions, seqs = append(actions, a.Action), append(seqs, a.Seq)
		}
		return actions, seqs
	}
	if newest, _ := page(0, 2); fmt.Sprint(newest) != "[a3 a4]" {
		t.Fatalf("the newest two: %v", newest)
	}
	_, seqs := page(0, 5)
	p1, s1 := page(seqs[0], 2)
	if fmt.Sprint(p1) != "[a1 a2]" {
		t.Fatalf("the page after a0: %v", p1)
	}
	if p2, _ := page(s1[len(s1)-1], 2); fmt.Sprint(p2) != "[a3 a4]" {
		t.Fatalf("the next page: %v", p2)
	}

	// A thousand and more findings of another agent since: the bot's are still found, by the
	// store, not cut from the newest thousand of everyone's.
	var others []*warden.AuditEvent
	for i := range 1100 {
		others = append(others, &warden.AuditEvent{ID: fmt.Sprintf("%026d", i), SchemaVersion: warden.AuditSchemaVersion, Time: r.clk.Now(),
			Type: warden.EventDetectPrefix + "rate_spike", Actor: warden.EventActor{Kind: warden.ActorSystem, Name: "warden-detect"},
			Target: warden.EventTarget{Tool: "mail", Action: "read", Resource: "agent:other", Arguments: []byte(`{"agent":"other","detector":"rate_spike"}`)}})
	}
	if err := r.store.AppendAuditEvents(context.Background(), others); err != nil {
		t.Fatal(err)
	}
	if newest, _ := page(0, 3); fmt.Sprint(newest) != "[a2 a3 a4]" {
		t.Fatalf("the bot's newest three after the other's findings: %v", newest)
	}
	if all, err := s.Alerts(context.Background(), "", 0, 0); err != nil || len(all) != maxAlerts || all[0].Agent != "other" {
		t.Fatalf("everyone's newest: %d findings, %v", len(all), err)
	}
	if _, err := s.Alerts(context.Background(), "bot' OR 1=1 --", 0, 0); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("an agent name that is no name: %v", err)
	}
}

// TestStaleEventsLearnedNotReported: a finding in a call older than an hour when the detector
// reads it is learned but neither recorded nor contained; one in a call 59 minutes old is both
// (fails when old events are acted on, and when the hour is measured the wrong way).
func TestStaleEventsLearnedNotReported(t *testing.T) {
	r := newRig(t)
	var week []*warden.AuditEvent
	for day := range 7 {
		week = append(week, workday(day)...)
	}
	r.appendAll(t, week)
	holds := NewHolds()
	run := &Runner{Store: r.store, Audit: r.log, Holds: holds, Replica: "r1", Clock: r.clk}
	drain := func() {
		t.Helper()
		for more := true; more; {
			var err error
			if more, err = run.Step(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	drain()
	before := r.head(t)
	now := r.clk.Now()
	r.appendAll(t, []*warden.AuditEvent{
		call(now.Add(-61*time.Minute), "vault", "export", "", warden.RiskHigh, warden.EffectAllow),
		call(now.Add(-59*time.Minute), "repo", "delete", "", warden.RiskHigh, warden.EffectAllow),
	})
	drain()
	evs, err := r.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "detect.*", AfterSeq: before})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Target.Tool != "repo" {
		t.Fatalf("findings %+v, want the 59-minute-old repo/delete alone", evs)
	}
	if holds.Held("bot", "vault", "export", "", now) || !holds.Held("bot", "repo", "delete", "", now) {
		t.Fatalf("holds %+v", holds.List(now))
	}
	b := run.det.Baseline("bot")
	if b.Actions["vault/export"] != 1 {
		t.Fatal("the old call was not learned")
	}
}

// TestOldBaselineLoads: a baseline stored before resources and argument keys were learned
// (JSON without those maps) loads and learns them (fails, with a write to a nil map, when the
// maps are not made on load).
func TestOldBaselineLoads(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := r.clk.Now()
	if _, ok, err := r.store.AcquireDetectLease(ctx, "old", now, now.Add(time.Second)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	old := `{"agent":"bot","since":"2026-03-02T09:00:00Z","last":"2026-03-08T17:00:00Z","calls":600,"actions":{"mail/read":600},"hosts":{},"transitions":{},"hour_of_week":[],"rate":{"mean":3,"var":0.1}}`
	if err := r.store.SaveDetectState(ctx, "old", 0, map[string][]byte{"bot": []byte(old)}, now); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(time.Minute)
	r.appendAll(t, []*warden.AuditEvent{read(r.clk.Now(), 1, warden.EffectAllow)})
	run := &Runner{Store: r.store, Audit: r.log, Replica: "r1", Clock: r.clk}
	if _, err := run.Step(ctx); err != nil {
		t.Fatal(err)
	}
	b := run.det.Baseline("bot")
	if b.Calls != 601 || b.Resources["mail/read /v1/messages/*"] != 1 || b.ArgumentKeys["mail/read id"] != 1 {
		t.Fatalf("the old baseline did not go on learning: %+v", b)
	}
}

// TestHostHoldCoversThatHost: with first_seen_host at approve, the hold of a new egress host
// covers the agent's connections to that host, not its other egress, on this replica and, read
// from the store, on another (fails when the hold leaves out the host, so that all egress is held).
func TestHostHoldCoversThatHost(t *testing.T) {
	r := newRig(t)
	var week []*warden.AuditEvent
	for day := range 7 {
		week = append(week, workday(day)...)
	}
	r.appendAll(t, week)
	holds := NewHolds()
	cfg := Config{Ladder: []config.DetectRule{{Detector: FirstSeenHost, Step: "approve"}}}
	run := &Runner{Store: r.store, Audit: r.log, Holds: holds, Replica: "r1", Clock: r.clk, Config: cfg}
	r.appendAll(t, []*warden.AuditEvent{call(r.clk.Now(), "egress", "connect", "paste.evil.example:443", warden.RiskMedium, warden.EffectAllow)})
	for more := true; more; {
		var err error
		if more, err = run.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	other := NewHolds() // another replica, reading the store
	stored, err := r.store.DetectHolds(context.Background(), r.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	other.Replace(stored)
	for name, h := range map[string]*Holds{"this replica": holds, "another replica": other} {
		if !h.Held("bot", "egress", "connect", "paste.evil.example:443", r.clk.Now()) {
			t.Errorf("%s: the new host is not held: %+v", name, h.List(r.clk.Now()))
		}
		if h.Held("bot", "egress", "connect", "api.example.com:443", r.clk.Now()) || h.Held("bot", "mail", "list", "mailbox:bot/inbox", r.clk.Now()) {
			t.Errorf("%s: the hold covers more than the host: %+v", name, h.List(r.clk.Now()))
		}
	}
}
