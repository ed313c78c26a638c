package fleet

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/clock"
)

func TestDecodeNotice(t *testing.T) {
	change := func(c Change) notice { return notice{change: &c} }
	tests := []struct {
		payload string
		want    notice
		err     string
	}{
		{`{"t":"agent","n":"a1","v":7,"r":"r1"}`, change(Change{Topic: TopicAgent, Name: "a1", Version: 7, Replica: "r1"}), ""},
		{`{"t":"lockdown","n":"","v":1,"r":"r1","future":true}`, change(Change{Topic: TopicLockdown, Version: 1, Replica: "r1"}), ""},
		// A topic from a newer replica is applied as a reload of everything.
		{`{"t":"gizmo","n":"g","v":2,"r":"r1"}`, change(Change{Topic: TopicAll, Version: 2, Replica: "r1"}), ""},
		{`{"kind":"ack","replica":"r2","version":7,"calls_cancelled":1,"sessions_closed":2,"sandboxes_stopped":3}`,
			notice{ack: &ack{Replica: "r2", Version: 7, Applied: Applied{1, 2, 3}}}, ""},
		{`{"kind":"hello","anything":1}`, notice{}, ""},
		{`not json`, notice{}, "not a JSON object"},
		{`[1]`, notice{}, "not a JSON object"},
		{`{"t":"agent","v":0,"r":"r1"}`, notice{}, "positive version"},
		{`{"t":"agent","v":3}`, notice{}, "publisher"},
		{`{"t":"agent","v":"3","r":"r1"}`, notice{}, "change"},
		{`{"t":"agent","n":"` + strings.Repeat("n", maxNameLen+1) + `","v":3,"r":"r1"}`, notice{}, "more than a name"},
		{`{"kind":"ack","replica":"r2","version":-1}`, notice{}, "positive version"},
		{`{"kind":"ack","version":4}`, notice{}, "without a replica"},
		{`{"kind":"ack","replica":"r2","version":4,"sessions_closed":-2}`, notice{}, "negative count"},
		{`{"kind":7}`, notice{}, "not a JSON object"},
		{strings.Repeat(" ", maxPayload+1), notice{}, "more than a notification holds"},
	}
	for _, tt := range tests {
		got, err := decodeNotice(tt.payload)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("decodeNotice(%.60q) err = %v, want %q", tt.payload, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("decodeNotice(%.60q): %v", tt.payload, err)
			continue
		}
		if !equalNotice(got, tt.want) {
			t.Errorf("decodeNotice(%.60q) = %+v %+v, want %+v %+v", tt.payload, got.change, got.ack, tt.want.change, tt.want.ack)
		}
	}
}

func equalNotice(a, b notice) bool {
	if (a.change == nil) != (b.change == nil) || (a.ack == nil) != (b.ack == nil) {
		return false
	}
	return (a.change == nil || *a.change == *b.change) && (a.ack == nil || *a.ack == *b.ack)
}

// FuzzDecodeNotice holds that no payload panics the decoder, that what it accepts is what the
// feed relies on (a positive version, a named replica, a topic it knows, counts not negative)
// and that an acknowledgement survives its own encoding.
func FuzzDecodeNotice(f *testing.F) {
	for _, seed := range []string{
		`{"t":"agent","n":"a1","v":7,"r":"r1"}`,
		`{"t":"all","v":1,"r":"x"}`,
		`{"kind":"ack","replica":"r2","version":7,"calls_cancelled":1,"sessions_closed":2,"sandboxes_stopped":3}`,
		`{"kind":"other"}`, `{"kind":null,"t":"tool","v":1,"r":"r"}`, `{}`, `null`, `"x"`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		n, err := decodeNotice(payload)
		if err != nil {
			if n.change != nil || n.ack != nil {
				t.Fatalf("an error with a notice: %+v %+v", n.change, n.ack)
			}
			return
		}
		if c := n.change; c != nil {
			if c.Version <= 0 || c.Replica == "" || !c.Topic.known() || len(c.Name) > maxNameLen {
				t.Fatalf("accepted change %+v", *c)
			}
		}
		if a := n.ack; a != nil {
			if a.Version <= 0 || a.Replica == "" || a.CallsCancelled < 0 || a.SessionsClosed < 0 || a.SandboxesStopped < 0 {
				t.Fatalf("accepted ack %+v", *a)
			}
			again, err := decodeNotice(encodeAck(*a))
			if err != nil || again.ack == nil || *again.ack != *a {
				t.Fatalf("ack %+v does not survive encoding: %+v, %v", *a, again.ack, err)
			}
		}
		if n.change != nil && n.ack != nil {
			t.Fatal("a payload read as both a change and an acknowledgement")
		}
	})
}

func TestEncodeAckIsAnAcknowledgementOfTheContract(t *testing.T) {
	var got map[string]any
	if err := json.Unmarshal([]byte(encodeAck(ack{Replica: "r", Version: 3, Applied: Applied{1, 2, 3}})), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"kind", "replica", "version", "calls_cancelled", "sessions_closed", "sandboxes_stopped"} {
		if _, ok := got[key]; !ok {
			t.Errorf("acknowledgement %v has no %q", got, key)
		}
	}
}

// TestQueueCollapsesBehindTheHead holds the queue's bound: past queueKept changes the waiting
// ones collapse into one reload of their newest version, and the change the applier holds
// stays at the head (pending) until it pops it.
func TestQueueCollapsesBehindTheHead(t *testing.T) {
	var pending atomic.Int64
	clk := clock.NewFake(time.Unix(1000, 0))
	q := newQueue(clk, &pending)
	q.push(item{change: Change{Topic: TopicAgent, Name: "held", Version: 1, Replica: "r"}})
	first := pending.Load()
	head, ok := q.head(context.Background())
	if !ok || head.change.Name != "held" {
		t.Fatalf("head = %+v, %v", head, ok)
	}
	for v := int64(2); v <= queueKept+1; v++ { // the last push overflows
		clk.Advance(time.Millisecond)
		q.push(item{change: Change{Topic: TopicTool, Version: v, Replica: "r"}})
	}
	if len(q.items) != 2 || pending.Load() != first {
		t.Fatalf("queue holds %d items, pending since %d; want 2, pending since %d", len(q.items), pending.Load(), first)
	}
	q.pop()
	next, _ := q.head(context.Background())
	if next.change.Topic != TopicAll || next.change.Version != queueKept+1 {
		t.Errorf("after the head: %+v, want a reload of version %d", next.change, queueKept+1)
	}
	if pending.Load() != next.arrived.UnixNano() {
		t.Error("pending does not follow the new head")
	}
	q.pop()
	if pending.Load() != 0 {
		t.Error("pending with nothing queued")
	}
}
