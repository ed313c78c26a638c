package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/sqlite"
)

// Live: the agent may get and create items. The candidate lets it create items only, so every
// get is a difference (allow → deny) and no create is.
const (
	shadowLive      = permitAll + "\n" + `permit(principal == Agent::"bot", action == Action::"api:items.create", resource);`
	shadowCandidate = `permit(principal == Agent::"bot", action == Action::"api:items.create", resource);`
)

type countingShadowObserver struct{ diffs, dropped atomic.Int32 }

func (o *countingShadowObserver) ShadowDiff(live, shadow string) {
	if live == warden.EffectAllow && shadow == warden.EffectDeny {
		o.diffs.Add(1)
	}
}
func (o *countingShadowObserver) ShadowDropped() { o.dropped.Add(1) }

// newShadowEnv is the failure environment with the shadowLive policies in force and
// shadowCandidate as the candidate, compared by a Shadow with a queue of size that nothing
// drains yet.
func newShadowEnv(t *testing.T, size int) (*failureEnv, *gateway.Shadow, *countingShadowObserver) {
	t.Helper()
	env := newFailureEnv(t, shadowLive)
	if err := env.store.PutPolicyShadow(t.Context(), &warden.PolicyShadow{Files: map[string]string{"c.cedar": shadowCandidate}, Base: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := env.reg.ShadowVersion(); got != 1 {
		t.Fatalf("ShadowVersion() = %d after the candidate was loaded, want 1", got)
	}
	obs := &countingShadowObserver{}
	sh := gateway.NewShadow(env.audit, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, obs, size)
	env.gw.Shadow = sh
	return env, sh, obs
}

// call makes one call through the HTTP gateway and returns its status; the call must be
// answered within 5 s whatever the shadow's queue holds.
func (e *failureEnv) call(t *testing.T, method, path, body string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// drain runs the shadow's writer until it has appended what is queued, and stops it.
func drain(t *testing.T, sh *gateway.Shadow) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sh.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestShadowDiffs: a candidate that denies what the live set allows changes nothing for the
// caller — every call goes upstream — and each call it decides otherwise is one
// policy.shadow_diff event naming the call's decision, the live and the candidate's decision,
// and the candidate's version; calls both decide alike are compared and not recorded.
func TestShadowDiffs(t *testing.T) {
	env, sh, obs := newShadowEnv(t, 0)
	const gets, creates = 5, 3
	for range gets {
		if got := env.call(t, "GET", "/http/api/items/7", ""); got != http.StatusOK {
			t.Fatalf("GET: status %d, want 200: the candidate must not decide", got)
		}
	}
	for range creates {
		if got := env.call(t, "POST", "/http/api/items", `{"name":"x"}`); got != http.StatusOK {
			t.Fatalf("POST: status %d, want 200", got)
		}
	}
	if got := env.upstream.Load(); got != gets+creates {
		t.Fatalf("%d calls reached the upstream, want %d", got, gets+creates)
	}
	drain(t, sh)

	calls := map[string]bool{}
	for _, ev := range env.audit.events(warden.EventToolCall, false) {
		if ev.Target.Action == "items.get" {
			calls[ev.Decision.ID] = true
		}
	}
	diffs := env.audit.events(warden.EventPolicyShadowDiff, false)
	if len(diffs) != gets {
		t.Fatalf("%d policy.shadow_diff events, want %d (one per get, none per create)", len(diffs), gets)
	}
	for _, ev := range diffs {
		var sd warden.PolicyShadowDecision
		if err := json.Unmarshal(ev.Target.Arguments, &sd); err != nil {
			t.Fatal(err)
		}
		switch {
		case !calls[ev.Decision.ID]:
			t.Errorf("difference %s names no get's decision", ev.Decision.ID)
		case ev.Actor.Name != "bot" || ev.Target.Tool != "api" || ev.Target.Action != "items.get" || ev.Target.Resource != "item:7":
			t.Errorf("difference of %+v %+v, want bot's get of item:7", ev.Actor, ev.Target)
		case ev.Decision.Effect != warden.EffectAllow || ev.Decision.Reason != warden.ReasonPolicyAllow || len(ev.Decision.Policies) == 0 || ev.Decision.PolicyVersion != 1:
			t.Errorf("live decision %+v, want allow by policy version 1", ev.Decision)
		case sd.Effect != warden.EffectDeny || sd.Reason == "" || sd.ShadowVersion != 1:
			t.Errorf("candidate's decision %+v, want deny by shadow version 1", sd)
		}
	}
	st := sh.Stats()
	if st.Version != 1 || st.Compared != gets+creates || st.Diffs != gets || st.Dropped != 0 {
		t.Errorf("stats %+v, want version 1, %d compared, %d diffs, none dropped", st, gets+creates, gets)
	}
	if obs.diffs.Load() != gets || obs.dropped.Load() != 0 {
		t.Errorf("observer counted %d allow→deny diffs and %d drops, want %d and 0", obs.diffs.Load(), obs.dropped.Load(), gets)
	}
}

// TestShadowNeverBlocks: with a full queue the call is answered at once and the difference is
// counted as dropped — in the stats, the observer and a policy.shadow_dropped event — never
// lost silently and never waited for.
func TestShadowNeverBlocks(t *testing.T) {
	env, sh, obs := newShadowEnv(t, 1)
	for range 3 {
		if got := env.call(t, "GET", "/http/api/items/7", ""); got != http.StatusOK {
			t.Fatalf("GET: status %d, want 200", got)
		}
	}
	st := sh.Stats()
	if st.Diffs != 3 || st.Dropped != 2 || obs.dropped.Load() != 2 {
		t.Fatalf("stats %+v and %d observed drops, want 3 diffs of which 2 dropped", st, obs.dropped.Load())
	}
	drain(t, sh)
	if got := len(env.audit.events(warden.EventPolicyShadowDiff, false)); got != 1 {
		t.Errorf("%d differences recorded, want the 1 queued", got)
	}
	dropped := env.audit.events(warden.EventPolicyShadowDropped, false)
	if len(dropped) != 1 || string(dropped[0].Target.Arguments) != `{"dropped":2,"shadow_version":1}` {
		t.Fatalf("policy.shadow_dropped events %+v, want one counting 2 of version 1", dropped)
	}
}

// TestShadowCandidateNotCompiling: a candidate that no longer compiles against the tools is not
// compared, and the live set still loads and decides.
func TestShadowCandidateNotCompiling(t *testing.T) {
	env, sh, _ := newShadowEnv(t, 0)
	if err := env.store.PutPolicyShadow(t.Context(), &warden.PolicyShadow{Files: map[string]string{"c.cedar": `permit(principal, action == Action::"gone:x", resource);`}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Load(t.Context()); err != nil {
		t.Fatalf("the live set failed to load beside a candidate that does not compile: %v", err)
	}
	if got := env.reg.ShadowVersion(); got != 0 {
		t.Fatalf("ShadowVersion() = %d, want 0: the candidate does not compile", got)
	}
	if got := env.call(t, "GET", "/http/api/items/7", ""); got != http.StatusOK {
		t.Fatalf("GET: status %d, want 200", got)
	}
	if st := sh.Stats(); st.Compared != 0 {
		t.Errorf("%d calls compared with a candidate that does not compile", st.Compared)
	}
	// Said once, not at every reload.
	var logged strings.Builder
	reg := gateway.NewRegistry(env.store, slog.New(slog.NewTextHandler(&logged, nil)))
	for range 3 {
		if err := reg.Load(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logged.String(), "does not compile"); n != 1 {
		t.Errorf("the candidate that does not compile was logged %d times over 3 reloads, want once:\n%s", n, logged.String())
	}
}

// TestShadowReasonDiff: a candidate that allows what the live set allows, for another reason
// (it waives approval), is a difference too: the effect alike, the reason not.
func TestShadowReasonDiff(t *testing.T) {
	env, sh, _ := newShadowEnv(t, 0)
	if err := env.store.PutPolicyShadow(t.Context(), &warden.PolicyShadow{Files: map[string]string{"c.cedar": `@approval("waived") ` + shadowLive}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := env.reg.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := env.call(t, "GET", "/http/api/items/7", ""); got != http.StatusOK {
		t.Fatalf("GET: status %d, want 200", got)
	}
	drain(t, sh)
	diffs := env.audit.events(warden.EventPolicyShadowDiff, false)
	if len(diffs) != 1 {
		t.Fatalf("%d differences, want 1", len(diffs))
	}
	var sd warden.PolicyShadowDecision
	if err := json.Unmarshal(diffs[0].Target.Arguments, &sd); err != nil {
		t.Fatal(err)
	}
	if diffs[0].Decision.Effect != warden.EffectAllow || sd.Effect != warden.EffectAllow || sd.Reason != warden.ReasonApprovalWaived || sd.ShadowVersion != 2 {
		t.Errorf("difference live %+v, candidate %+v; want allow and allow (approval_waived) of version 2", diffs[0].Decision, sd)
	}
}

// gatedAudit holds the first policy.shadow_diff append until gate is closed, and says when it
// is held.
type gatedAudit struct {
	*recordingAudit
	held chan struct{}
	gate chan struct{}
	once atomic.Bool
}

func (a *gatedAudit) Append(ctx context.Context, ev *warden.AuditEvent) error {
	if ev.Type == warden.EventPolicyShadowDiff && a.once.CompareAndSwap(false, true) {
		close(a.held)
		<-a.gate
	}
	return a.recordingAudit.Append(ctx, ev)
}

// TestShadowReportsDropsEveryInterval: while the writer is stuck on the audit log, the calls go
// on and what does not fit the queue is dropped; the writer records the count at its next
// DropReportInterval, while it runs, not only when it stops.
func TestShadowReportsDropsEveryInterval(t *testing.T) {
	env, _, _ := newShadowEnv(t, 1)
	fake := clock.NewFake(time.Now())
	audit := &gatedAudit{recordingAudit: env.audit, held: make(chan struct{}), gate: make(chan struct{})}
	sh := gateway.NewShadow(audit, slog.New(slog.NewTextHandler(io.Discard, nil)), fake, nil, 1)
	env.gw.Shadow = sh
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = sh.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := fake.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}

	env.call(t, "GET", "/http/api/items/7", "")
	<-audit.held // the writer holds the first difference
	for range 3 {
		if got := env.call(t, "GET", "/http/api/items/7", ""); got != http.StatusOK {
			t.Fatalf("GET while the writer is stuck: %d, want 200", got)
		}
	}
	if st := sh.Stats(); st.Dropped != 2 {
		t.Fatalf("stats %+v: want 2 dropped (one queued, one held)", st)
	}
	close(audit.gate)
	fake.Advance(gateway.DropReportInterval)
	deadline := time.Now().Add(5 * time.Second)
	for len(env.audit.events(warden.EventPolicyShadowDropped, false)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no policy.shadow_dropped event a DropReportInterval after the drops")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ev := env.audit.events(warden.EventPolicyShadowDropped, false)[0]; string(ev.Target.Arguments) != `{"dropped":2,"shadow_version":1}` {
		t.Errorf("policy.shadow_dropped %s, want 2 of version 1", ev.Target.Arguments)
	}
	if got := len(env.audit.events(warden.EventPolicyShadowDiff, false)); got != 2 {
		t.Errorf("%d differences recorded, want the held one and the queued one", got)
	}
}

// TestShadowDropReportRetried: a policy.shadow_dropped event the audit log refuses is not lost —
// its count is carried by the next report.
func TestShadowDropReportRetried(t *testing.T) {
	env, sh, _ := newShadowEnv(t, 1)
	refused := 0
	env.audit.fail = func(ev *warden.AuditEvent) bool {
		if ev.Type == warden.EventPolicyShadowDropped && refused == 0 {
			refused++
			return true
		}
		return false
	}
	for range 3 {
		env.call(t, "GET", "/http/api/items/7", "") // one queued, two dropped: nothing drains yet
	}
	sh.Flush(t.Context())
	if got := len(env.audit.events(warden.EventPolicyShadowDropped, true)); got != 1 || refused != 1 {
		t.Fatalf("%d policy.shadow_dropped appends tried, want the one refused", got)
	}
	sh.Flush(t.Context())
	kept := env.audit.events(warden.EventPolicyShadowDropped, false)
	if len(kept) != 1 || string(kept[0].Target.Arguments) != `{"dropped":2,"shadow_version":1}` {
		t.Fatalf("after the refused report: %+v, want one event of the 2 dropped", kept)
	}
}

// unreadableShadowStore is a store whose candidate policy set cannot be read while fail is set.
type unreadableShadowStore struct {
	*sqlite.Store
	fail atomic.Bool
}

func (s *unreadableShadowStore) PolicyShadow(ctx context.Context) (*warden.PolicyShadow, error) {
	if s.fail.Load() {
		return nil, errors.New("database unreachable")
	}
	return s.Store.PolicyShadow(ctx)
}

// TestShadowUnreadableKeepsCandidate: a reload that cannot read the candidate keeps comparing
// with the one loaded before, and still loads the live set.
func TestShadowUnreadableKeepsCandidate(t *testing.T) {
	env, _, _ := newShadowEnv(t, 0)
	store := &unreadableShadowStore{Store: env.store}
	reg := gateway.NewRegistry(store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := reg.Load(t.Context()); err != nil || reg.ShadowVersion() != 1 {
		t.Fatalf("first load: %v, shadow version %d, want 1", err, reg.ShadowVersion())
	}
	store.fail.Store(true)
	if err := reg.Load(t.Context()); err != nil {
		t.Fatalf("a reload whose candidate cannot be read failed: %v", err)
	}
	if got := reg.ShadowVersion(); got != 1 {
		t.Fatalf("after a reload that could not read the candidate, shadow version %d, want 1 kept", got)
	}
}
