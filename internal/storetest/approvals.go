package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var approvalTests = []storeTest{
	{"CreateAndGet", testCreateAndGetApproval},
	{"NotFound", testApprovalNotFound},
	{"OneOpenPerBinding", testApprovalOneOpenPerBinding},
	{"CreateConcurrent", testCreateApprovalConcurrent},
	{"ByBindingNewest", testApprovalByBindingNewest},
	{"ListFilters", testApprovalsFilters},
	{"Update", testUpdateApproval},
	{"UpdateErrorWritesNothing", testUpdateApprovalErrorWritesNothing},
	{"UpdateKeepsIdentity", testUpdateApprovalKeepsIdentity},
	{"UpdateConcurrent", testUpdateApprovalConcurrent},
	{"PendingLimit", testApprovalPendingLimit},
	{"PendingLimitConcurrent", testApprovalPendingLimitConcurrent},
}

// testApprovalPendingLimit: CreateApprovalLimited counts an agent's pending requests that have
// not expired; over the limit it stores nothing. Other agents, approved requests and pending
// ones past their expiry do not count.
func testApprovalPendingLimit(t *testing.T, s warden.Store) {
	ctx := t.Context()
	for i := range 2 {
		if err := s.CreateApprovalLimited(ctx, newApproval(fmt.Sprintf("apr_%d", i), "agt_a", fmt.Sprintf("b%d", i), base), 2); err != nil {
			t.Fatal(err)
		}
	}
	err := s.CreateApprovalLimited(ctx, newApproval("apr_over", "agt_a", "b_over", base), 2)
	wantCode(t, err, warden.ERateLimited)
	if _, err := s.Approval(ctx, "apr_over"); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("a refused request was stored: %v", err)
	}
	if err := s.CreateApprovalLimited(ctx, newApproval("apr_b", "agt_b", "bb", base), 2); err != nil {
		t.Fatalf("another agent: %v", err)
	}
	// An approved request waits for nobody.
	if _, err := s.UpdateApproval(ctx, "apr_0", func(a *warden.Approval) error {
		a.Status = warden.ApprovalApproved
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApprovalLimited(ctx, newApproval("apr_2", "agt_a", "b2", base), 2); err != nil {
		t.Fatalf("after an approval: %v", err)
	}
	wantCode(t, s.CreateApprovalLimited(ctx, newApproval("apr_3", "agt_a", "b3", base), 2), warden.ERateLimited)
	// Past their expiry, pending requests no longer count, swept or not.
	later := base.Add(16 * time.Minute)
	if err := s.CreateApprovalLimited(ctx, newApproval("apr_4", "agt_a", "b4", later), 2); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
	wantCode(t, s.CreateApprovalLimited(ctx, newApproval("apr_5", "agt_a", "b5", base), 0), warden.EInvalid)
}

// testApprovalPendingLimitConcurrent: requests made at once, as from several replicas, never
// pass the limit together.
func testApprovalPendingLimitConcurrent(t *testing.T, s warden.Store) {
	const tries, limit = 32, 5
	var mu sync.Mutex
	made, refused := 0, 0
	err := concurrently(tries, func(i int) error {
		err := s.CreateApprovalLimited(t.Context(), newApproval(fmt.Sprintf("apr_%d", i), "agt_a", fmt.Sprintf("b%d", i), base), limit)
		mu.Lock()
		defer mu.Unlock()
		switch warden.ErrorCode(err) {
		case "":
			made++
		case warden.ERateLimited:
			refused++
		default:
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Approvals(t.Context(), warden.ApprovalFilter{AgentID: "agt_a"})
	if err != nil {
		t.Fatal(err)
	}
	if made != limit || refused != tries-limit || len(list) != limit {
		t.Fatalf("%d made, %d refused, %d stored; want %d, %d, %d", made, refused, len(list), limit, tries-limit, limit)
	}
}

func newApproval(id, agentID, binding string, created time.Time) *warden.Approval {
	return &warden.Approval{
		ID:            id,
		Status:        warden.ApprovalPending,
		Binding:       binding,
		DecisionID:    "dec_" + id,
		AgentID:       agentID,
		AgentName:     "payments-bot",
		Owner:         "alice@example.com",
		OnBehalfOf:    "bob@example.com",
		SessionID:     "ses_1",
		Tool:          "bank",
		Action:        "transfer",
		Resource:      "account:42",
		Risk:          warden.RiskCritical,
		ArgsSHA256:    "ab12",
		Arguments:     json.RawMessage(`{"amount":"900","iban":"[REDACTED]","note":"<rent> & co"}`),
		Reason:        warden.ApprovalByPolicy,
		Policies:      []string{"payments-need-approval"},
		PolicyVersion: 7,
		Required:      2,
		CreatedAt:     created,
		ExpiresAt:     created.Add(15 * time.Minute),
	}
}

func approvalInUTC(a *warden.Approval) *warden.Approval {
	c := *a
	c.CreatedAt, c.ExpiresAt, c.DecidedAt, c.UsedAt = a.CreatedAt.UTC(), a.ExpiresAt.UTC(), a.DecidedAt.UTC(), a.UsedAt.UTC()
	c.Approvals = nil
	for _, v := range a.Approvals {
		v.At = v.At.UTC()
		c.Approvals = append(c.Approvals, v)
	}
	return &c
}

func createApproval(t *testing.T, s warden.Store, a *warden.Approval) {
	t.Helper()
	if err := s.CreateApproval(t.Context(), a); err != nil {
		t.Fatalf("CreateApproval(%s): %v", a.ID, err)
	}
}

func approvalIDs(t *testing.T, s warden.Store, f warden.ApprovalFilter) []string {
	t.Helper()
	list, err := s.Approvals(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	return ids
}

func testCreateAndGetApproval(t *testing.T, s warden.Store) {
	a := newApproval("apr_1", "agt_1", "b1", base)
	a.Approvals = []warden.ApprovalVote{{Name: "carol", Role: warden.RoleApprover, Email: "carol@example.com", Note: "ok", At: base.Add(time.Second)}}
	createApproval(t, s, a)
	got, err := s.Approval(t.Context(), "apr_1")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "Approval", got, approvalInUTC(a))
	wantCode(t, s.CreateApproval(t.Context(), &warden.Approval{ID: "apr_2", Binding: "b2"}), warden.EInvalid)
}

func testApprovalNotFound(t *testing.T, s warden.Store) {
	_, err := s.Approval(t.Context(), "apr_missing")
	wantCode(t, err, warden.ENotFound)
	_, err = s.ApprovalByBinding(t.Context(), "missing")
	wantCode(t, err, warden.ENotFound)
	_, err = s.UpdateApproval(t.Context(), "apr_missing", func(*warden.Approval) error { return nil })
	wantCode(t, err, warden.ENotFound)
}

// One call has at most one open request: a second pending or approved one with the same binding
// conflicts, while a rejected, expired or used one leaves room for a new request.
func testApprovalOneOpenPerBinding(t *testing.T, s warden.Store) {
	createApproval(t, s, newApproval("apr_1", "agt_1", "b1", base))
	wantCode(t, s.CreateApproval(t.Context(), newApproval("apr_2", "agt_1", "b1", base.Add(time.Second))), warden.EConflict)
	createApproval(t, s, newApproval("apr_other", "agt_1", "b2", base)) // another call

	steps := []string{warden.ApprovalApproved, warden.ApprovalUsed}
	for i, status := range steps {
		if _, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error { a.Status = status; return nil }); err != nil {
			t.Fatal(err)
		}
		next := newApproval(fmt.Sprintf("apr_next%d", i), "agt_1", "b1", base.Add(time.Minute))
		err := s.CreateApproval(t.Context(), next)
		if status == warden.ApprovalApproved {
			wantCode(t, err, warden.EConflict)
		} else {
			wantCode(t, err, "")
		}
	}
	// Reopening a closed request while another is open would make two: refused.
	_, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error { a.Status = warden.ApprovalPending; return nil })
	wantCode(t, err, warden.EConflict)
}

func testCreateApprovalConcurrent(t *testing.T, s warden.Store) {
	const askers = 10
	err := concurrently(askers, func(i int) error {
		err := s.CreateApproval(t.Context(), newApproval(fmt.Sprintf("apr_%02d", i), "agt_1", "same-call", base))
		if warden.ErrorCode(err) == warden.EConflict {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if ids := approvalIDs(t, s, warden.ApprovalFilter{}); len(ids) != 1 {
		t.Fatalf("%d concurrent requests for one call stored %d: %v; want 1", askers, len(ids), ids)
	}
}

func testApprovalByBindingNewest(t *testing.T, s warden.Store) {
	old := newApproval("apr_old", "agt_1", "b1", base)
	old.Status = warden.ApprovalRejected
	createApproval(t, s, old)
	createApproval(t, s, newApproval("apr_new", "agt_1", "b1", base.Add(time.Minute)))
	got, err := s.ApprovalByBinding(t.Context(), "b1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "apr_new" {
		t.Fatalf("ApprovalByBinding = %s; want the newest, apr_new", got.ID)
	}
}

func testApprovalsFilters(t *testing.T, s warden.Store) {
	statuses := []string{warden.ApprovalPending, warden.ApprovalApproved, warden.ApprovalRejected, warden.ApprovalPending}
	agents := []string{"agt_1", "agt_2", "agt_1", "agt_2"}
	for i := range statuses {
		a := newApproval(fmt.Sprintf("apr_%d", i), agents[i], fmt.Sprintf("b%d", i), base.Add(time.Duration(3-i)*time.Minute))
		a.Status = statuses[i]
		createApproval(t, s, a)
	}
	// Oldest first: apr_3 was created first.
	tests := []struct {
		name string
		f    warden.ApprovalFilter
		want []string
	}{
		{"all", warden.ApprovalFilter{}, []string{"apr_3", "apr_2", "apr_1", "apr_0"}},
		{"pending", warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending}}, []string{"apr_3", "apr_0"}},
		{"open of agt_1", warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending, warden.ApprovalApproved}, AgentID: "agt_1"}, []string{"apr_0"}},
		{"agt_2", warden.ApprovalFilter{AgentID: "agt_2"}, []string{"apr_3", "apr_1"}},
		// ExpiresAt is CreatedAt+15m: apr_3 expires at base+15m, apr_2 at base+16m, …
		{"expired by base+16m", warden.ApprovalFilter{ExpiresBefore: base.Add(16 * time.Minute)}, []string{"apr_3", "apr_2"}},
		{"limit", warden.ApprovalFilter{Limit: 1}, []string{"apr_3"}},
		{"none", warden.ApprovalFilter{AgentID: "agt_9"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantEqual(t, "ids", approvalIDs(t, s, tt.f), tt.want)
		})
	}
}

func testUpdateApproval(t *testing.T, s warden.Store) {
	createApproval(t, s, newApproval("apr_1", "agt_1", "b1", base))
	vote := warden.ApprovalVote{Name: "carol", Role: warden.RoleApprover, Note: "fine", At: base.Add(time.Minute)}
	updated, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error {
		a.Status = warden.ApprovalApproved
		a.Approvals = append(a.Approvals, vote)
		a.DecidedAt = base.Add(time.Minute)
		a.ExpiresAt = base.Add(16 * time.Minute)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Approval(t.Context(), "apr_1")
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "after update", got, approvalInUTC(updated))
	if got.Status != warden.ApprovalApproved || len(got.Approvals) != 1 || !got.ExpiresAt.Equal(base.Add(16*time.Minute)) {
		t.Fatalf("after update: %+v", got)
	}
	// The expiry column follows the body: the new expiry is what filters see.
	wantEqual(t, "expired by base+15m", approvalIDs(t, s, warden.ApprovalFilter{ExpiresBefore: base.Add(15 * time.Minute)}), []string{})
}

func testUpdateApprovalErrorWritesNothing(t *testing.T, s warden.Store) {
	a := newApproval("apr_1", "agt_1", "b1", base)
	createApproval(t, s, a)
	refuse := errors.New("not pending")
	_, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error {
		a.Status = warden.ApprovalRejected
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("UpdateApproval returned %v; want fn's error", err)
	}
	got, _ := s.Approval(t.Context(), "apr_1")
	wantEqual(t, "after a failed update", got, approvalInUTC(a))
}

func testUpdateApprovalKeepsIdentity(t *testing.T, s warden.Store) {
	createApproval(t, s, newApproval("apr_1", "agt_1", "b1", base))
	for name, fn := range map[string]func(a *warden.Approval){
		"id":      func(a *warden.Approval) { a.ID = "apr_2" },
		"binding": func(a *warden.Approval) { a.Binding = "b2" },
	} {
		_, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error { fn(a); return nil })
		if warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("changing the %s: %v; want EInvalid", name, err)
		}
	}
}

// Two people approving at once must both be counted.
func testUpdateApprovalConcurrent(t *testing.T, s warden.Store) {
	const approvers = 20
	createApproval(t, s, newApproval("apr_1", "agt_1", "b1", base))
	err := concurrently(approvers, func(i int) error {
		_, err := s.UpdateApproval(t.Context(), "apr_1", func(a *warden.Approval) error {
			a.Approvals = append(a.Approvals, warden.ApprovalVote{Name: fmt.Sprintf("p%d", i), Role: warden.RoleApprover, At: base})
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.Approval(t.Context(), "apr_1")
	if len(got.Approvals) != approvers {
		t.Fatalf("after %d concurrent approvals the request has %d: an update was lost", approvers, len(got.Approvals))
	}
}
