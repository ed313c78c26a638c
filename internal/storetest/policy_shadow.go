package storetest

import (
	"testing"

	"github.com/wardenhq/warden"
)

var policyShadowTests = []storeTest{
	{"RoundTripAndReplace", testPolicyShadowRoundTrip},
	{"EndAndVersionsGrow", testPolicyShadowEnd},
}

func newPolicyShadow(comment string, live int64) *warden.PolicyShadow {
	return &warden.PolicyShadow{
		Files:     map[string]string{"deny.cedar": `forbid (principal, action == Action::"repos.delete", resource);`},
		Base:      live,
		CreatedBy: "alice",
		CreatedAt: base,
		Comment:   comment,
	}
}

func putPolicyShadow(t *testing.T, s warden.Store, ps *warden.PolicyShadow) {
	t.Helper()
	if err := s.PutPolicyShadow(t.Context(), ps); err != nil {
		t.Fatalf("PutPolicyShadow(%q): %v", ps.Comment, err)
	}
}

func testPolicyShadowRoundTrip(t *testing.T, s warden.Store) {
	_, err := s.PolicyShadow(t.Context())
	wantCode(t, err, warden.ENotFound)
	first := newPolicyShadow("first", 3)
	putPolicyShadow(t, s, first)
	if first.Version != 1 {
		t.Fatalf("first candidate is version %d, want 1", first.Version)
	}
	got, err := s.PolicyShadow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "candidate", got, &warden.PolicyShadow{Version: 1, Files: first.Files, Base: 3, CreatedBy: "alice", CreatedAt: base.UTC(), Comment: "first"})

	// A second put replaces the first: there is one candidate, the newer.
	second := newPolicyShadow("second", 4)
	second.Files = map[string]string{"a.cedar": "// ünïcode\n", "b/c.cedar": ""}
	putPolicyShadow(t, s, second)
	if second.Version != 2 {
		t.Fatalf("second candidate is version %d, want 2", second.Version)
	}
	got, err = s.PolicyShadow(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "candidate after a second put", got.Files, second.Files)
	wantEqual(t, "version after a second put", got.Version, int64(2))
	wantCode(t, s.EndPolicyShadow(t.Context(), 1), warden.EConflict)
	// The replaced candidate is over too: ending the second leaves none.
	wantCode(t, s.EndPolicyShadow(t.Context(), 2), "")
	_, err = s.PolicyShadow(t.Context())
	wantCode(t, err, warden.ENotFound)

	bad := newPolicyShadow("bad", 4)
	bad.Files = map[string]string{"x.cedar": "\xff"}
	wantCode(t, s.PutPolicyShadow(t.Context(), bad), warden.EInvalid)
}

func testPolicyShadowEnd(t *testing.T, s warden.Store) {
	wantCode(t, s.EndPolicyShadow(t.Context(), 1), warden.ENotFound)
	ps := newPolicyShadow("one", 0)
	putPolicyShadow(t, s, ps)
	wantCode(t, s.EndPolicyShadow(t.Context(), 2), warden.EConflict)
	if _, err := s.PolicyShadow(t.Context()); err != nil {
		t.Fatalf("a refused end removed the candidate: %v", err)
	}
	wantCode(t, s.EndPolicyShadow(t.Context(), 1), "")
	_, err := s.PolicyShadow(t.Context())
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.EndPolicyShadow(t.Context(), 1), warden.ENotFound)

	// An ended version is never reused: a difference recorded under it names that candidate only.
	next := newPolicyShadow("two", 0)
	putPolicyShadow(t, s, next)
	if next.Version != 2 {
		t.Fatalf("the candidate after an ended one is version %d, want 2", next.Version)
	}
}
