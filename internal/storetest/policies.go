package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var policyTests = []storeTest{
	{"VersionsGrow", testPolicyVersions},
	{"IfLatest", testPolicyIfLatest},
	{"IfLatestConcurrent", testPolicyIfLatestConcurrent},
	{"CreateConcurrent", testCreatePolicySetConcurrent},
	{"NotFound", testPolicySetNotFound},
	{"ListNewestFirstWithoutFiles", testPolicySetsList},
	{"FilesRoundTrip", testPolicyFiles},
}

func newPolicySet(comment string) *warden.PolicySet {
	return &warden.PolicySet{
		Files: map[string]string{
			"triage.cedar": `permit (principal == Agent::"triage-bot", action == Action::"issues.create", resource);`,
			"deny.cedar":   `forbid (principal, action == Action::"repos.delete", resource);`,
		},
		CreatedBy: "alice",
		CreatedAt: base,
		Comment:   comment,
	}
}

func createPolicySet(t *testing.T, s warden.Store, ps *warden.PolicySet, ifLatest int64) {
	t.Helper()
	if err := s.CreatePolicySet(t.Context(), ps, ifLatest); err != nil {
		t.Fatalf("CreatePolicySet(%q, %d): %v", ps.Comment, ifLatest, err)
	}
}

func getPolicySet(t *testing.T, s warden.Store, version int64) *warden.PolicySet {
	t.Helper()
	ps, err := s.PolicySet(t.Context(), version)
	if err != nil {
		t.Fatalf("PolicySet(%d): %v", version, err)
	}
	return ps
}

// policyVersions returns the versions PolicySets lists, in its order.
func policyVersions(t *testing.T, s warden.Store) []int64 {
	t.Helper()
	all, err := s.PolicySets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, ps := range all {
		versions = append(versions, ps.Version)
	}
	return versions
}

func testPolicyVersions(t *testing.T, s warden.Store) {
	var created []*warden.PolicySet
	for i := range 3 {
		ps := newPolicySet(fmt.Sprintf("apply %d", i+1))
		ps.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		ps.Files["n.cedar"] = fmt.Sprintf("// %d", i+1)
		ps.Version = 42 // the store assigns the version
		createPolicySet(t, s, ps, -1)
		if ps.Version != int64(i+1) {
			t.Fatalf("policy set %d was given version %d, want %d", i+1, ps.Version, i+1)
		}
		created = append(created, ps)
	}
	for _, ps := range created {
		want := *ps
		want.CreatedAt = ps.CreatedAt.UTC()
		wantEqual(t, fmt.Sprintf("version %d", ps.Version), getPolicySet(t, s, ps.Version), &want)
	}
	if got := getPolicySet(t, s, 0); got.Version != 3 || got.Files["n.cedar"] != "// 3" {
		t.Fatalf("PolicySet(0) = version %d with %q; want the latest, 3", got.Version, got.Files["n.cedar"])
	}
}

func testPolicyIfLatest(t *testing.T, s warden.Store) {
	tests := []struct {
		ifLatest    int64
		wantCode    string
		wantVersion int64
	}{
		{1, warden.EConflict, 0}, // nothing stored yet: the latest is 0
		{0, "", 1},
		{0, warden.EConflict, 0},
		{2, warden.EConflict, 0},
		{1, "", 2},
		{-1, "", 3},
		{-2, warden.EConflict, 0},
		{3, "", 4},
	}
	latest := int64(0)
	for i, tt := range tests {
		ps := newPolicySet(fmt.Sprintf("step %d", i))
		err := s.CreatePolicySet(t.Context(), ps, tt.ifLatest)
		wantCode(t, err, tt.wantCode)
		if tt.wantCode == "" {
			latest = tt.wantVersion
		}
		if ps.Version != tt.wantVersion {
			t.Fatalf("step %d (ifLatest %d): version %d, want %d", i, tt.ifLatest, ps.Version, tt.wantVersion)
		}
		if got := policyVersions(t, s); len(got) != int(latest) || (latest > 0 && got[0] != latest) {
			t.Fatalf("step %d (ifLatest %d): versions %v, want 1 to %d: a conflict stored something", i, tt.ifLatest, got, latest)
		}
	}
}

// testPolicyIfLatestConcurrent has several people apply on top of the same version at once:
// exactly one succeeds, and the others are told about the conflict.
func testPolicyIfLatestConcurrent(t *testing.T, s warden.Store) {
	const appliers = 10
	createPolicySet(t, s, newPolicySet("first"), 0)
	sets := make([]*warden.PolicySet, appliers)
	codes := make([]string, appliers)
	err := concurrently(appliers, func(i int) error {
		sets[i] = newPolicySet(fmt.Sprintf("applier %d", i))
		codes[i] = warden.ErrorCode(s.CreatePolicySet(t.Context(), sets[i], 1))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	winner := -1
	for i, code := range codes {
		switch code {
		case "":
			if winner >= 0 {
				t.Fatalf("appliers %d and %d both stored on top of version 1", winner, i)
			}
			winner = i
		case warden.EConflict:
			if sets[i].Version != 0 {
				t.Errorf("applier %d lost but was given version %d", i, sets[i].Version)
			}
		default:
			t.Fatalf("applier %d: error code %q, want none or %q", i, code, warden.EConflict)
		}
	}
	if winner < 0 {
		t.Fatal("no applier succeeded")
	}
	wantEqual(t, "versions", policyVersions(t, s), []int64{2, 1})
	if got := getPolicySet(t, s, 0); got.Version != 2 || got.Comment != sets[winner].Comment {
		t.Fatalf("latest is %d %q; want 2 %q", got.Version, got.Comment, sets[winner].Comment)
	}
}

// testCreatePolicySetConcurrent has several creators store unconditionally at once: each gets a
// version of its own, with none skipped.
func testCreatePolicySetConcurrent(t *testing.T, s warden.Store) {
	const creators = 10
	sets := make([]*warden.PolicySet, creators)
	err := concurrently(creators, func(i int) error {
		sets[i] = newPolicySet(fmt.Sprintf("creator %d", i))
		return s.CreatePolicySet(t.Context(), sets[i], -1)
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for v := int64(creators); v >= 1; v-- {
		want = append(want, v)
	}
	wantEqual(t, "versions", policyVersions(t, s), want)
	byVersion := map[int64]string{}
	for _, ps := range sets {
		byVersion[ps.Version] = ps.Comment
	}
	if len(byVersion) != creators {
		t.Fatalf("creators were given versions %v; want each its own", byVersion)
	}
	for v, comment := range byVersion {
		if got := getPolicySet(t, s, v); got.Comment != comment {
			t.Errorf("version %d holds %q, want %q", v, got.Comment, comment)
		}
	}
}

func testPolicySetNotFound(t *testing.T, s warden.Store) {
	_, err := s.PolicySet(t.Context(), 0)
	wantCode(t, err, warden.ENotFound)
	_, err = s.PolicySet(t.Context(), 1)
	wantCode(t, err, warden.ENotFound)
	if got := policyVersions(t, s); len(got) != 0 {
		t.Fatalf("PolicySets() of an empty store = %v", got)
	}
	createPolicySet(t, s, newPolicySet("only"), -1)
	_, err = s.PolicySet(t.Context(), 2)
	wantCode(t, err, warden.ENotFound)
	_, err = s.PolicySet(t.Context(), -1)
	wantCode(t, err, warden.EInvalid)
}

func testPolicySetsList(t *testing.T, s warden.Store) {
	for i := range 3 {
		ps := newPolicySet(fmt.Sprintf("apply %d", i+1))
		ps.CreatedBy = fmt.Sprintf("admin-%d", i+1)
		ps.CreatedAt = base.Add(time.Duration(i) * time.Hour)
		createPolicySet(t, s, ps, -1)
	}
	all, err := s.PolicySets(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var want []*warden.PolicySet
	for v := int64(3); v >= 1; v-- {
		want = append(want, &warden.PolicySet{Version: v, CreatedBy: fmt.Sprintf("admin-%d", v),
			CreatedAt: base.Add(time.Duration(v-1) * time.Hour).UTC(), Comment: fmt.Sprintf("apply %d", v)})
	}
	wantEqual(t, "PolicySets", all, want)
}

func testPolicyFiles(t *testing.T, s warden.Store) {
	// A megabyte of Cedar text with every character JSON or SQL might treat specially.
	line := "permit (principal in Team::\"ops\", action == Action::\"x\", resource) when { context.arg like \"*\\\\n<&>'ü✓\t\" };\n"
	big := strings.Repeat(line, (1<<20)/len(line)+1)
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"none", nil},
		{"empty", map[string]string{}},
		{"empty file", map[string]string{"empty.cedar": ""}},
		{"a megabyte", map[string]string{"big.cedar": big, "small.cedar": "// small"}},
		{"awkward", map[string]string{
			"policies/ünïcödé ✓.cedar": "// \u2028\u2029 \U0001F600 \"quoted\" 'single' \\ \x00 \x7f",
			"<html>&amp;.cedar":        "\r\n\t",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := &warden.PolicySet{Files: tt.files, CreatedBy: "alice", CreatedAt: base, Comment: tt.name}
			createPolicySet(t, s, ps, -1)
			// Compared file by file so that a failure does not print a megabyte.
			got := getPolicySet(t, s, ps.Version).Files
			if (got == nil) != (tt.files == nil) || len(got) != len(tt.files) {
				t.Fatalf("%d files (nil %v) back, stored %d (nil %v)", len(got), got == nil, len(tt.files), tt.files == nil)
			}
			for name, text := range tt.files {
				if back, ok := got[name]; !ok || back != text {
					t.Errorf("file %q: %d bytes back (present %v), stored %d", name, len(back), ok, len(text))
				}
			}
		})
	}
	t.Run("not UTF-8", func(t *testing.T) {
		before := policyVersions(t, s)
		for _, files := range []map[string]string{{"bad.cedar": "permit \xff"}, {"bad\xfe.cedar": "permit"}} {
			wantCode(t, s.CreatePolicySet(t.Context(), &warden.PolicySet{Files: files}, -1), warden.EInvalid)
		}
		wantEqual(t, "versions after refusing files", policyVersions(t, s), before)
	})
}
