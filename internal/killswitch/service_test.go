package killswitch

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/sqlite"
)

// fakeCalls stands for the gateway's calls in flight: it records what it was told to cancel.
type fakeCalls struct {
	mu        sync.Mutex
	agents    []string
	tools     []string
	all       int
	cancelled chan struct{} // if set, receives (without blocking) on every CancelAll
}

func (c *fakeCalls) CancelAgent(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.agents = append(c.agents, id)
	return 2
}

func (c *fakeCalls) CancelTool(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tools = append(c.tools, name)
	return 1
}

func (c *fakeCalls) CancelAll() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all++
	if c.cancelled != nil {
		select {
		case c.cancelled <- struct{}{}:
		default:
		}
	}
	return 5
}

type fakeSessions struct{ closed []string }

func (s *fakeSessions) CloseAgentSessions(id string) int {
	s.closed = append(s.closed, id)
	return 1
}

type fakeApprovals struct{ agents, all []string }

func (a *fakeApprovals) RejectAgent(_ context.Context, id, reason string) (int, error) {
	a.agents = append(a.agents, id+": "+reason)
	return 3, nil
}

func (a *fakeApprovals) RejectAll(_ context.Context, reason string) (int, error) {
	a.all = append(a.all, reason)
	return 4, nil
}

type fakeTokens struct{}

func (fakeTokens) LiveSessions(string) int { return 6 }

// storeRegistry reloads the tools into the kill state, as the gateway's registry does.
type storeRegistry struct {
	store *sqlite.Store
	state *State
}

func (r storeRegistry) Load(ctx context.Context) error {
	tools, err := r.store.Tools(ctx)
	if err != nil {
		return err
	}
	r.state.SetTools(r.state.Ticket(), tools)
	return nil
}

type memAudit struct {
	mu  sync.Mutex
	evs []warden.AuditEvent
}

func (a *memAudit) Append(ctx context.Context, ev *warden.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err // as the real log does for a caller gone before the write
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, *ev)
	return nil
}

func (a *memAudit) last() warden.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.evs) == 0 {
		return warden.AuditEvent{}
	}
	return a.evs[len(a.evs)-1]
}

func (a *memAudit) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.evs)
}

type serviceEnv struct {
	svc       *Service
	store     *sqlite.Store
	path      string
	calls     *fakeCalls
	sessions  *fakeSessions
	approvals *fakeApprovals
	audit     *memAudit
	agent     *warden.Agent // the agent "bot", as created
	runner    *Runner
}

var admin = &warden.Principal{Name: "ops@example.com", Role: warden.RoleAdmin}

func newServiceEnv(t *testing.T) *serviceEnv {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := &serviceEnv{store: store, path: path, calls: &fakeCalls{}, sessions: &fakeSessions{}, approvals: &fakeApprovals{}, audit: &memAudit{}}
	for _, name := range []string{"bot", "other"} {
		a := &warden.Agent{ID: "agt_" + name, Name: name, Owner: "o@example.com", Purpose: "p", Status: warden.AgentActive,
			Epoch: 1, SecretHash: []byte("hash-of-" + name), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := store.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
		if name == "bot" {
			e.agent = a
		}
	}
	for _, tool := range []*warden.Tool{
		{Name: "wiki", Kind: warden.ToolHTTP, URL: "http://127.0.0.1:1", Risk: warden.RiskLow, Routes: []string{"GET / -> read"}},
		{Name: "payments", Kind: warden.ToolHTTP, URL: "http://127.0.0.1:1", Risk: warden.RiskHigh, Routes: []string{"POST / -> send"}},
	} {
		tool.CreatedAt, tool.UpdatedAt = now, now
		if err := store.CreateTool(ctx, tool); err != nil {
			t.Fatal(err)
		}
	}
	state := NewState()
	if err := state.LoadAgents(ctx, store.Agents); err != nil {
		t.Fatal(err)
	}
	runners := NewRunners()
	e.runner = runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_1", AgentID: "agt_bot", Agent: "bot"}})
	runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_2", AgentID: "agt_other", Agent: "other"}})
	e.svc = &Service{Store: store, State: state, Audit: e.audit, Calls: e.calls, Sessions: e.sessions, Approvals: e.approvals,
		Tokens: fakeTokens{}, Registry: storeRegistry{store, state}, Runners: runners, Log: slog.New(slog.DiscardHandler)}
	if err := e.svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// check is the kill state's answer for the agent "bot" holding a token of epoch.
func (e *serviceEnv) check(epoch int64, tool *warden.Tool) string {
	reason, _ := e.svc.State.Load().Check("agt_bot", epoch, tool, time.Now())
	return reason
}

// TestKill kills an agent against a real store: its identity is revoked in the store and in the
// kill state before Kill returns, everything it has running on this replica is ended, the kill
// is an audit event naming the person and the reason, and a second kill changes nothing.
func TestKill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	if e.check(1, nil) != "" {
		t.Fatal("the agent may not act before the kill")
	}
	r, err := e.svc.Kill(ctx, admin, "bot", "  exfiltrating data, INC-1  ", []string{"payments"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != warden.AgentKilled || r.Epoch != 2 || r.AlreadyKilled || r.AgentID != "agt_bot" {
		t.Errorf("report %+v; want killed, epoch 2", r)
	}
	if r.SessionsInvalidated != 6 || r.CallsCancelled != 2+1 || r.StreamsClosed != 1 || r.ApprovalsRejected != 3 || r.SandboxesStopped != 1 {
		t.Errorf("report %+v; want what each part ended counted", r)
	}
	if !slices.Equal(r.ToolsDisabled, []string{"payments"}) {
		t.Errorf("tools disabled %v; want payments", r.ToolsDisabled)
	}
	stored, err := e.store.Agent(ctx, "bot")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != warden.AgentKilled || stored.Epoch != 2 || stored.SecretHash != nil || stored.StatusReason != "exfiltrating data, INC-1" {
		t.Errorf("stored agent %+v; want killed, epoch 2, no secret, the trimmed reason", stored)
	}
	for _, epoch := range []int64{1, 2} {
		if reason := e.check(epoch, nil); reason != warden.ReasonAgentInactive {
			t.Errorf("a token of epoch %d after the kill: %q", epoch, reason)
		}
	}
	if reason, _ := e.svc.State.Load().Check("agt_other", 1, &warden.Tool{Name: "payments", Risk: warden.RiskHigh}, time.Now()); reason != warden.ReasonToolDisabled {
		t.Errorf("another agent calling the tool the kill disabled: %q", reason)
	}
	if reason, _ := e.svc.State.Load().Check("agt_other", 1, &warden.Tool{Name: "wiki"}, time.Now()); reason != "" {
		t.Errorf("another agent calling another tool: %q", reason)
	}
	if tool, _ := e.store.Tool(ctx, "payments"); !tool.Disabled {
		t.Error("the disabled tool is not disabled in the store")
	}
	if !slices.Equal(e.calls.agents, []string{"agt_bot"}) || !slices.Equal(e.calls.tools, []string{"payments"}) || e.calls.all != 0 {
		t.Errorf("cancelled agents %v, tools %v, all %d; want the agent's calls and the tool's", e.calls.agents, e.calls.tools, e.calls.all)
	}
	if !slices.Equal(e.sessions.closed, []string{"agt_bot"}) {
		t.Errorf("sessions closed for %v", e.sessions.closed)
	}
	if len(e.approvals.agents) != 1 || !strings.HasPrefix(e.approvals.agents[0], "agt_bot: agent killed: exfiltrating data") {
		t.Errorf("approvals rejected %v", e.approvals.agents)
	}
	select {
	case reason := <-e.runner.terminate:
		if !strings.Contains(reason, "exfiltrating data") {
			t.Errorf("the sandbox was told %q", reason)
		}
	default:
		t.Error("the agent's sandbox was not told to stop")
	}
	ev := e.audit.last()
	if ev.Type != warden.EventKillAgent || ev.Actor.Name != admin.Name || ev.Actor.Kind != warden.ActorHuman ||
		ev.Target.Resource != "agent:bot" || !strings.HasPrefix(ev.Decision.Message, "exfiltrating data, INC-1 (") {
		t.Errorf("audit event %+v; want kill.agent by %s on agent:bot with the reason", ev, admin.Name)
	}

	// Killing a killed agent reports the same state and changes nothing of it.
	events := e.audit.count()
	again, err := e.svc.Kill(ctx, admin, "bot", "again", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyKilled || again.Epoch != 2 || again.Status != warden.AgentKilled {
		t.Errorf("second kill %+v; want already killed, epoch 2", again)
	}
	if stored, _ := e.store.Agent(ctx, "bot"); stored.Epoch != 2 || stored.StatusReason != "exfiltrating data, INC-1" {
		t.Errorf("a second kill changed the agent: %+v", stored)
	}
	if e.audit.count() != events+1 {
		t.Error("the second kill was not recorded")
	}

	// A restart changes nothing: a state loaded afresh from the store refuses the agent.
	fresh := NewState()
	if err := fresh.LoadAgents(ctx, e.store.Agents); err != nil {
		t.Fatal(err)
	}
	if reason, _ := fresh.Load().Check("agt_bot", 1, nil, time.Now()); reason != warden.ReasonAgentInactive {
		t.Errorf("after a restart: %q", reason)
	}
}

// Bad input to a kill is refused with EInvalid or ENotFound and changes nothing.
func TestKillRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	for _, c := range []struct {
		name, agent, reason string
		tools               []string
		code                string
	}{
		{"no reason", "bot", "   ", nil, warden.EInvalid},
		{"reason too long", "bot", strings.Repeat("x", 1025), nil, warden.EInvalid},
		{"reason not text", "bot", "\xff\xfe", nil, warden.EInvalid},
		{"bad agent name", "../bot", "r", nil, warden.EInvalid},
		{"unknown agent", "ghost", "r", nil, warden.ENotFound},
		{"bad tool name", "bot", "r", []string{"a b"}, warden.EInvalid},
		{"unknown tool", "bot", "r", []string{"nope"}, warden.ENotFound},
	} {
		if _, err := e.svc.Kill(ctx, admin, c.agent, c.reason, c.tools); warden.ErrorCode(err) != c.code {
			t.Errorf("%s: %v; want %s", c.name, err, c.code)
		}
	}
	if stored, _ := e.store.Agent(ctx, "bot"); stored.Status != warden.AgentActive || stored.Epoch != 1 || !bytes.Equal(stored.SecretHash, []byte("hash-of-bot")) {
		t.Errorf("a refused kill changed the agent: %+v", stored)
	}
	if e.check(1, nil) != "" || e.audit.count() != 0 || len(e.calls.agents) != 0 {
		t.Error("a refused kill changed the kill state, recorded or cancelled something")
	}
}

// Restore brings a killed agent back in a new epoch with a new secret: tokens from before the
// kill stay dead. Only a killed agent is restored.
func TestRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	if _, err := e.svc.Restore(ctx, admin, "bot", "r", []byte("new")); warden.ErrorCode(err) != warden.EConflict {
		t.Fatalf("restoring an active agent: %v; want a conflict", err)
	}
	if _, err := e.svc.Kill(ctx, admin, "bot", "r", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Restore(ctx, admin, "bot", "", []byte("new")); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a restore without a reason: %v", err)
	}
	a, err := e.svc.Restore(ctx, admin, "bot", "false alarm", []byte("new-hash"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != warden.AgentActive || a.Epoch != 3 || !bytes.Equal(a.SecretHash, []byte("new-hash")) || a.StatusReason != "" {
		t.Errorf("restored agent %+v; want active, epoch 3, the new secret", a)
	}
	for epoch, want := range map[int64]string{1: warden.ReasonStaleEpoch, 2: warden.ReasonStaleEpoch, 3: ""} {
		if got := e.check(epoch, nil); got != want {
			t.Errorf("a token of epoch %d after the restore: %q; want %q", epoch, got, want)
		}
	}
	if ev := e.audit.last(); ev.Type != warden.EventRestoreAgent || ev.Target.Resource != "agent:bot" || ev.Decision.Message != "false alarm" {
		t.Errorf("audit event %+v", ev)
	}
	if _, err := e.svc.Restore(ctx, admin, "bot", "twice", []byte("x")); warden.ErrorCode(err) != warden.EConflict {
		t.Errorf("restoring a restored agent: %v; want a conflict", err)
	}
}

// A full lockdown denies every agent everything and ends everything running; it survives a
// restart; lifting it lets agents act again. Lifting twice is a conflict.
func TestLockdownAndLift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	if _, err := e.svc.Lift(ctx, admin, "nothing to lift"); warden.ErrorCode(err) != warden.EConflict {
		t.Fatalf("lifting no lockdown: %v; want a conflict", err)
	}
	if _, err := e.svc.Lockdown(ctx, admin, "", ""); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a lockdown without a reason: %v", err)
	}
	if _, err := e.svc.Lockdown(ctx, admin, "r", "extreme"); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a lockdown from an unknown risk: %v", err)
	}
	r, err := e.svc.Lockdown(ctx, admin, "breach", "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Lockdown == nil || !r.Lockdown.Active || r.Lockdown.By != admin.Name || r.CallsCancelled != 5 || r.ApprovalsRejected != 4 || r.SandboxesStopped != 2 {
		t.Errorf("report %+v; want every call, approval and sandbox ended", r)
	}
	if len(e.sessions.closed) != 2 {
		t.Errorf("sessions closed for %v; want both agents", e.sessions.closed)
	}
	if e.check(1, nil) != warden.ReasonLockdown || e.check(1, &warden.Tool{Name: "wiki", Risk: warden.RiskLow}) != warden.ReasonLockdown {
		t.Error("an agent may act in a full lockdown")
	}
	if ev := e.audit.last(); ev.Type != warden.EventLockdown || !strings.HasPrefix(ev.Decision.Message, "breach (") {
		t.Errorf("audit event %+v", ev)
	}

	// Another replica, or this one restarted, loads it from the store.
	other := &Service{Store: e.store, State: NewState()}
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if l := other.State.Load().Lockdown(); !l.Active || l.Reason != "breach" {
		t.Errorf("the lockdown after a restart: %+v", l)
	}

	l, err := e.svc.Lift(ctx, admin, "contained")
	if err != nil {
		t.Fatal(err)
	}
	if l.Active || e.check(1, nil) != "" {
		t.Errorf("after the lift: %+v, check %q", l, e.check(1, nil))
	}
	if ev := e.audit.last(); ev.Type != warden.EventLockdownLift || ev.Decision.Message != "contained" {
		t.Errorf("audit event %+v", ev)
	}
	if stored, _ := e.store.Lockdown(ctx); stored.Active {
		t.Error("the lift is not stored")
	}
	if _, err := e.svc.Lift(ctx, admin, "again"); warden.ErrorCode(err) != warden.EConflict {
		t.Errorf("lifting twice: %v; want a conflict", err)
	}
}

// A lockdown from a risk up denies and cancels only the calls to tools of that risk or more,
// and leaves agents, sandboxes and approvals alone.
func TestLockdownFromRisk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	r, err := e.svc.Lockdown(ctx, admin, "payments incident", warden.RiskHigh)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.calls.tools, []string{"payments"}) || e.calls.all != 0 || r.CallsCancelled != 1 {
		t.Errorf("cancelled tools %v, all %d, report %+v; want payments only", e.calls.tools, e.calls.all, r)
	}
	if r.SandboxesStopped != 0 || r.ApprovalsRejected != 0 || len(e.sessions.closed) != 0 {
		t.Errorf("report %+v, sessions closed %v; want nothing else ended", r, e.sessions.closed)
	}
	if e.check(1, &warden.Tool{Name: "payments", Risk: warden.RiskHigh}) != warden.ReasonLockdown {
		t.Error("a high-risk call in a lockdown from high")
	}
	if e.check(1, &warden.Tool{Name: "wiki", Risk: warden.RiskLow}) != "" {
		t.Error("a low-risk call refused in a lockdown from high")
	}
}

// Run carries a lockdown another replica stored to this one and ends what it covers here.
func TestRunPicksUpAnotherReplicasLockdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	e := newServiceEnv(t)
	clk := clock.NewFake(time.Now())
	e.svc.Clock = clk
	e.calls.cancelled = make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx, 10*time.Millisecond) }()
	other := &Service{Store: e.store, State: NewState(), Audit: &memAudit{}, Calls: &fakeCalls{}, Log: slog.New(slog.DiscardHandler)}
	if _, err := other.Lockdown(ctx, admin, "from the other replica", ""); err != nil {
		t.Fatal(err)
	}
	if err := clk.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}
	if e.check(1, nil) == warden.ReasonLockdown {
		t.Fatal("the other replica's lockdown arrived before this one reloaded")
	}
	clk.Advance(10 * time.Millisecond)
	select {
	case <-e.calls.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the lockdown did not arrive, or arrived but nothing was cancelled here")
	}
	if e.check(1, nil) != warden.ReasonLockdown {
		t.Fatal("calls were cancelled here but the lockdown is not in this replica's state")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// Quarantine takes a digest out of use on every replica; a malformed digest is refused and
// changes nothing; quarantining twice is harmless.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, bad := range []string{"", "sha256:", "sha256:" + strings.Repeat("AB", 32), "md5:" + strings.Repeat("ab", 32), "sha256:" + strings.Repeat("ab", 31), "sha256:" + strings.Repeat("ag", 32)} {
		if _, err := e.svc.Quarantine(ctx, admin, bad, "r"); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("digest %q: %v; want invalid", bad, err)
		}
	}
	if _, err := e.svc.Quarantine(ctx, admin, digest, " "); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("no reason: %v", err)
	}
	if qs, _ := e.store.Quarantined(ctx); len(qs) != 0 || e.audit.count() != 0 {
		t.Fatalf("refused quarantines stored %v", qs)
	}
	q, err := e.svc.Quarantine(ctx, admin, digest, "malicious skill")
	if err != nil {
		t.Fatal(err)
	}
	if q.Digest != digest || q.By != admin.Name || !e.svc.State.Load().Quarantined(digest) {
		t.Errorf("quarantine %+v; want it in the kill state", q)
	}
	if ev := e.audit.last(); ev.Type != warden.EventQuarantine || ev.Target.Resource != "skill:"+digest {
		t.Errorf("audit event %+v", ev)
	}
	if _, err := e.svc.Quarantine(ctx, admin, digest, "again"); err != nil {
		t.Errorf("quarantining twice: %v", err)
	}
	other := &Service{Store: e.store, State: NewState()}
	if err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if !other.State.Load().Quarantined(digest) || other.State.Load().Quarantined("sha256:"+strings.Repeat("cd", 32)) {
		t.Error("another replica does not see exactly the quarantined digest")
	}
}

// A quarantine stops, before it returns, the sandboxes that mounted a skill of the digest and
// no other, counts them in its report and its audit event; a second quarantine stops nothing.
func TestQuarantineStopsSandboxes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newServiceEnv(t)
	digest, other := "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	mounted := e.svc.Runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_3", AgentID: "agt_other", Agent: "other",
		Skills: []apitype.RunnerSkill{{Name: "pdf", Digest: other}, {Name: "notes", Digest: digest}}}})
	unmounted := e.svc.Runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_4", AgentID: "agt_bot", Agent: "bot",
		Skills: []apitype.RunnerSkill{{Name: "pdf", Digest: other}}}})
	e.svc.Baseline()
	q, err := e.svc.Quarantine(ctx, admin, digest, "exfiltrates files")
	if err != nil {
		t.Fatal(err)
	}
	if q.SandboxesStopped != 1 {
		t.Errorf("report says %d sandboxes stopped; want 1", q.SandboxesStopped)
	}
	select {
	case reason := <-mounted.terminate:
		if !strings.Contains(reason, "quarantined: "+digest) {
			t.Errorf("the sandbox was told %q", reason)
		}
	default:
		t.Error("the sandbox that mounted the skill was not told to stop")
	}
	for _, r := range []*Runner{unmounted, e.runner} {
		select {
		case reason := <-r.terminate:
			t.Errorf("runner %s, which did not mount the skill, was told %q", r.ID, reason)
		default:
		}
	}
	if ev := e.audit.last(); !strings.Contains(ev.Decision.Message, "sandboxes stopped 1") {
		t.Errorf("audit message %q", ev.Decision.Message)
	}
	if q, err := e.svc.Quarantine(ctx, admin, digest, "again"); err != nil || q.SandboxesStopped != 0 {
		t.Errorf("quarantining again: %+v, %v; want nothing stopped", q, err)
	}
}
