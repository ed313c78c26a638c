package budget

import (
	"context"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// TestReload applies what another replica wrote to the store: a new budget, a changed limit that
// keeps the use so far, a deletion, and a budget stored invalid, which fails closed.
func TestReload(t *testing.T) {
	t.Parallel()
	store := newFakeStore()
	b := newBudgets(t, store, Options{})
	other := newBudgets(t, store, Options{}) // another writer of the same store
	list := func(at time.Time) Usage { return call("triage-bot", "github", "issues.list", at) }
	reloadOK := func() {
		t.Helper()
		if err := b.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	quota := put(t, other, "triage-bot", "github", "", "quota 2/day")
	allow(t, b, list(t0))
	reloadOK()
	allow(t, b, list(t0))
	allow(t, b, list(t0))
	deny(t, b, list(t0))

	// Reloading what hasn't changed keeps the counters.
	reloadOK()
	deny(t, b, list(t0))

	// A raised limit keeps the two calls used.
	put(t, other, "triage-bot", "github", "", "quota 3/day")
	reloadOK()
	allow(t, b, list(t0))
	deny(t, b, list(t0))
	if st := status(t, b, quota, t0); st.Used != 3 || st.Limit != 3 {
		t.Errorf("status after reloading a raised limit = %+v, want 3 of 3", st)
	}

	// Stored invalid (by a newer warden, say): every call it covers fails closed.
	bad := *quota
	bad.Limit = -1
	if err := store.PutBudget(context.Background(), &bad); err != nil {
		t.Fatal(err)
	}
	reloadOK()
	if _, _, err := b.Consume(list(t0)); warden.ErrorCode(err) != warden.EInternal {
		t.Fatalf("call under a budget stored invalid: %v, want %s", err, warden.EInternal)
	}

	if err := other.Delete(context.Background(), quota.ID); err != nil {
		t.Fatal(err)
	}
	reloadOK()
	allow(t, b, list(t0))
	if got := b.Show("triage-bot", t0); len(got) != 0 {
		t.Errorf("Show after reloading a deletion = %d budgets, want none", len(got))
	}

	store.setFail(nil)
	failing := &failingList{fakeStore: store}
	bb := newBudgets(t, store, Options{})
	bb.store = failing
	if err := bb.Reload(context.Background()); err == nil {
		t.Error("Reload with a store that can't list budgets succeeded")
	}
}

// failingList is a store whose Budgets fails.
type failingList struct{ *fakeStore }

func (failingList) Budgets(context.Context) ([]*warden.Budget, error) {
	return nil, warden.Errorf(warden.EUnavailable, "store unreachable")
}
