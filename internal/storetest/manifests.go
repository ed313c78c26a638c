package storetest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/wardenhq/warden"
)

var manifestTests = []storeTest{
	{"PutListDelete", testToolManifests},
}

func testToolManifests(t *testing.T, s warden.Store) {
	ctx := t.Context()
	pinned := &warden.ToolManifest{Tool: "github", Name: "search", State: warden.ManifestPinned, Digest: "sha256:01",
		Manifest: json.RawMessage(`{"name":"search"}`), FirstSeen: base.UTC()}
	added := &warden.ToolManifest{Tool: "github", Name: "add", State: warden.ManifestHeld,
		HeldDigest: "sha256:02", HeldManifest: json.RawMessage(`{"name":"add"}`), Diff: json.RawMessage(`[]`),
		Findings: json.RawMessage(`[{"rule":"tag-characters","severity":"high"}]`), FirstSeen: base.UTC()}
	other := &warden.ToolManifest{Tool: "jira", Name: "create", State: warden.ManifestPinned, Digest: "sha256:03",
		Manifest: json.RawMessage(`{"name":"create"}`), FirstSeen: base.UTC(), AcceptedBy: "alice", AcceptedReason: "reviewed"}
	for _, m := range []*warden.ToolManifest{other, pinned, added} {
		if err := s.PutToolManifest(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutToolManifest(ctx, &warden.ToolManifest{Tool: "x", Name: "y", State: "odd"}); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a bad state: %v, want EInvalid", err)
	}
	all, err := s.ToolManifests(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []*warden.ToolManifest{added, pinned, other}; !reflect.DeepEqual(all, want) {
		t.Fatalf("ToolManifests(\"\") = %s, want %s", show(all), show(want))
	}
	// Accepting replaces the row.
	acc := *added
	acc.State, acc.Digest, acc.Manifest, acc.HeldDigest, acc.HeldManifest, acc.Diff = warden.ManifestPinned, "sha256:02", added.HeldManifest, "", nil, nil
	acc.AcceptedBy, acc.AcceptedReason = "bob", "checked"
	if err := s.PutToolManifest(ctx, &acc); err != nil {
		t.Fatal(err)
	}
	got, err := s.ToolManifests(ctx, "github")
	if err != nil {
		t.Fatal(err)
	}
	if want := []*warden.ToolManifest{&acc, pinned}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after accept = %s, want %s", show(got), show(want))
	}
	if err := s.DeleteToolManifests(ctx, "github"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ToolManifests(ctx, ""); err != nil || len(got) != 1 || got[0].Tool != "jira" {
		t.Fatalf("after delete = %s, %v; want jira's only", show(got), err)
	}
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
