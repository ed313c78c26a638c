package auditsink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// memLog is a Source in memory: events with seqs 1…n and the cursors of sinks.
type memLog struct {
	mu      sync.Mutex
	evs     []*warden.AuditEvent
	cursors map[string]int64
	changed chan struct{}
}

func newMemLog(n int) *memLog {
	m := &memLog{cursors: map[string]int64{}, changed: make(chan struct{})}
	m.add(n)
	return m
}

func (m *memLog) add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		seq := int64(len(m.evs) + 1)
		m.evs = append(m.evs, &warden.AuditEvent{SchemaVersion: 2, ID: fmt.Sprintf("ev%04d", seq), Seq: seq,
			Time: time.Unix(1700000000+seq, 0).UTC(), Type: warden.EventToolCall,
			Actor:    warden.EventActor{Kind: warden.ActorAgent, Name: "bot"},
			Target:   warden.EventTarget{Tool: "github", Action: "issues.create", Arguments: json.RawMessage(`{"title":"` + strings.Repeat("x", 100) + `"}`)},
			Decision: warden.EventDecision{Effect: warden.EffectAllow}, Hash: fmt.Sprintf("%064d", seq)})
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *memLog) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *memLog) AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*warden.AuditEvent
	for _, ev := range m.evs {
		if ev.Seq > f.AfterSeq && len(out) < f.Limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (m *memLog) AuditSinkCursor(ctx context.Context, name string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[name], nil
}

func (m *memLog) SaveAuditSinkCursor(ctx context.Context, name string, seq int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors[name] = seq
	return nil
}

func (m *memLog) cursor(name string) int64 {
	seq, _ := m.AuditSinkCursor(context.Background(), name)
	return seq
}

// recordingSink records what it was given and fails while down.
type recordingSink struct {
	mu    sync.Mutex
	seqs  []int64
	down  bool
	fails int
}

func (s *recordingSink) Deliver(ctx context.Context, evs []*warden.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.fails++
		return errors.New("down")
	}
	for _, ev := range evs {
		s.seqs = append(s.seqs, ev.Seq)
	}
	return nil
}

func (s *recordingSink) Close() error { return nil }

func (s *recordingSink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *recordingSink) got() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.seqs...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(t *testing.T, r *Runner) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestRunnerCatchesUp takes a sink down while events keep coming: nothing waits for it, and once
// it is back it gets every event, in order, from its cursor.
func TestRunnerCatchesUp(t *testing.T) {
	log := newMemLog(10)
	sink := &recordingSink{}
	r := &Runner{Name: "hook", Sink: sink, Source: log, Notifier: log, Batch: 7, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	stop := run(t, r)
	waitFor(t, "the first events", func() bool { return log.cursor("hook") == 10 })
	sink.setDown(true)
	log.add(25)
	waitFor(t, "failed deliveries", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.fails >= 3 })
	if log.cursor("hook") != 10 {
		t.Fatalf("the cursor moved while the sink was down: %d", log.cursor("hook"))
	}
	sink.setDown(false)
	waitFor(t, "catching up", func() bool { return log.cursor("hook") == 35 })
	stop()
	got := sink.got()
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("delivered %v; want 1…35 in order", got)
		}
	}
}

// TestRunnerResumesFromCursor starts a sink whose cursor says it has 5 events: it gets the rest.
func TestRunnerResumesFromCursor(t *testing.T) {
	log := newMemLog(8)
	log.cursors["file"] = 5
	sink := &recordingSink{}
	stop := run(t, &Runner{Name: "file", Sink: sink, Source: log, Poll: 10 * time.Millisecond})
	waitFor(t, "delivery", func() bool { return log.cursor("file") == 8 })
	stop()
	if got := fmt.Sprint(sink.got()); got != "[6 7 8]" {
		t.Fatalf("delivered %s; want [6 7 8]", got)
	}
}

func TestFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	const maxSize, maxFiles = 4096, 3
	f := NewFile(path, maxSize, maxFiles, JSONL)
	log := newMemLog(100)
	for i := 0; i < 100; i += 9 {
		evs, _ := log.AuditEvents(t.Context(), warden.AuditFilter{AfterSeq: int64(i), Limit: 9})
		if err := f.Deliver(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	var seqs []int64
	for i := maxFiles + 1; i >= 0; i-- {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", path, i)
		}
		data, err := os.ReadFile(p)
		if i > maxFiles {
			if err == nil {
				t.Fatalf("%s exists: more than %d rotated files kept", p, maxFiles)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if len(data) > maxSize {
			t.Errorf("%s has %d bytes, over %d", p, len(data), maxSize)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			var ev warden.AuditEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: a line is not an event: %v", p, err)
			}
			seqs = append(seqs, ev.Seq)
		}
	}
	// The oldest files were dropped; what is kept runs on without a gap to the last event.
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs across the files: %v", seqs)
		}
	}
	if seqs[len(seqs)-1] != 100 || seqs[0] == 1 {
		t.Fatalf("kept %d…%d; want the newest events up to 100, the oldest rotated away", seqs[0], seqs[len(seqs)-1])
	}
}

func TestSyslogTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	msgs := make(chan string, 100)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			// Octet counting: "LEN SP MSG".
			n, err := r.ReadString(' ')
			if err != nil {
				return
			}
			size, _ := strconv.Atoi(strings.TrimSpace(n))
			buf := make([]byte, size)
			if _, err := io.ReadFull(r, buf); err != nil {
				return
			}
			msgs <- string(buf)
		}
	}()
	s, err := NewSyslog("tcp", ln.Addr().String(), "authpriv", "replica-1", OCSF)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := newMemLog(3)
	log.evs[1].Decision.Effect = warden.EffectDeny
	evs, _ := log.AuditEvents(t.Context(), warden.AuditFilter{Limit: 10})
	if err := s.Deliver(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := <-msgs
		// authpriv (10) × 8 + info (6) = 86; a refusal is a warning (4): 84.
		pri := "<86>1 "
		if i == 1 {
			pri = "<84>1 "
		}
		head, body, ok := strings.Cut(m, " - \xef\xbb\xbf")
		if !ok || !strings.HasPrefix(head, pri) || !strings.HasSuffix(head, " replica-1 warden - tool.call") {
			t.Fatalf("message %d header %q", i, head)
		}
		var o map[string]any
		if err := json.Unmarshal([]byte(body), &o); err != nil || o["class_uid"] != float64(6003) {
			t.Fatalf("message %d body %s: %v", i, body, err)
		}
	}
}

func TestSyslogUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := NewSyslog("udp", pc.LocalAddr().String(), "local0", "", JSONL)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := newMemLog(2)
	log.evs[1].Target.Arguments = json.RawMessage(`{"big":"` + strings.Repeat("a", 70000) + `"}`)
	evs, _ := log.AuditEvents(t.Context(), warden.AuditFilter{Limit: 10})
	if err := s.Deliver(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for i := range 2 {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := string(buf[:n])
		if !strings.HasPrefix(m, "<134>1 ") || !strings.Contains(m, " - warden - tool.call - \xef\xbb\xbf{") {
			t.Fatalf("datagram %d: %.120q", i, m)
		}
		if i == 1 && !strings.Contains(m, "too large for a datagram") {
			t.Fatalf("an oversized event went whole or not at all: %d bytes", n)
		}
	}
}

func TestWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var headers http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		headers = r.Header.Clone()
		got = append(got, strings.Split(strings.TrimSpace(string(body)), "\n")...)
	}))
	defer srv.Close()
	w := NewWebhook(srv.URL, map[string]string{"Authorization": "Bearer siem-token"}, time.Second, JSONL)
	log := newMemLog(4)
	evs, _ := log.AuditEvents(t.Context(), warden.AuditFilter{Limit: 10})
	if err := w.Deliver(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || headers.Get("Content-Type") != "application/x-ndjson" || headers.Get("Authorization") != "Bearer siem-token" ||
		headers.Get("Warden-Audit-First-Seq") != "1" || headers.Get("Warden-Audit-Last-Seq") != "4" {
		t.Fatalf("received %d lines, headers %v", len(got), headers)
	}
	// The line is the canonical encoding with the hash: remove it and it hashes to the hash.
	var ev warden.AuditEvent
	if err := json.Unmarshal([]byte(got[0]), &ev); err != nil || ev.Seq != 1 || ev.Hash == "" {
		t.Fatalf("line %s: %v", got[0], err)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	if err := NewWebhook(down.URL, nil, time.Second, JSONL).Deliver(t.Context(), evs); err == nil {
		t.Fatal("a 503 acknowledged a batch")
	}
}
