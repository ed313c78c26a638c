// Package storetest is the contract every warden.Store implementation passes: one suite that the
// SQLite and PostgreSQL backends both run, so that they behave the same.
package storetest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// Run runs the contract against stores made by open. open is called once per subtest, from
// subtests that run in parallel; it returns a new, empty store and closes it (and removes
// whatever it created) in t.Cleanup. Some subtests close the store themselves first.
func Run(t *testing.T, open func(t *testing.T) warden.Store) {
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"Agents", agentTests},
		{"AdminTokens", adminTokenTests},
		{"SigningKeys", signingKeyTests},
		{"RevokedTokens", revokedTokenTests},
		{"Audit", auditTests},
		{"Tools", toolTests},
		{"Secrets", secretTests},
		{"Policies", policyTests},
		{"PolicyShadow", policyShadowTests},
		{"Budgets", budgetTests},
		{"BudgetLedger", budgetLedgerTests},
		{"Kill", killTests},
		{"Approvals", approvalTests},
		{"Skills", skillTests},
		{"ToolManifests", manifestTests},
		{"PackageLocks", packageLockTests},
		{"Flow", flowTests},
		{"OAuth", oauthTests},
		{"People", personTests},
		{"Detect", detectTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, open(t))
				})
			}
		})
	}
}

// storeTest is one subtest of the contract; it gets a store of its own.
type storeTest struct {
	name string
	run  func(t *testing.T, s warden.Store)
}

// base is a time with nanoseconds, in a zone other than UTC, so that a round trip shows that
// both the instant and its precision survive and that times come back in UTC.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+2", 2*60*60))

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// wantCode fails the test unless err has the warden error code code; "" means no error.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := warden.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

// wantEqual fails the test unless got and want are deeply equal. Callers pass want with its
// times in UTC, as the store returns them.
func wantEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// wantNames fails the test unless the names of items, in order, are want.
func wantNames[T any](t *testing.T, items []T, name func(T) string, want []string) {
	t.Helper()
	var got []string
	for _, item := range items {
		got = append(got, name(item))
	}
	wantEqual(t, "names", got, want)
}

// concurrently runs fn(0) … fn(n-1) at once and returns their errors joined.
func concurrently(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deletion is one call of a method that deletes what expired or retired before a time.
type deletion struct {
	before  time.Time
	deleted int
	left    []string
}

// runDeletions makes the calls in order, checking each count and what remains after each.
func runDeletions(t *testing.T, cases []deletion, del func(before time.Time) (int, error), remaining func() []string) {
	t.Helper()
	for _, c := range cases {
		n, err := del(c.before)
		if err != nil {
			t.Fatal(err)
		}
		if n != c.deleted {
			t.Errorf("deleting before %v removed %d, want %d", c.before, n, c.deleted)
		}
		wantEqual(t, fmt.Sprintf("left after deleting before %v", c.before), remaining(), c.left)
	}
}
