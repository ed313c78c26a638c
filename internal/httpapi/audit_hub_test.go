package httpapi

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/sqlite"
)

// hubRig is a hub over a real audit log on SQLite, served on 127.0.0.1: GET /?after=N streams
// every event after seq N.
type hubRig struct {
	log *audit.Log
	hub *AuditHub
	url string
}

func newHubRig(t *testing.T, opt HubOptions) *hubRig {
	t.Helper()
	store, err := sqlite.OpenLog(context.Background(), filepath.Join(t.TempDir(), "warden.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	l := audit.New(store, audit.Options{Replica: "r1"})
	t.Cleanup(func() { l.Close() })
	h := NewAuditHub(l, store, opt)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
		if err := h.Stream(r.Context(), w, after, nil); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return &hubRig{log: l, hub: h, url: srv.URL}
}

func (r *hubRig) appendN(t *testing.T, n int) {
	t.Helper()
	for range n {
		ev := &warden.AuditEvent{Type: "agent.created", Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "agt_1", Name: "bot"}}
		if err := r.log.Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// follow opens a stream after seq after and sends the seq of each event it reads on ids, until
// the stream ends or ctx does. It returns once the stream is open.
func (r *hubRig) follow(t *testing.T, ctx context.Context, after int64, ids chan<- int64) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.url+"/?after="+strconv.FormatInt(after, 10), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != "retry: 2000" { // the stream is open, and subscribed
		t.Fatalf("stream began with %q", sc.Text())
	}
	go func() {
		defer resp.Body.Close()
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				seq, _ := strconv.ParseInt(id, 10, 64)
				select {
				case ids <- seq:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
}

// TestAuditHubStuckSubscriber: 20 streams get every event in order while one subscriber that
// never reads sits on the hub; that one is dropped once its buffer is full, holding what fitted
// (with no pacing, each commit is a read of its own).
func TestAuditHubStuckSubscriber(t *testing.T) {
	const buffer, streams, events = 4, 20, 60
	r := newHubRig(t, HubOptions{Buffer: buffer, Pace: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stuck, err := r.hub.subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.hub.unsubscribe(stuck)
	got := make([]chan int64, streams)
	for i := range got {
		got[i] = make(chan int64, events)
		r.follow(t, ctx, 0, got[i])
	}
	r.appendN(t, events)
	for i, ids := range got {
		for want := int64(1); want <= events; want++ {
			select {
			case seq := <-ids:
				if seq != want {
					t.Fatalf("stream %d: event %d; want %d", i, seq, want)
				}
			case <-ctx.Done():
				t.Fatalf("stream %d: waiting for event %d: %v", i, want, ctx.Err())
			}
		}
	}
	n := 0
	for range stuck.c { // closed by the hub: the loop ends
		n++
	}
	if n != buffer {
		t.Fatalf("the stuck subscriber held %d reads; want %d", n, buffer)
	}
}

// blockingWriter is a client that stops reading: Write blocks until release is closed.
type blockingWriter struct {
	header  http.Header
	mu      sync.Mutex
	body    strings.Builder
	block   chan struct{} // closed: writes block from now on
	release chan struct{}
}

func (w *blockingWriter) Header() http.Header { return w.header }
func (w *blockingWriter) WriteHeader(int)     {}
func (w *blockingWriter) Flush()              {}
func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case <-w.block:
		<-w.release
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.Write(p)
}

func sseIDs(body string) []int64 {
	var ids []int64
	for line := range strings.Lines(body) {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "id: "); ok {
			seq, _ := strconv.ParseInt(id, 10, 64)
			ids = append(ids, seq)
		}
	}
	return ids
}

// TestAuditHubResume: a stream whose client stops reading is dropped without holding up
// another; reconnecting after the last id it got, it gets every later event — those the hub
// handed out while it was away from the store, the rest live — in order, none skipped or
// repeated.
func TestAuditHubResume(t *testing.T) {
	const buffer = 4
	r := newHubRig(t, HubOptions{Buffer: buffer, Pace: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	other := make(chan int64, 1000)
	r.follow(t, ctx, 0, other) // keeps the hub's reader going all along
	next := int64(1)
	waitOther := func(upTo int64) {
		t.Helper()
		for ; next <= upTo; next++ {
			select {
			case seq := <-other:
				if seq != next {
					t.Fatalf("the other stream got %d; want %d", seq, next)
				}
			case <-ctx.Done():
				t.Fatalf("the other stream, waiting for %d: %v", next, ctx.Err())
			}
		}
	}
	w := &blockingWriter{header: http.Header{}, block: make(chan struct{}), release: make(chan struct{})}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		if err := r.hub.Stream(ctx, w, 0, nil); err != nil {
			t.Error(err)
		}
	}()
	r.appendN(t, 5)
	waitOther(5)
	for {
		w.mu.Lock()
		n := len(sseIDs(w.body.String()))
		w.mu.Unlock()
		if n == 5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the slow stream never got its first events")
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(w.block) // the client stops reading
	r.appendN(t, 40)
	waitOther(45) // the other stream is not held up
	close(w.release)
	<-ended // dropped
	first := sseIDs(w.body.String())
	last := first[len(first)-1]
	if last >= 45 {
		t.Fatalf("the slow stream was not dropped: it got up to %d", last)
	}
	r.appendN(t, 5)
	waitOther(50)
	resumed := make(chan int64, 100)
	r.follow(t, ctx, last, resumed)
	r.appendN(t, 5)
	got := first
	for int64(len(got)) < 55 {
		select {
		case seq := <-resumed:
			got = append(got, seq)
		case <-ctx.Done():
			t.Fatalf("after resuming: %v", got)
		}
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("event %d of the resumed stream is %d: %v", i+1, seq, got)
		}
	}
}

// TestAuditHubPace: the commits made while the reader waits out its pace go to each stream
// together, in one read of the log.
func TestAuditHubPace(t *testing.T) {
	clk := clock.NewFake(time.Now())
	r := newHubRig(t, HubOptions{Pace: time.Second, Clock: clk})
	s, err := r.hub.subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.hub.unsubscribe(s)
	if err := clk.WaitForTimersWithin(2, 10*time.Second); err != nil { // the poll and the pace
		t.Fatal(err)
	}
	r.appendN(t, 5)
	clk.Advance(time.Second)
	var reads [][]int64
	for n := 0; n < 5; {
		select {
		case batch := <-s.c:
			var seqs []int64
			for _, e := range batch {
				seqs = append(seqs, e.ev.Seq)
			}
			reads, n = append(reads, seqs), n+len(batch)
		case <-time.After(10 * time.Second):
			t.Fatalf("reads so far: %v", reads)
		}
	}
	if len(reads) != 1 || len(reads[0]) != 5 || reads[0][0] != 1 || reads[0][4] != 5 {
		t.Fatalf("the five commits came in reads %v; want one read of 1 to 5", reads)
	}
}
