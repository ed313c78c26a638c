package sqlstore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// TestPlaceIsChain checks that an event encoded before its place is known and then placed has
// the very bytes and hash of one encoded whole in its place.
func TestPlaceIsChain(t *testing.T) {
	prev := strings.Repeat("ab", 32)
	for _, ev := range []*warden.AuditEvent{
		{ID: "01J", Time: time.Unix(1, 5), Type: "x", SchemaVersion: 2},
		{ID: `we"ird\id` + "\u2028<&>", Time: time.Now(), Type: "tool.call", SchemaVersion: 2, TraceID: "t", SpanID: "s",
			Target: warden.EventTarget{Arguments: json.RawMessage(`{"a": [1, 2]}`)}, PrevHash: "ignored", Hash: "ignored", Seq: 77},
		{ID: "", Time: time.Now(), SchemaVersion: 1},
	} {
		for _, p := range []string{"", prev} {
			u, ok, err := encodeUnplaced(ev)
			if err != nil || !ok {
				t.Fatalf("encodeUnplaced(%+v): %v %v", ev, ok, err)
			}
			want, err := chain(ev, 41, p)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.place(41, p); string(got.body) != string(want.body) || got.hash != want.hash || got.seq != 42 {
				t.Fatalf("placed\n%s\nwhole\n%s", got.body, want.body)
			}
		}
	}
}

func FuzzPlaceIsChain(f *testing.F) {
	f.Add("01J", "tool.call", "msg", `{"a":1}`, int64(3))
	f.Add(`"\`, "", "\x00\xff", `[]`, int64(0))
	f.Fuzz(func(t *testing.T, id, typ, msg, args string, seq int64) {
		ev := &warden.AuditEvent{ID: id, Type: typ, Time: time.Unix(seq, 0), SchemaVersion: int(seq % 5),
			Decision: warden.EventDecision{Message: msg}}
		if json.Valid([]byte(args)) {
			ev.Target.Arguments = json.RawMessage(args)
		}
		u, ok, err := encodeUnplaced(ev)
		if err != nil || !ok {
			return // encoded whole under the lock instead
		}
		want, err := chain(ev, seq, "00ff")
		if err != nil {
			t.Fatal(err)
		}
		if got := u.place(seq, "00ff"); string(got.body) != string(want.body) {
			t.Fatalf("placed\n%s\nwhole\n%s", got.body, want.body)
		}
	})
}
