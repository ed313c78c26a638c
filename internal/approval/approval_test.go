package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/sqlite"
)

// recorder is the audit log: it keeps what it is given, and fails when told to.
type recorder struct {
	mu      sync.Mutex
	evs     []*warden.AuditEvent
	fail    bool
	changed chan struct{} // closed and replaced on every append, for tests waiting on one
}

func (r *recorder) Append(_ context.Context, ev *warden.AuditEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("audit log down")
	}
	r.evs = append(r.evs, ev)
	if r.changed != nil {
		close(r.changed)
	}
	r.changed = make(chan struct{})
	return nil
}

// appended returns a channel closed on the next append.
func (r *recorder) appended() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// waitFor waits until the events of request id include one of type typ; a request changes
// only with an event on record, so this waits on the change itself rather than on time.
func (r *recorder) waitFor(t *testing.T, id, typ string) {
	t.Helper()
	giveUp := time.After(5 * time.Second)
	for {
		next := r.appended()
		if slices.Contains(types(r.of(id)), typ) {
			return
		}
		select {
		case <-next:
		case <-giveUp:
			t.Fatalf("no %s event for %s; events: %v", typ, id, types(r.of(id)))
		}
	}
}

func (r *recorder) setFail(v bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = v
}

// of returns the events of a request, in order.
func (r *recorder) of(id string) []*warden.AuditEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*warden.AuditEvent
	for _, ev := range r.evs {
		if ev.Decision.ID == id {
			out = append(out, ev)
		}
	}
	return out
}

func types(evs []*warden.AuditEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

type fixture struct {
	t     *testing.T
	store *sqlite.Store
	audit *recorder
	svc   *approval.Service
	clock *clock.Fake // nil: the services run on the real clock
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newFixture(t *testing.T, opts approval.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, store: openStore(t), audit: &recorder{}}
	f.svc = f.service(opts)
	return f
}

// newFakeFixture is newFixture on a fake clock, which only the test moves: its replicas share it.
func newFakeFixture(t *testing.T, opts approval.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, store: openStore(t), audit: &recorder{}, clock: clock.NewFake(time.Now())}
	f.svc = f.service(opts)
	return f
}

// armed waits until n timers are armed on the fake clock: a held call arms three (its hold,
// poll and expiry), Run one (its sweep).
func (f *fixture) armed(n int) {
	f.t.Helper()
	if err := f.clock.WaitForTimers(n); err != nil {
		f.t.Fatal(err)
	}
}

// service is another replica on the same store.
func (f *fixture) service(opts approval.Options) *approval.Service {
	if opts.Clock == nil && f.clock != nil {
		opts.Clock = f.clock
	}
	if opts.Hold == 0 {
		opts.Hold = 5 * time.Second
	}
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	return approval.New(f.store, f.audit, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
}

var (
	agent    = &warden.Agent{ID: "agt_1", Name: "pay-bot", Owner: "alice@example.com"}
	bank     = &warden.Tool{Name: "bank", Kind: warden.ToolMCP, Risk: warden.RiskHigh}
	vault    = &warden.Tool{Name: "vault", Kind: warden.ToolMCP, Risk: warden.RiskCritical}
	approver = &warden.Principal{Name: "carol", Role: warden.RoleApprover, Email: "carol@example.com"}
	operator = &warden.Principal{Name: "dave", Role: warden.RoleOperator, Email: "dave@example.com"}
)

func call(tool *warden.Tool, digest string) *gateway.ApprovalRequest {
	return &gateway.ApprovalRequest{
		DecisionID: "dec_" + digest, Agent: agent, SessionID: "ses_1", OnBehalfOf: "bob@example.com",
		Tool: tool, Action: "transfer", Resource: "account:42", ArgsSHA256: digest,
		Arguments: json.RawMessage(`{"amount":"900","token":"[REDACTED]"}`), PolicyVersion: 3, Reason: warden.ApprovalByRisk,
	}
}

type awaited struct {
	res gateway.ApprovalResult
	err error
}

// await runs Await in the background.
func (f *fixture) await(ctx context.Context, svc *approval.Service, req *gateway.ApprovalRequest) <-chan awaited {
	ch := make(chan awaited, 1)
	go func() {
		res, err := svc.Await(ctx, req)
		ch <- awaited{res, err}
	}()
	return ch
}

func (f *fixture) result(ch <-chan awaited, within time.Duration) gateway.ApprovalResult {
	f.t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			f.t.Fatalf("Await: %v", a.err)
		}
		return a.res
	case <-time.After(within):
		f.t.Fatalf("Await did not return within %v", within)
		return gateway.ApprovalResult{}
	}
}

// pending waits until there are n pending requests and returns them. A request is made or
// decided with an audit event, so it reads again after each event instead of after a sleep.
func (f *fixture) pending(n int) []*warden.Approval {
	f.t.Helper()
	giveUp := time.After(5 * time.Second)
	for {
		next := f.audit.appended()
		list, err := f.store.Approvals(context.Background(), warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending}})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(list) == n {
			return list
		}
		select {
		case <-next:
		case <-giveUp:
			f.t.Fatalf("%d pending requests, want %d", len(list), n)
		}
	}
}

func TestApprovedWhileHeld(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{})
	ch := f.await(t.Context(), f.svc, call(bank, "d1"))
	req := f.pending(1)[0]
	if req.AgentName != "pay-bot" || req.Owner != "alice@example.com" || req.OnBehalfOf != "bob@example.com" || req.Required != 1 ||
		req.Risk != warden.RiskHigh || req.Reason != warden.ApprovalByRisk || req.PolicyVersion != 3 || !strings.Contains(string(req.Arguments), "[REDACTED]") {
		t.Fatalf("request: %+v", req)
	}
	start := time.Now()
	a, err := f.svc.Approve(t.Context(), approver, req.ID, "looks right")
	if err != nil || a.Status != warden.ApprovalApproved {
		t.Fatalf("Approve: %+v, %v", a, err)
	}
	res := f.result(ch, time.Second)
	if res.State != warden.ApprovalApproved || res.RequestID != req.ID || !slices.Equal(res.Approvers, []string{"carol"}) || res.Message != "looks right" {
		t.Fatalf("result: %+v", res)
	}
	// In-memory notification, not the poll, woke the call.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the decision took %v to reach the waiting call", d)
	}
	got, _ := f.store.Approval(t.Context(), req.ID)
	if got.Status != warden.ApprovalUsed || got.UsedAt.IsZero() {
		t.Fatalf("after use: %+v", got)
	}
	evs := f.audit.of(req.ID)
	if !slices.Equal(types(evs), []string{warden.EventApprovalRequested, warden.EventApprovalApproved, warden.EventApprovalUsed}) {
		t.Fatalf("events: %v", types(evs))
	}
	if evs[0].Actor.Kind != warden.ActorAgent || evs[0].Actor.Name != "pay-bot" || evs[0].Actor.Owner != "alice@example.com" || evs[0].Target.Risk != warden.RiskHigh {
		t.Errorf("requested event: %+v", evs[0])
	}
	if evs[1].Actor.Kind != warden.ActorHuman || evs[1].Actor.Name != "carol" || evs[1].Actor.Role != "approver" || evs[1].Decision.Effect != warden.EffectApproved {
		t.Errorf("approved event: %+v", evs[1])
	}
	if evs[2].Actor.Name != "pay-bot" || !strings.Contains(evs[2].Decision.Message, "carol") {
		t.Errorf("used event: %+v", evs[2])
	}
}

// Nobody decides within the hold: the answer is pending; once approved, the same call sent again
// goes ahead once; sent a third time it waits for a new approval.
func TestPendingThenResent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{Hold: 100 * time.Millisecond})
	res := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), 2*time.Second)
	if res.State != warden.ApprovalPending || !strings.HasPrefix(res.RequestID, "apr_") {
		t.Fatalf("first send: %+v", res)
	}
	if _, err := f.svc.Approve(t.Context(), approver, res.RequestID, ""); err != nil {
		t.Fatal(err)
	}
	// Other arguments are another call: a new request, which the approval does not cover.
	other := f.result(f.await(t.Context(), f.svc, call(bank, "d2")), 2*time.Second)
	if other.State != warden.ApprovalPending || other.RequestID == res.RequestID {
		t.Fatalf("other arguments: %+v", other)
	}
	again := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), 2*time.Second)
	if again.State != warden.ApprovalApproved || again.RequestID != res.RequestID {
		t.Fatalf("resent after approval: %+v", again)
	}
	replay := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), 2*time.Second)
	if replay.State != warden.ApprovalPending || replay.RequestID == res.RequestID {
		t.Fatalf("replayed: %+v; want a new pending request", replay)
	}
	// The binding covers session, policy version and agent too.
	for name, edit := range map[string]func(r *gateway.ApprovalRequest){
		"session":        func(r *gateway.ApprovalRequest) { r.SessionID = "ses_2" },
		"policy version": func(r *gateway.ApprovalRequest) { r.PolicyVersion = 4 },
		"resource":       func(r *gateway.ApprovalRequest) { r.Resource = "account:43" },
		"agent": func(r *gateway.ApprovalRequest) {
			r.Agent = &warden.Agent{ID: "agt_2", Name: "other", Owner: "x@example.com"}
		},
	} {
		r := call(bank, "d1")
		edit(r)
		if got := f.result(f.await(t.Context(), f.svc, r), 2*time.Second); got.State != warden.ApprovalPending || got.RequestID == replay.RequestID {
			t.Errorf("another %s: %+v; want its own pending request", name, got)
		}
	}
}

// TestBindingCoversOnBehalfOf: an agent acting for several people, in one session, asks the
// same call for alice and for bob. An approval of alice's call does not run bob's: the person
// acted for is part of the binding (issue 12).
func TestBindingCoversOnBehalfOf(t *testing.T) {
	f := newFixture(t, approval.Options{Hold: 100 * time.Millisecond})
	forAlice, forBob := call(bank, "d1"), call(bank, "d1")
	forAlice.OnBehalfOf, forBob.OnBehalfOf = "alice@example.com", "bob@example.com"
	first := f.result(f.await(t.Context(), f.svc, forAlice), 2*time.Second)
	if first.State != warden.ApprovalPending {
		t.Fatalf("alice's call: %+v", first)
	}
	if _, err := f.svc.Approve(t.Context(), approver, first.RequestID, "for alice"); err != nil {
		t.Fatal(err)
	}
	bob := f.result(f.await(t.Context(), f.svc, forBob), 2*time.Second)
	if bob.State != warden.ApprovalPending || bob.RequestID == first.RequestID {
		t.Fatalf("bob's identical call in the same session: %+v; want its own pending request", bob)
	}
	if got, _ := f.store.Approval(t.Context(), bob.RequestID); got == nil || got.OnBehalfOf != "bob@example.com" {
		t.Fatalf("bob's request: %+v", got)
	}
	if alice := f.result(f.await(t.Context(), f.svc, forAlice), 2*time.Second); alice.State != warden.ApprovalApproved || alice.RequestID != first.RequestID {
		t.Fatalf("alice's call after the approval: %+v", alice)
	}
}

// TestRecordedActionAndResource: a request stores and records the action and resource as the
// audit log does (brokered secrets redacted), yet stays bound to them as the agent sent them.
func TestRecordedActionAndResource(t *testing.T) {
	f := newFixture(t, approval.Options{Hold: 100 * time.Millisecond})
	sent := call(bank, "d1")
	sent.Resource, sent.RecordedResource = "account:s3cret-value", "account:[REDACTED]"
	first := f.result(f.await(t.Context(), f.svc, sent), 2*time.Second)
	got, err := f.store.Approval(t.Context(), first.RequestID)
	if err != nil || got.Resource != "account:[REDACTED]" || got.Action != "transfer" {
		t.Fatalf("stored request: %+v, %v", got, err)
	}
	for _, ev := range f.audit.of(first.RequestID) {
		if ev.Target.Resource != "account:[REDACTED]" {
			t.Errorf("%s event: resource %q", ev.Type, ev.Target.Resource)
		}
	}
	if _, err := f.svc.Approve(t.Context(), approver, first.RequestID, ""); err != nil {
		t.Fatal(err)
	}
	literal := call(bank, "d1")
	literal.Resource = "account:[REDACTED]"
	if res := f.result(f.await(t.Context(), f.svc, literal), 2*time.Second); res.State != warden.ApprovalPending || res.RequestID == first.RequestID {
		t.Fatalf("a call on the redacted name itself: %+v; want its own request", res)
	}
	if res := f.result(f.await(t.Context(), f.svc, sent), 2*time.Second); res.State != warden.ApprovalApproved {
		t.Fatalf("the approved call: %+v", res)
	}
}

func TestRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{})
	ch := f.await(t.Context(), f.svc, call(bank, "d1"))
	req := f.pending(1)[0]
	if _, err := f.svc.Reject(t.Context(), operator, req.ID, "  "); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a rejection without a reason: %v", err)
	}
	if _, err := f.svc.Reject(t.Context(), operator, req.ID, "not this month"); err != nil {
		t.Fatal(err)
	}
	res := f.result(ch, time.Second)
	if res.State != warden.ApprovalRejected || res.Message != "not this month" {
		t.Fatalf("result: %+v", res)
	}
	// The rejection answers the same call for the rest of the request's life.
	again := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), time.Second)
	if again.State != warden.ApprovalRejected || again.RequestID != req.ID {
		t.Fatalf("resent after rejection: %+v", again)
	}
	if _, err := f.svc.Approve(t.Context(), approver, req.ID, ""); warden.ErrorCode(err) != warden.EConflict {
		t.Fatalf("approving a rejected request: %v", err)
	}
	evs := f.audit.of(req.ID)
	if last := evs[len(evs)-1]; last.Type != warden.EventApprovalRejected || last.Actor.Name != "dave" || last.Decision.Message != "not this month" {
		t.Fatalf("rejected event: %+v", last)
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	const ttl, hold = 150 * time.Millisecond, 50 * time.Millisecond
	f := newFakeFixture(t, approval.Options{TTL: ttl, Hold: 2 * time.Second})
	ch := f.await(t.Context(), f.svc, call(bank, "d1"))
	f.armed(3)
	f.clock.Advance(ttl)
	res := f.result(ch, 5*time.Second)
	if res.State != warden.ApprovalExpired {
		t.Fatalf("held past the TTL: %+v", res)
	}
	if _, err := f.svc.Approve(t.Context(), approver, res.RequestID, ""); warden.ErrorCode(err) != warden.EConflict || !strings.Contains(warden.ErrorMessage(err), "expired") {
		t.Fatalf("approving an expired request: %v", err)
	}
	if ev := f.audit.of(res.RequestID); types(ev)[len(ev)-1] != warden.EventApprovalExpired {
		t.Fatalf("events: %v", types(ev))
	}
	// The same call sent again is a new request.
	g := newFakeFixture(t, approval.Options{TTL: ttl, Hold: hold})
	ch = g.await(t.Context(), g.svc, call(bank, "d1"))
	g.armed(3)
	g.clock.Advance(hold)
	first := g.result(ch, 5*time.Second)
	if _, err := g.svc.Approve(t.Context(), approver, first.RequestID, ""); err != nil {
		t.Fatal(err)
	}
	// An approval nobody uses expires too.
	g.clock.Advance(ttl)
	ch = g.await(t.Context(), g.svc, call(bank, "d1"))
	g.armed(3)
	g.clock.Advance(hold)
	next := g.result(ch, 5*time.Second)
	if next.State != warden.ApprovalPending || next.RequestID == first.RequestID {
		t.Fatalf("sent after the approval expired: %+v", next)
	}
	if a, _ := g.store.Approval(t.Context(), first.RequestID); a.Status != warden.ApprovalExpired {
		t.Fatalf("unused approval: %+v", a)
	}
}

// Run expires requests nobody waits on.
func TestSweep(t *testing.T) {
	t.Parallel()
	const ttl, hold = 100 * time.Millisecond, 20 * time.Millisecond
	f := newFakeFixture(t, approval.Options{TTL: ttl, Hold: hold})
	ch := f.await(t.Context(), f.svc, call(bank, "d1"))
	f.armed(3)
	f.clock.Advance(hold)
	res := f.result(ch, 5*time.Second)
	if res.State != warden.ApprovalPending {
		t.Fatalf("first send: %+v", res)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	f.armed(1)
	f.clock.Advance(time.Second) // past the TTL, and the sweep's tick
	f.audit.waitFor(t, res.RequestID, warden.EventApprovalExpired)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a, err := f.store.Approval(t.Context(), res.RequestID); err != nil || a.Status != warden.ApprovalExpired {
		t.Fatalf("not expired by Run: %+v, %v", a, err)
	}
}

func TestCancelEndsWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{Hold: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	ch := f.await(ctx, f.svc, call(bank, "d1"))
	req := f.pending(1)[0]
	cancel()
	res := f.result(ch, 200*time.Millisecond)
	if res.State != warden.ApprovalPending || res.RequestID != req.ID {
		t.Fatalf("cancelled: %+v", res)
	}
}

func TestRejectAgentEndsWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{Hold: time.Minute})
	held := f.await(t.Context(), f.svc, call(bank, "d1"))
	f.pending(1)
	// An approved, unused request of the agent is taken back too.
	approved := f.result(f.await(t.Context(), f.service(approval.Options{Hold: 10 * time.Millisecond}), call(bank, "d2")), time.Second)
	if _, err := f.svc.Approve(t.Context(), approver, approved.RequestID, ""); err != nil {
		t.Fatal(err)
	}
	otherAgent := call(bank, "d3")
	otherAgent.Agent = &warden.Agent{ID: "agt_2", Name: "other-bot", Owner: "x@example.com"}
	f.result(f.await(t.Context(), f.service(approval.Options{Hold: 10 * time.Millisecond}), otherAgent), time.Second)

	n, err := f.svc.RejectAgent(t.Context(), agent.ID, "agent killed: compromised")
	if err != nil || n != 2 {
		t.Fatalf("RejectAgent = %d, %v; want 2", n, err)
	}
	res := f.result(held, 200*time.Millisecond)
	if res.State != warden.ApprovalRejected || res.Message != "agent killed: compromised" {
		t.Fatalf("held call: %+v", res)
	}
	if again := f.result(f.await(t.Context(), f.svc, call(bank, "d2")), time.Second); again.State != warden.ApprovalRejected {
		t.Fatalf("the approved call after the kill: %+v", again)
	}
	ev := f.audit.of(res.RequestID)
	if last := ev[len(ev)-1]; last.Type != warden.EventApprovalRejected || last.Actor.Kind != warden.ActorSystem {
		t.Fatalf("event: %+v", last)
	}
	// The other agent's request stands until a lockdown.
	if left := f.pending(1); left[0].AgentID != "agt_2" {
		t.Fatalf("left: %+v", left[0])
	}
	if n, err := f.svc.RejectAll(t.Context(), "lockdown: incident"); err != nil || n != 1 {
		t.Fatalf("RejectAll = %d, %v; want 1", n, err)
	}
	f.pending(0)
}

func TestSeparationOfDuties(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{SeparationOfDuties: true, Hold: 10 * time.Millisecond})
	res := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), time.Second)
	tests := []struct {
		p    *warden.Principal
		want string
	}{
		{&warden.Principal{Name: "alice", Role: warden.RoleAdmin, Email: "Alice@Example.com"}, "owns agent pay-bot"},
		{&warden.Principal{Name: "bob", Role: warden.RoleApprover, Email: "bob@example.com"}, "acts for bob@example.com"},
		{&warden.Principal{Name: "admin", Role: warden.RoleAdmin}, "has no email"},
		{&warden.Principal{Name: "eve", Role: warden.RoleAuditor, Email: "eve@example.com"}, "needs role approver"},
	}
	for _, tt := range tests {
		_, err := f.svc.Approve(t.Context(), tt.p, res.RequestID, "")
		if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(warden.ErrorMessage(err), tt.want) {
			t.Errorf("%s approving: %v; want forbidden, %q", tt.p.Name, err, tt.want)
		}
	}
	if a, err := f.svc.Approve(t.Context(), approver, res.RequestID, ""); err != nil || a.Status != warden.ApprovalApproved {
		t.Fatalf("another person: %+v, %v", a, err)
	}
	// Without the rule, the owner may approve.
	g := newFixture(t, approval.Options{Hold: 10 * time.Millisecond})
	r2 := g.result(g.await(t.Context(), g.svc, call(bank, "d1")), time.Second)
	if _, err := g.svc.Approve(t.Context(), &warden.Principal{Name: "alice", Role: warden.RoleApprover, Email: "alice@example.com"}, r2.RequestID, ""); err != nil {
		t.Fatal(err)
	}
}

func TestCriticalNeedsDistinctApprovers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{CriticalApprovers: 2})
	ch := f.await(t.Context(), f.svc, call(vault, "d1"))
	req := f.pending(1)[0]
	if req.Required != 2 {
		t.Fatalf("required: %d", req.Required)
	}
	a, err := f.svc.Approve(t.Context(), approver, req.ID, "one")
	if err != nil || a.Status != warden.ApprovalPending || len(a.Approvals) != 1 {
		t.Fatalf("first approval: %+v, %v", a, err)
	}
	for _, same := range []*warden.Principal{approver, {Name: "carol-laptop", Role: warden.RoleApprover, Email: "CAROL@example.com"}} {
		if _, err := f.svc.Approve(t.Context(), same, req.ID, ""); warden.ErrorCode(err) != warden.EConflict {
			t.Fatalf("the same person (%s) twice: %v", same.Name, err)
		}
	}
	select {
	case r := <-ch:
		t.Fatalf("one approval of two let the call through: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	if a, err = f.svc.Approve(t.Context(), operator, req.ID, "two"); err != nil || a.Status != warden.ApprovalApproved {
		t.Fatalf("second approval: %+v, %v", a, err)
	}
	if res := f.result(ch, time.Second); res.State != warden.ApprovalApproved || !slices.Equal(res.Approvers, []string{"carol", "dave"}) {
		t.Fatalf("result: %+v", res)
	}
	// A high (not critical) tool needs one.
	f.await(t.Context(), f.svc, call(bank, "d9"))
	if r := f.pending(1)[0]; r.Required != 1 {
		t.Fatalf("high tool needs %d", r.Required)
	}
}

// Two copies of one call share one request, and the approval lets exactly one through.
func TestSameCallTwiceAtOnce(t *testing.T) {
	t.Parallel()
	const hold = 500 * time.Millisecond
	f := newFakeFixture(t, approval.Options{Hold: hold})
	a, b := f.await(t.Context(), f.svc, call(bank, "d1")), f.await(t.Context(), f.svc, call(bank, "d1"))
	f.armed(6) // both wait
	req := f.pending(1)[0]
	if _, err := f.svc.Approve(t.Context(), approver, req.ID, ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(hold) // the call that did not get the approval ends its hold on a new request
	ra, rb := f.result(a, 5*time.Second), f.result(b, 5*time.Second)
	states := []string{ra.State, rb.State}
	slices.Sort(states)
	if !slices.Equal(states, []string{warden.ApprovalApproved, warden.ApprovalPending}) {
		t.Fatalf("results %+v and %+v; want one approved, one pending on a new request", ra, rb)
	}
}

// A decision made on one replica reaches a call held on another through the store.
func TestDecisionFromAnotherReplica(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{})
	other := f.service(approval.Options{})
	ch := f.await(t.Context(), f.svc, call(bank, "d1"))
	req := f.pending(1)[0]
	if _, err := other.Approve(t.Context(), approver, req.ID, ""); err != nil {
		t.Fatal(err)
	}
	if res := f.result(ch, time.Second); res.State != warden.ApprovalApproved {
		t.Fatalf("result: %+v", res)
	}
}

// A request the audit log cannot record is not made, and the call is refused.
func TestAuditFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{Hold: 10 * time.Millisecond})
	f.audit.setFail(true)
	if _, err := f.svc.Await(t.Context(), call(bank, "d1")); err == nil {
		t.Fatal("Await succeeded without an audit log")
	}
	f.pending(0)
	f.audit.setFail(false)
	res := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), time.Second)
	if _, err := f.svc.Approve(t.Context(), approver, res.RequestID, ""); err != nil {
		t.Fatal(err)
	}
	f.audit.setFail(true)
	if _, err := f.svc.Await(t.Context(), call(bank, "d1")); err == nil {
		t.Fatal("an approval was used without an approval.used event")
	}
}

func TestListWithRecentActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, approval.Options{Hold: 10 * time.Millisecond})
	var evs []*warden.AuditEvent
	for i, session := range []string{"ses_1", "ses_2", "ses_1"} {
		evs = append(evs, &warden.AuditEvent{
			ID: "ev" + string(rune('a'+i)), Time: time.Now(), Type: warden.EventToolCall,
			Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: agent.ID, Name: agent.Name, SessionID: session},
			Target:   warden.EventTarget{Tool: "bank", Action: "balance" + string(rune('0'+i))},
			Decision: warden.EventDecision{Effect: warden.EffectAllow, ID: "dec_" + string(rune('a'+i))},
		})
	}
	if err := f.store.AppendAuditEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	res := f.result(f.await(t.Context(), f.svc, call(bank, "d1")), time.Second)
	list, err := f.svc.List(t.Context(), "")
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %v, %v", list, err)
	}
	var actions []string
	for _, a := range list[0].Recent {
		actions = append(actions, a.Action)
	}
	if !slices.Equal(actions, []string{"balance0", "balance2"}) {
		t.Fatalf("recent actions in the session: %v", actions)
	}
	if r, err := f.svc.Get(t.Context(), res.RequestID); err != nil || r.ID != res.RequestID || len(r.Recent) != 2 {
		t.Fatalf("Get: %+v, %v", r, err)
	}
	if _, err := f.svc.List(t.Context(), "bogus"); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("bad status: %v", err)
	}
	if all, _ := f.svc.List(t.Context(), "all"); len(all) != 1 {
		t.Fatalf("all: %d", len(all))
	}
}

func TestWebhooks(t *testing.T) {
	t.Parallel()
	type got struct {
		ct   string
		auth string
		body []byte
	}
	bodies := make(chan got, 10)
	failures := 1
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := failures > 0 && r.URL.Path == "/json"
		if fail {
			failures--
		}
		mu.Unlock()
		if fail {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies <- got{r.Header.Get("Content-Type"), r.Header.Get("Authorization"), b}
	}))
	defer srv.Close()
	const hold = 10 * time.Millisecond
	f := newFakeFixture(t, approval.Options{Hold: hold, BaseURL: "https://warden.example.com", Webhooks: []approval.Webhook{
		{URL: srv.URL + "/json", Headers: map[string]string{"Authorization": "Bearer hook-secret"}, Timeout: time.Second, Retries: 2},
		{URL: srv.URL + "/slack", Format: "slack", Timeout: time.Second},
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	req := call(bank, "d1")
	req.Resource = "<https://evil.example|click> & more"
	req.Arguments = json.RawMessage(`{"amount":"31337","note":"ghp_` + strings.Repeat("a", 36) + `"}`)
	ch := f.await(t.Context(), f.svc, req)
	f.armed(4) // the sweep's ticker, the call's hold, poll and expiry
	f.clock.Advance(hold)
	res := f.result(ch, 5*time.Second)
	// The first POST to /json fails; its worker retries after a pause of one second.
	f.armed(2)
	f.clock.Advance(time.Second)
	var jsonMsg, slackMsg []byte
	for range 2 {
		select {
		case g := <-bodies:
			if g.ct != "application/json" {
				t.Errorf("content type %q", g.ct)
			}
			if g.auth != "" {
				jsonMsg = g.body
			} else {
				slackMsg = g.body
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
	}
	var m approval.Message
	if err := json.Unmarshal(jsonMsg, &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != warden.EventApprovalRequested || m.ID != res.RequestID || m.Agent != "pay-bot" || m.Owner != "alice@example.com" ||
		m.Tool != "bank" || m.Risk != warden.RiskHigh || m.URL != "https://warden.example.com/v1/approvals/"+res.RequestID ||
		!strings.Contains(m.Approve, "warden approve "+res.RequestID) {
		t.Fatalf("json message: %s", jsonMsg)
	}
	if strings.Contains(string(jsonMsg), "ghp_") || !strings.Contains(string(jsonMsg), "[REDACTED]") {
		t.Fatalf("json message keeps a credential: %s", jsonMsg)
	}
	var s struct{ Text string }
	if err := json.Unmarshal(slackMsg, &s); err != nil || s.Text == "" {
		t.Fatalf("slack message: %s", slackMsg)
	}
	if strings.Contains(s.Text, "<https") || !strings.Contains(s.Text, "&lt;https://evil.example|click&gt; &amp; more") ||
		strings.Contains(s.Text, "31337") || !strings.Contains(s.Text, res.RequestID) {
		t.Fatalf("slack text: %s", s.Text)
	}
}

// TestPendingLimit: an agent may have MaxPendingPerAgent requests waiting for a person; calls
// beyond that, sent at once to two replicas on one store, are refused without a request, an
// audit event of their own or a notification. Other agents are not affected, and a decided
// request makes room for a new one.
func TestPendingLimit(t *testing.T) {
	t.Parallel()
	// One webhook, so one worker sends the notifications in the order they were queued: once
	// the sentinel's (queued last) has arrived, every one queued before it has too.
	pages := make(chan struct{}, 64)
	sentinel := make(chan struct{}, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.Contains(string(body), "sentinel-bot") {
			sentinel <- struct{}{}
			return
		}
		pages <- struct{}{}
	}))
	defer hook.Close()
	paged := 0
	waitPages := func(n int) {
		t.Helper()
		giveUp := time.After(5 * time.Second)
		for paged < n {
			select {
			case <-pages:
				paged++
			case <-giveUp:
				t.Fatalf("%d notifications after 5s, want %d", paged, n)
			}
		}
	}
	opts := approval.Options{Hold: 10 * time.Millisecond, MaxPendingPerAgent: 3, Webhooks: []approval.Webhook{{URL: hook.URL, Timeout: time.Second}}}
	f := newFixture(t, opts)
	replicas := []*approval.Service{f.svc, f.service(opts)}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() { _ = r.Run(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	const calls = 40
	results := make([]<-chan awaited, calls)
	for i := range calls {
		results[i] = f.await(t.Context(), replicas[i%2], call(bank, fmt.Sprintf("d%02d", i)))
	}
	states := map[string]int{}
	for _, ch := range results {
		res := f.result(ch, 10*time.Second)
		states[res.State]++
		if res.State == warden.ApprovalLimited && (res.RequestID != "" || !strings.Contains(res.Message, "max_pending_per_agent")) {
			t.Fatalf("a refusal: %+v", res)
		}
	}
	if states[warden.ApprovalPending] != 3 || states[warden.ApprovalLimited] != calls-3 {
		t.Fatalf("results by state %v; want 3 pending and %d limited", states, calls-3)
	}
	reqs := f.pending(3)
	var requested int
	f.audit.mu.Lock()
	for _, ev := range f.audit.evs {
		if ev.Type == warden.EventApprovalRequested {
			requested++
		}
	}
	f.audit.mu.Unlock()
	if requested != 3 {
		t.Fatalf("%d approval.requested events, want 3", requested)
	}
	waitPages(3)

	// Another agent has its own allowance.
	other := call(bank, "o1")
	other.Agent = &warden.Agent{ID: "agt_2", Name: "ops-bot", Owner: "ops@example.com"}
	if res := f.result(f.await(t.Context(), f.svc, other), time.Second); res.State != warden.ApprovalPending {
		t.Fatalf("another agent: %+v", res)
	}
	// A decided request makes room for one more, and only one.
	if _, err := f.svc.Reject(t.Context(), approver, reqs[0].ID, "no"); err != nil {
		t.Fatal(err)
	}
	if res := f.result(f.await(t.Context(), f.svc, call(bank, "n1")), time.Second); res.State != warden.ApprovalPending {
		t.Fatalf("after a rejection: %+v", res)
	}
	if res := f.result(f.await(t.Context(), f.svc, call(bank, "n2")), time.Second); res.State != warden.ApprovalLimited {
		t.Fatalf("over the limit again: %+v", res)
	}
	waitPages(5)
	// Every notification there will be has been queued by now (create queues it before Await
	// returns): one more request, of another agent, is the last in the queue.
	last := call(bank, "s1")
	last.Agent = &warden.Agent{ID: "agt_3", Name: "sentinel-bot", Owner: "ops@example.com"}
	if res := f.result(f.await(t.Context(), f.svc, last), time.Second); res.State != warden.ApprovalPending {
		t.Fatalf("the sentinel: %+v", res)
	}
	select {
	case <-sentinel:
	case <-time.After(5 * time.Second):
		t.Fatal("the sentinel's notification did not arrive")
	}
	if extra := len(pages); extra != 0 {
		t.Fatalf("%d notifications, want 5: one per request made, none for a refused call", paged+extra)
	}
}

// A kill heard on another replica rejects the agent's requests in the store there; this
// replica's reconciler then calls RejectAgent, finds nothing left to reject, and must still end
// the calls held here at once, not at their next poll of the store. The fake clock never moves,
// so the poll never fires: only the wake ends the wait.
func TestRejectAgentWakesCallsRejectedElsewhere(t *testing.T) {
	t.Parallel()
	f := newFakeFixture(t, approval.Options{Hold: time.Minute, Poll: time.Hour})
	held := f.await(t.Context(), f.svc, call(bank, "d1"))
	otherAgent := call(bank, "d2")
	otherAgent.Agent = &warden.Agent{ID: "agt_2", Name: "other-bot", Owner: "x@example.com"}
	otherHeld := f.await(t.Context(), f.svc, otherAgent)
	f.armed(6) // both calls hold: hold, poll and expiry timers each
	var first *warden.Approval
	for _, a := range f.pending(2) {
		if a.AgentID == agent.ID {
			first = a
		}
	}
	other := f.service(approval.Options{}) // the replica that heard the kill
	if n, err := other.RejectAgent(t.Context(), agent.ID, "agent killed: compromised"); err != nil || n != 1 {
		t.Fatalf("RejectAgent on the other replica = %d, %v; want 1", n, err)
	}
	if n, err := f.svc.RejectAgent(t.Context(), agent.ID, "agent killed: compromised"); err != nil || n != 0 {
		t.Fatalf("RejectAgent here = %d, %v; want 0 (already rejected)", n, err)
	}
	res := f.result(held, 5*time.Second)
	if res.State != warden.ApprovalRejected || res.RequestID != first.ID {
		t.Fatalf("held call: %+v; want rejected", res)
	}
	select {
	case a := <-otherHeld:
		t.Fatalf("the other agent's call ended too: %+v", a)
	default:
	}
}
