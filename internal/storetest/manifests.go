package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var manifestTests = []storeTest{
	{"PutListDelete", testToolManifests},
	{"UpdateTakesTurns", testUpdateToolManifests},
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

// testUpdateToolManifests: updates of one server's manifests take turns, even from two
// connections (replicas) at once, so only one of two first listings sees no pins; an error
// from fn writes nothing; the server must exist.
func testUpdateToolManifests(t *testing.T, s warden.Store) {
	ctx := t.Context()
	createTool(t, s, newTool("github"))
	if err := s.UpdateToolManifests(ctx, "nosuch", func([]*warden.ToolManifest) ([]*warden.ToolManifest, error) {
		return nil, nil
	}); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("an unknown server: %v, want ENotFound", err)
	}
	row := func(name, digest string) *warden.ToolManifest {
		return &warden.ToolManifest{Tool: "github", Name: name, State: warden.ManifestPinned, Digest: digest,
			Manifest: json.RawMessage(`{"name":"` + name + `"}`), FirstSeen: base.UTC()}
	}
	boom := errors.New("boom")
	if err := s.UpdateToolManifests(ctx, "github", func([]*warden.ToolManifest) ([]*warden.ToolManifest, error) {
		return []*warden.ToolManifest{row("a", "sha256:01")}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v, want it back", err)
	}
	if err := s.UpdateToolManifests(ctx, "github", func([]*warden.ToolManifest) ([]*warden.ToolManifest, error) {
		return []*warden.ToolManifest{row("a", "sha256:01"), {Tool: "jira", Name: "x", State: warden.ManifestPinned}}, nil
	}); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("another server's row: %v, want EInvalid", err)
	}
	if got, err := s.ToolManifests(ctx, "github"); err != nil || len(got) != 0 {
		t.Fatalf("after failed updates: %s, %v; want nothing written", show(got), err)
	}

	// Two first listings at once: the first waits inside its update (up to 300 ms) for the
	// second to enter its own; taking turns, the second cannot, and then sees the first's pins.
	var mu sync.Mutex
	sawNone := 0
	entered := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, digest := range []string{"sha256:0a", "sha256:0b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(50 * time.Millisecond) // after the first has begun
			}
			err := s.UpdateToolManifests(ctx, "github", func(cur []*warden.ToolManifest) ([]*warden.ToolManifest, error) {
				entered <- struct{}{}
				if i == 0 {
					wait, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
					defer cancel()
					for len(entered) < 2 && wait.Err() == nil {
						time.Sleep(5 * time.Millisecond)
					}
				}
				if len(cur) > 0 {
					return nil, nil
				}
				mu.Lock()
				sawNone++
				mu.Unlock()
				return []*warden.ToolManifest{row("a", digest), row("b", digest)}, nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if sawNone != 1 {
		t.Fatalf("%d updates saw no pins, want 1: updates of one server did not take turns", sawNone)
	}
	got, err := s.ToolManifests(ctx, "github")
	if err != nil || len(got) != 2 || got[0].Digest != got[1].Digest {
		t.Fatalf("pins after two first listings: %s, %v; want both from one listing", show(got), err)
	}
}
