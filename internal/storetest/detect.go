package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var detectTests = []storeTest{
	{"one lease holder at a time; state saved only by the holder", func(t *testing.T, s warden.Store) {
		ctx := context.Background()
		seq, ok, err := s.AcquireDetectLease(ctx, "r1", base, base.Add(10*time.Second))
		if err != nil || !ok || seq != 0 {
			t.Fatalf("first lease: seq %d ok %v err %v", seq, ok, err)
		}
		if _, ok, err := s.AcquireDetectLease(ctx, "r2", base.Add(5*time.Second), base.Add(15*time.Second)); err != nil || ok {
			t.Fatalf("r2 got a live lease of r1: ok %v err %v", ok, err)
		}
		if err := s.SaveDetectState(ctx, "r1", 42, map[string][]byte{"bot": []byte(`{"calls":1}`), "other": []byte(`{"calls":7}`)}, base); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.SaveDetectState(ctx, "r2", 43, map[string][]byte{"bot": []byte(`{"calls":2}`)}, base), warden.EConflict)
		if seq, ok, err := s.AcquireDetectLease(ctx, "r1", base.Add(time.Second), base.Add(11*time.Second)); err != nil || !ok || seq != 42 {
			t.Fatalf("r1 renews: seq %d ok %v err %v", seq, ok, err)
		}
		// r1's lease lapses: r2 takes over from the cursor r1 saved.
		seq, ok, err = s.AcquireDetectLease(ctx, "r2", base.Add(11*time.Second), base.Add(21*time.Second))
		if err != nil || !ok || seq != 42 {
			t.Fatalf("r2 after the lapse: seq %d ok %v err %v", seq, ok, err)
		}
		wantCode(t, s.SaveDetectState(ctx, "r1", 50, nil, base), warden.EConflict)
		got, err := s.DetectBaselines(ctx)
		if err != nil || string(got["bot"]) != `{"calls":1}` || len(got) != 2 {
			t.Fatalf("baselines: %q %v", got, err)
		}
		got, err = s.DetectBaselines(ctx, "bot", "nobody")
		if err != nil || string(got["bot"]) != `{"calls":1}` || len(got) != 1 {
			t.Fatalf("bot's baseline: %q %v", got, err)
		}
	}},
	{"holds in force and acknowledgements once", func(t *testing.T, s warden.Store) {
		ctx := context.Background()
		for _, h := range []*warden.DetectHold{
			{Agent: "bot", Tool: "mail", Action: "send", Finding: "f1", Until: base.Add(time.Hour)},
			{Agent: "bot", Finding: "f2", Until: base.Add(time.Minute)},
			{Agent: "bot", Tool: "mail", Action: "send", Finding: "f3", Until: base.Add(2 * time.Hour)},
			{Agent: "bot", Tool: "egress", Action: "connect", Resource: "a.example:443", Finding: "f4", Until: base.Add(time.Hour)},
			{Agent: "bot", Tool: "egress", Action: "connect", Resource: "b.example:443", Finding: "f5", Until: base.Add(time.Hour)},
		} {
			if err := s.PutDetectHold(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		holds, err := s.DetectHolds(ctx, base.Add(30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "holds", holds, []*warden.DetectHold{
			{Agent: "bot", Tool: "egress", Action: "connect", Resource: "a.example:443", Finding: "f4", Until: base.Add(time.Hour).UTC()},
			{Agent: "bot", Tool: "egress", Action: "connect", Resource: "b.example:443", Finding: "f5", Until: base.Add(time.Hour).UTC()},
			{Agent: "bot", Tool: "mail", Action: "send", Finding: "f3", Until: base.Add(2 * time.Hour).UTC()},
		})
		wantCode(t, s.PutDetectHold(ctx, &warden.DetectHold{Tool: "x"}), warden.EInvalid)

		a := &warden.DetectAck{Finding: "f1", By: "ana", Reason: "expected: new release", At: base}
		if err := s.AckDetectFinding(ctx, a); err != nil {
			t.Fatal(err)
		}
		wantCode(t, s.AckDetectFinding(ctx, a), warden.EConflict)
		wantCode(t, s.AckDetectFinding(ctx, &warden.DetectAck{Finding: "f2", By: "ana"}), warden.EInvalid)
		acks, err := s.DetectAcks(ctx, []string{"f1", "f2"})
		if err != nil || len(acks) != 1 {
			t.Fatalf("acks: %v %v", acks, err)
		}
		wantEqual(t, "ack", acks["f1"], &warden.DetectAck{Finding: "f1", By: "ana", Reason: "expected: new release", At: base.UTC()})
	}},
}
