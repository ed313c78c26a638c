package taint

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"github.com/wardenhq/warden"
)

// settle is how long after an observation was recorded another replica's observation with a
// lower ID may still commit: Load reads again what is younger, so that an ID assigned before
// but committed after one it has read is not skipped. An observation's time is its recording
// replica's clock, read by another replica's: the replicas' clocks must agree within settle
// (NTP), or an observation committed late may be skipped.
const settle = 5 * time.Second

// maxLoad bounds the observations one page of Load reads, and maxPages the pages: a session with
// more unread observations than that fails to load (its calls are refused) rather than being
// decided with part of them. maxPages is a variable, so that tests can lower it.
const maxLoad = 10000

var maxPages = 100

// maxSynced bounds the sessions whose sync state is kept; beyond, the least recently used
// without a marker are forgotten (one costs a reload from the store). A marker's state is kept
// until Config.Idle: forgotten, it would read as history lost with a restart. A variable, so
// that tests can lower it.
var maxSynced = 1_000_000

// syncState is how far a session was read from the store.
type syncState struct {
	loaded   bool               // Load read the session from the store at least once
	markedAt time.Time          // when this process last recorded the session's marker (not Shared)
	cursor   int64              // every observation up to this ID is applied
	seen     map[int64]struct{} // observations above the cursor already applied
	used     time.Time
	el       *list.Element // in Sessions.syncLRU, while markedAt is zero
}

// ErrNoKey is returned by Record and Load when a Store is configured without a Key.
var ErrNoKey = errors.New("taint: a store needs a key for the values' hashes")

// Record is Observe, made durable first when a Store is configured: the observation (the
// values' keyed hashes, never the text) is stored before it is applied, so that what an agent is
// handed next is known to every replica and survives a restart. An error means the output was
// not recorded: the caller must not hand it to the agent.
func (s *Sessions) Record(ctx context.Context, k Key, src Source, labels warden.FlowLabels, content any) error {
	if s.cfg.Store == nil {
		s.Observe(k, src, labels, content)
		return nil
	}
	if !labels.Untrusted() && !labels.Private() {
		return nil
	}
	if !s.cfg.Shared {
		return s.recordMarker(ctx, k, src, labels, content)
	}
	if !s.hash.keyed() {
		return ErrNoKey
	}
	if content == nil && s.known(k, src, labels) {
		return nil // nothing new: the session read this kind of output from this source before
	}
	var b *batch
	if labels.Untrusted() {
		b = s.extract(content)
	}
	o := &warden.FlowObservation{AgentID: k.Agent, Session: k.Session, Tool: src.Tool, Action: src.Action, Decision: src.Decision,
		Untrusted: b != nil, Private: labels.Private(), CreatedAt: s.now()}
	if b != nil {
		// A cut output makes the session evicted on every replica; an eviction to stay within
		// SessionBytes needs no flag: every replica applying the same rows evicts alike.
		o.Values, o.Bytes, o.Partial = encodeBatch(b), b.bytes, b.cut
	}
	if err := s.cfg.Store.AppendFlowObservation(ctx, o); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.syncOf(k)
	if o.ID > st.cursor {
		st.seen[o.ID] = struct{}{}
	}
	s.apply(k, src, o.Private, b)
	return nil
}

// recordMarker observes in memory and records, once per half Config.Idle, that the session
// read something, so that a restarted process knows it lost the session's history.
func (s *Sessions) recordMarker(ctx context.Context, k Key, src Source, labels warden.FlowLabels, content any) error {
	now := s.now()
	s.mu.Lock()
	st := s.syncOf(k)
	need := st.markedAt.IsZero() || now.Sub(st.markedAt) > s.cfg.Idle/2
	s.mu.Unlock()
	if need {
		o := &warden.FlowObservation{AgentID: k.Agent, Session: k.Session, Tool: src.Tool, Action: src.Action, Decision: src.Decision,
			Untrusted: labels.Untrusted(), Private: labels.Private(), CreatedAt: now}
		if err := s.cfg.Store.AppendFlowObservation(ctx, o); err != nil {
			return err
		}
		s.mu.Lock()
		s.mark(s.syncOf(k), now)
		s.mu.Unlock()
	}
	s.Observe(k, src, labels, content)
	return nil
}

// known reports whether k's session already read untrusted output from src (when labels say
// the output is untrusted) and private data (when they say private): an output with no content
// (its reading, not its values, is known) would add nothing.
func (s *Sessions) known(k Key, src Source, labels warden.FlowLabels) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.sessions[k]
	if el == nil {
		return false
	}
	ss := el.Value.(*session)
	return (!labels.Untrusted() || ss.sources[src.Tool+":"+src.Action]) && (!labels.Private() || ss.private)
}

// syncOf returns k's sync state, made most recently used, creating it; beyond maxSynced it
// forgets the least recently used without a marker. Called with s.mu held.
func (s *Sessions) syncOf(k Key) *syncState {
	st := s.synced[k]
	if st == nil {
		st = &syncState{seen: map[int64]struct{}{}}
		st.el = s.syncLRU.PushFront(k)
		s.synced[k] = st
		for len(s.synced) > maxSynced && s.syncLRU.Len() > 1 {
			s.unsync(s.syncLRU.Back().Value.(Key))
		}
	} else if st.el != nil {
		s.syncLRU.MoveToFront(st.el)
	}
	st.used = s.now()
	return st
}

// mark records that this process recorded st's marker at t: from then on st is kept until
// Config.Idle. Called with s.mu held.
func (s *Sessions) mark(st *syncState, t time.Time) {
	st.markedAt = t
	if st.el != nil {
		s.syncLRU.Remove(st.el)
		st.el = nil
	}
}

// unsync forgets k's sync state. Called with s.mu held.
func (s *Sessions) unsync(k Key) {
	if st := s.synced[k]; st != nil {
		if st.el != nil {
			s.syncLRU.Remove(st.el)
		}
		delete(s.synced, k)
	}
}

// Load brings k's session up to date with the store before one of its calls is decided: what
// other replicas observed (Shared), or, once per process, what was observed before a restart.
// Without a Store it does nothing. An error means the session's facts are unknown: the caller
// must refuse the call.
func (s *Sessions) Load(ctx context.Context, k Key) error {
	if s.cfg.Store == nil {
		return nil
	}
	if s.cfg.Shared && !s.hash.keyed() {
		return ErrNoKey
	}
	s.mu.Lock()
	st := s.synced[k]
	if st != nil && st.loaded && !s.cfg.Shared {
		s.syncOf(k)
		s.mu.Unlock()
		return nil
	}
	if !s.cfg.Shared {
		s.mu.Unlock()
		return s.loadMarker(ctx, k)
	}
	var after int64
	if st != nil {
		after = st.cursor
	}
	s.mu.Unlock()
	// Page through what the store holds; the index keeps the newest within its bound.
	for page := 0; ; page++ {
		rows, err := s.cfg.Store.FlowObservations(ctx, k.Agent, k.Session, after, maxLoad)
		if err != nil {
			return err
		}
		if err := s.applyRows(k, rows); err != nil {
			return err
		}
		if len(rows) < maxLoad {
			return nil
		}
		if page == maxPages {
			return errors.New("taint: a session has more observations than one load reads")
		}
		after = rows[len(rows)-1].ID
	}
}

// loadMarker reads once per process whether the session read something before: a marker of a
// session this process neither holds nor marked means its history was lost with a restart, and
// the session is decided as dropped (tombstone: every argument tainted).
func (s *Sessions) loadMarker(ctx context.Context, k Key) error {
	rows, err := s.cfg.Store.FlowObservations(ctx, k.Agent, k.Session, 0, 1)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.syncOf(k)
	if len(rows) > 0 && st.markedAt.IsZero() && s.sessions[k] == nil && s.tombs[k] == nil {
		s.tomb(k, rows[0].Private)
	}
	st.loaded = true
	return nil
}

// applyRows applies what the store returned for k and moves its cursor.
func (s *Sessions) applyRows(k Key, rows []*warden.FlowObservation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.syncOf(k)
	settled := s.now().Add(-settle)
	for _, o := range rows {
		if _, done := st.seen[o.ID]; done || o.ID <= st.cursor {
			continue
		}
		b, ok := decodeBatch(o.Values, o.Bytes)
		if !ok {
			return errors.New("taint: a stored observation's values cannot be read")
		}
		b.cut = o.Partial
		if !o.Untrusted {
			b = nil
		}
		s.apply(k, Source{Tool: o.Tool, Action: o.Action, Decision: o.Decision}, o.Private, b)
		st.seen[o.ID] = struct{}{}
	}
	// The cursor moves past the observations old enough that none with a lower ID can still
	// commit (IDs are assigned at insert, and a commit can come after a later insert's);
	// younger ones are read again next time and skipped as seen.
	for _, o := range rows {
		if o.ID > st.cursor && o.CreatedAt.Before(settled) {
			st.cursor = o.ID
		}
	}
	st.loaded = true
	for id := range st.seen {
		if id <= st.cursor {
			delete(st.seen, id)
		}
	}
	return nil
}

// forgetLocal ends a session in memory and reports whether the store may hold some of it.
func (s *Sessions) forgetLocal(k Key) bool {
	s.mu.Lock()
	st := s.synced[k]
	marked := st != nil && !st.markedAt.IsZero()
	s.mu.Unlock()
	s.End(k)
	// One replica writes a session's marker itself: one it never marked has nothing stored.
	return s.cfg.Store != nil && (s.cfg.Shared || marked)
}

// maxForgotten bounds the sessions waiting for ForgetStored; beyond, the store keeps them until
// Prune finds them idle.
const maxForgotten = 100_000

// ForgetLater ends a session at once in memory and queues its deletion from the store for
// ForgetStored, so that closing many sessions at once (a kill) does not wait on the store.
func (s *Sessions) ForgetLater(k Key) {
	if !s.forgetLocal(k) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forgotten) < maxForgotten {
		s.forgotten = append(s.forgotten, k)
	}
}

// ForgetStored deletes from the store the sessions ForgetLater queued.
func (s *Sessions) ForgetStored(ctx context.Context) error {
	s.mu.Lock()
	keys := s.forgotten
	s.forgotten = nil
	s.mu.Unlock()
	for i, k := range keys {
		if err := s.cfg.Store.DeleteFlowSession(ctx, k.Agent, k.Session); err != nil {
			s.mu.Lock()
			s.forgotten = append(keys[i:], s.forgotten...) // tried again next time
			s.mu.Unlock()
			return err
		}
	}
	return nil
}

// Prune deletes from the store the sessions idle longer than Config.Idle.
func (s *Sessions) Prune(ctx context.Context) (int64, error) {
	if s.cfg.Store == nil {
		return 0, nil
	}
	return s.cfg.Store.PruneFlowObservations(ctx, s.now().Add(-s.cfg.Idle))
}

// encodeBatch writes a batch's values as the store keeps them: per value, its kind (1 byte)
// and its keyed hash (8 bytes, little-endian).
func encodeBatch(b *batch) []byte {
	out := make([]byte, 0, 9*len(b.hashes))
	for i, h := range b.hashes {
		out = append(out, byte(b.kinds[i]))
		out = binary.LittleEndian.AppendUint64(out, h)
	}
	return out
}

// decodeBatch reads what encodeBatch wrote; bytes is the text length it was taken from.
func decodeBatch(v []byte, bytes int) (*batch, bool) {
	if len(v)%9 != 0 || bytes < 0 {
		return nil, false
	}
	b := &batch{bytes: bytes, hashes: make([]uint64, 0, len(v)/9), kinds: make([]kind, 0, len(v)/9)}
	for i := 0; i < len(v); i += 9 {
		k := kind(v[i])
		if int(k) >= len(kindNames) {
			return nil, false
		}
		b.kinds = append(b.kinds, k)
		b.hashes = append(b.hashes, binary.LittleEndian.Uint64(v[i+1:]))
	}
	return b, true
}
