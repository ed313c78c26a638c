package taint

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// endlessStore has ever more observations of every session, each old enough to have settled.
type endlessStore struct {
	warden.FlowStore
	appends int
}

func (s *endlessStore) AppendFlowObservation(_ context.Context, o *warden.FlowObservation) error {
	s.appends++
	o.ID = int64(s.appends)
	return nil
}

func (*endlessStore) FlowObservations(_ context.Context, agent, session string, after int64, limit int) ([]*warden.FlowObservation, error) {
	rows := make([]*warden.FlowObservation, limit)
	for i := range rows {
		rows[i] = &warden.FlowObservation{ID: after + int64(i) + 1, AgentID: agent, Session: session, Tool: "web", Private: true,
			CreatedAt: time.Unix(1e9, 0)}
	}
	return rows, nil
}

// TestLoadPageLimit: a session with more observations than Load reads fails to load (its call is
// refused) rather than being decided with part of them.
func TestLoadPageLimit(t *testing.T) {
	defer func(n int) { maxPages = n }(maxPages)
	maxPages = 1
	s := New(Config{Store: &endlessStore{}, Shared: true, Key: []byte("0123456789abcdef")}, nil)
	if err := s.Load(context.Background(), Key{Agent: "a", Session: "s"}); err == nil {
		t.Fatal("Load succeeded with observations left unread")
	}
}

// TestSyncedBound: beyond maxSynced the least recently used sync states without a marker are
// forgotten; a session's marker state is kept, so that it is not taken for history lost with a
// restart.
func TestSyncedBound(t *testing.T) {
	defer func(n int) { maxSynced = n }(maxSynced)
	maxSynced = 3
	ctx := context.Background()
	store := &endlessStore{}
	s := New(Config{Store: store}, nil)
	marked := Key{Agent: "a", Session: "marked"}
	if err := s.Record(ctx, marked, Source{Tool: "web"}, untrusted, "mallory@evil.example"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.Load(ctx, Key{Agent: "a", Session: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	n, st := len(s.synced), s.synced[marked]
	s.mu.Unlock()
	if n > maxSynced || st == nil || st.markedAt.IsZero() {
		t.Fatalf("%d sync states, the marked one %+v", n, st)
	}
	if err := s.Load(ctx, marked); err != nil {
		t.Fatal(err)
	}
	if f := s.Facts(marked, send, map[string]any{"to": "x"}); f.Evicted || !f.UntrustedRead {
		t.Fatalf("the marked session after many others: %+v", f)
	}
	if store.appends != 1 {
		t.Fatalf("%d markers recorded; want 1", store.appends)
	}
}
