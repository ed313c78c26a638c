package replicatest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/bench"
)

// TestDrillKillReplicas runs `warden drill kill --replicas r1,r2,r3 --json` against three
// replicas: the drill learns each replica's id, spreads the canary's sessions, calls in flight
// and load over them, kills through r1 and checks every guarantee on each; it leaves nothing
// behind.
func TestDrillKillReplicas(t *testing.T) {
	f := Start(t, Options{})
	var urls []string
	for _, r := range f.Replicas {
		urls = append(urls, r.URL)
	}
	out, err := f.CLI(0, "drill", "kill", "--replicas", strings.Join(urls, ","), "--rate", "100", "--sessions", "3",
		"--before", "500ms", "--after", "500ms", "--sandbox=false", "--json")
	var res bench.DrillResult
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
		t.Fatalf("warden drill kill --replicas: %v; its output is not a drill result: %v\n%s", err, jerr, out)
	}
	if len(res.Replicas) != len(f.Replicas) {
		t.Fatalf("the drill reports %d replicas, want %d: %+v", len(res.Replicas), len(f.Replicas), res.Replicas)
	}
	for k, r := range res.Replicas {
		want := f.Replicas[k]
		if r.ID != want.ID || r.URL != want.URL {
			t.Errorf("replica row %d is %s at %s, want %s at %s", k, r.ID, r.URL, want.ID, want.URL)
		}
		if r.InFlight != 2 || r.Streams != 1 {
			t.Errorf("%s: %d calls in flight and %d MCP sessions, want 2 and 1 on each replica", r.ID, r.InFlight, r.Streams)
		}
		if r.CallsAfter == 0 {
			t.Errorf("%s: the drill's load sent it no call after the kill", r.ID)
		}
		t.Logf("%s: acked %v (%.1f ms), cancelled %d of %d (last %.1f ms), sessions closed %d of %d, succeeded after %d of %d, allowed after %d",
			r.ID, r.Acked, r.AckedMS, r.Cancelled, r.InFlight, r.LastCancelMS, r.StreamsClosed, r.Streams, r.SucceededAfter, r.CallsAfter, r.AllowedAfter)
	}
	t.Logf("kill returned in %.1f ms; a trivial admin request %.1f ms", res.KillReturnMS, res.AdminRoundTripMS)
	if res.Cleanup == nil || !res.Cleanup.OK() {
		t.Errorf("the drill left something behind: %+v", res.Cleanup)
	}
	if failed := res.Failed(); len(failed) > 0 {
		for _, c := range res.Checks {
			if !c.Passed {
				t.Errorf("guarantee %q failed: %s", c.Name, c.Detail)
			}
		}
	}
	if err != nil && len(res.Failed()) == 0 {
		t.Errorf("warden drill kill --replicas failed with every guarantee held: %v", err)
	}
}
