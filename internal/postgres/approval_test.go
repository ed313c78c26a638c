package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/postgres"
)

type discardAudit struct{}

func (discardAudit) Append(context.Context, *warden.AuditEvent) error { return nil }

// TestApprovalAcrossReplicas runs two replicas of the approval service on one database: a call
// held on one is decided on the other, and learns of it by polling the store. The replicas share
// a fake clock, so that the test, not the wall clock, says when they poll.
func TestApprovalAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := testDatabase(t)
	const poll = 100 * time.Millisecond
	clk := clock.NewFake(time.Now())
	replica := func() (*postgres.Store, *approval.Service) {
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, approval.New(s, discardAudit{}, slog.New(slog.NewTextHandler(io.Discard, nil)),
			approval.Options{Hold: 20 * time.Second, Poll: poll, Clock: clk})
	}
	storeA, a := replica()
	_, b := replica()
	req := func(digest string) *gateway.ApprovalRequest {
		return &gateway.ApprovalRequest{
			DecisionID: "dec_" + digest, Agent: &warden.Agent{ID: "agt_1", Name: "pay-bot", Owner: "alice@example.com"},
			SessionID: "ses_1", Tool: &warden.Tool{Name: "bank", Risk: warden.RiskHigh}, Action: "transfer",
			ArgsSHA256: digest, PolicyVersion: 1, Reason: warden.ApprovalByRisk,
		}
	}
	type result struct {
		res gateway.ApprovalResult
		err error
	}
	held := func(svc *approval.Service, digest string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			res, err := svc.Await(t.Context(), req(digest))
			ch <- result{res, err}
		}()
		return ch
	}
	// pending returns the n pending requests once k held calls wait (each arms its hold, poll
	// and expiry timers): by then each has made or found its request.
	pending := func(n, k int) []*approval.Request {
		t.Helper()
		if err := clk.WaitForTimers(3 * k); err != nil {
			t.Fatal(err)
		}
		list, err := b.List(t.Context(), warden.ApprovalPending)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n {
			t.Fatalf("%d pending, want %d", len(list), n)
		}
		return list
	}
	wait := func(ch <-chan result) gateway.ApprovalResult {
		t.Helper()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			return r.res
		case <-time.After(5 * time.Second):
			t.Fatal("the held call did not learn of the decision made on the other replica")
			return gateway.ApprovalResult{}
		}
	}

	// The same call held on both replicas at once is one request.
	onA, onB := held(a, "d1"), held(b, "d1")
	r := pending(1, 2)[0]
	if _, err := b.Approve(t.Context(), &warden.Principal{Name: "carol", Role: warden.RoleApprover}, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(poll) // the call held on a learns of it at its next poll
	// One call goes through; the other waits for an approval of its own.
	var loser <-chan result
	select {
	case r := <-onA:
		if r.err != nil || r.res.State != warden.ApprovalApproved {
			t.Fatalf("first result: %+v %v", r.res, r.err)
		}
		loser = onB
	case r := <-onB:
		if r.err != nil || r.res.State != warden.ApprovalApproved {
			t.Fatalf("first result: %+v %v", r.res, r.err)
		}
		loser = onA
	case <-time.After(5 * time.Second):
		t.Fatal("the held call did not learn of the decision made on the other replica")
	}

	// A kill on one replica ends the waits on both.
	killed := held(a, "d2")
	pending(2, 2) // d2, and the request the losing d1 call made anew
	if n, err := b.RejectAgent(t.Context(), "agt_1", "agent killed: test"); err != nil || n != 2 {
		t.Fatalf("RejectAgent = %d, %v", n, err)
	}
	clk.Advance(poll) // calls held on a learn of it at their next poll
	for _, ch := range []<-chan result{killed, loser} {
		if res := wait(ch); res.State != warden.ApprovalRejected || res.Message != "agent killed: test" {
			t.Fatalf("held call after the kill: %+v", res)
		}
	}
	if open, _ := storeA.Approvals(t.Context(), warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending}}); len(open) != 0 {
		t.Fatalf("%d requests still pending", len(open))
	}
}
