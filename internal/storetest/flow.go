package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var flowTests = []storeTest{
	{"append and read a session's observations in order", func(t *testing.T, s warden.Store) {
		ctx := context.Background()
		var ids []int64
		for i, sess := range []string{"s1", "s2", "s1", "s1"} {
			o := &warden.FlowObservation{AgentID: "agt_1", Session: sess, Tool: "mail", Action: "read", Decision: "dec_" + sess,
				Untrusted: i%2 == 0, Private: i == 3, Partial: i == 3, Values: []byte{byte(i), 0, 255}, Bytes: 100 * i, CreatedAt: base.Add(time.Duration(i) * time.Second)}
			if err := s.AppendFlowObservation(ctx, o); err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 && o.ID <= ids[len(ids)-1] {
				t.Fatalf("ids do not increase: %d after %v", o.ID, ids)
			}
			ids = append(ids, o.ID)
		}
		got, err := s.FlowObservations(ctx, "agt_1", "s1", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].ID != ids[0] || got[1].ID != ids[2] || got[2].ID != ids[3] {
			t.Fatalf("s1 observations: %+v", got)
		}
		want := &warden.FlowObservation{ID: ids[3], AgentID: "agt_1", Session: "s1", Tool: "mail", Action: "read", Decision: "dec_s1",
			Private: true, Partial: true, Values: []byte{3, 0, 255}, Bytes: 300, CreatedAt: base.Add(3 * time.Second).UTC()}
		wantEqual(t, "observation", got[2], want)
		after, err := s.FlowObservations(ctx, "agt_1", "s1", ids[2], 0)
		if err != nil || len(after) != 1 || after[0].ID != ids[3] {
			t.Fatalf("after %d: %v %+v", ids[2], err, after)
		}
		if one, err := s.FlowObservations(ctx, "agt_1", "s1", 0, 1); err != nil || len(one) != 1 || one[0].ID != ids[0] {
			t.Fatalf("limit 1: %v %+v", err, one)
		}
		if other, err := s.FlowObservations(ctx, "agt_2", "s1", 0, 0); err != nil || len(other) != 0 {
			t.Fatalf("another agent's session of the same name: %v %+v", err, other)
		}
		if err := s.DeleteFlowSession(ctx, "agt_1", "s1"); err != nil {
			t.Fatal(err)
		}
		if left, _ := s.FlowObservations(ctx, "agt_1", "s1", 0, 0); len(left) != 0 {
			t.Fatalf("after delete: %+v", left)
		}
		if left, _ := s.FlowObservations(ctx, "agt_1", "s2", 0, 0); len(left) != 1 {
			t.Fatalf("delete took another session: %+v", left)
		}
	}},
	{"prune drops idle sessions whole", func(t *testing.T, s warden.Store) {
		ctx := context.Background()
		add := func(sess string, at time.Time) {
			if err := s.AppendFlowObservation(ctx, &warden.FlowObservation{AgentID: "agt_1", Session: sess, Tool: "mail", CreatedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		add("idle", base)
		add("idle", base.Add(time.Minute))
		add("active", base) // old, but its session was observed again since
		add("active", base.Add(2*time.Hour))
		n, err := s.PruneFlowObservations(ctx, base.Add(time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("pruned %d: %v", n, err)
		}
		if left, _ := s.FlowObservations(ctx, "agt_1", "active", 0, 0); len(left) != 2 {
			t.Fatalf("an active session lost its older observations: %+v", left)
		}
		if left, _ := s.FlowObservations(ctx, "agt_1", "idle", 0, 0); len(left) != 0 {
			t.Fatalf("an idle session was kept: %+v", left)
		}
	}},
	{"bad observations are refused", func(t *testing.T, s warden.Store) {
		ctx := context.Background()
		wantCode(t, s.AppendFlowObservation(ctx, &warden.FlowObservation{Session: "s", Tool: "t", CreatedAt: base}), warden.EInvalid)
		wantCode(t, s.AppendFlowObservation(ctx, &warden.FlowObservation{AgentID: "a", Session: "s", Tool: "t",
			Values: make([]byte, warden.MaxFlowValues+1), CreatedAt: base}), warden.EInvalid)
	}},
}
