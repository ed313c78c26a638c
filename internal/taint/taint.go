// Package taint keeps what each session of an agent has read — whether untrusted output and
// private data, from which tools — and an index of the values that appeared in untrusted output,
// so that a later call's arguments can be traced back to it by value (warden.FlowFacts). It is
// pure and in memory: one Sessions per replica, bounded per session and in total.
package taint

import (
	"container/list"
	"slices"
	"sync"
	"time"

	"github.com/wardenhq/warden"
)

// Key names one session of one agent.
type Key struct {
	Agent   string // the agent's id
	Session string // the MCP session, the Warden-Session header, the token's sid or the decision API's session
}

// Source is the call whose output is observed.
type Source struct {
	Tool     string
	Action   string
	Decision string // its decision id
}

// Config bounds what Sessions keeps.
type Config struct {
	// SessionBytes bounds the untrusted output indexed per session; the oldest is evicted
	// beyond it. Default 1 MiB.
	SessionBytes int
	// TotalBytes bounds all sessions together; the least recently used sessions are dropped
	// beyond it (and then count every argument as tainted). Default 256 MiB.
	TotalBytes int64
	// Idle ends a session nobody used for so long. Default 24 h.
	Idle time.Duration
	// Store keeps what sessions observed; nil: memory only, and a session that outlives the
	// process starts afresh.
	//
	// Shared (a fleet): every observation with its values is recorded (Record) before the
	// output is handed on, and Load reads what other replicas recorded before every decision.
	// Not shared (one replica): only that a session read something is recorded, once (a marker:
	// no values, no write per call); after a restart, Load finds the marker of a session this
	// process does not know and decides it as dropped — every argument tainted — since what it
	// read is lost (fail closed).
	Store  warden.FlowStore
	Shared bool
	// Key keys the hashes of values, so that replicas sharing a Store know a value by the same
	// hash; needed when Shared (16 bytes or more).
	Key []byte
}

func (c Config) withDefaults() Config {
	if c.SessionBytes <= 0 {
		c.SessionBytes = 1 << 20
	}
	if c.TotalBytes <= 0 {
		c.TotalBytes = 256 << 20
	}
	if c.Idle <= 0 {
		c.Idle = 24 * time.Hour
	}
	if int64(c.SessionBytes) > c.TotalBytes {
		c.SessionBytes = int(c.TotalBytes)
	}
	return c
}

// sessionOverhead is what a session counts against Config.TotalBytes beside its indexed text,
// so that many small sessions are bounded too.
const sessionOverhead = 1024

// maxTombstones bounds the keys of dropped sessions remembered; beyond it the oldest are
// forgotten, and such a session looks new again.
const maxTombstones = 100_000

// Sessions is the flow state of every session on this replica. It is safe for concurrent use.
type Sessions struct {
	cfg  Config
	now  func() time.Time
	hash hasher

	mu       sync.Mutex
	sessions map[Key]*list.Element // of *session, in lru
	lru      list.List             // most recently used first
	bytes    int64
	tombs    map[Key]*list.Element // of *tombstone, in tombList
	tombList list.List             // most recently used first
	synced   map[Key]*syncState    // how far each session was read from the store (store.go)
}

// New returns an empty Sessions; now is the clock (nil: time.Now).
func New(cfg Config, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{cfg: cfg.withDefaults(), now: now, hash: newHasher(cfg.Key), sessions: map[Key]*list.Element{}, tombs: map[Key]*list.Element{},
		synced: map[Key]*syncState{}}
}

type session struct {
	key                Key
	untrusted, private bool
	// evicted: the session was dropped to stay within TotalBytes and began again; what it
	// had read before is unknown.
	evicted bool
	sources map[string]bool
	sorted  []string // the keys of sources, sorted
	index   *Index
	used    time.Time
	bytes   int64 // what it counts against TotalBytes
}

// tombstone is what is left of a session dropped to stay within TotalBytes.
type tombstone struct {
	key     Key
	private bool
	used    time.Time
}

// Observe records one call's output in its session: labels say whether it is untrusted or
// private; content is the output as decoded JSON (string, float64 or json.Number, bool, nil,
// []any, map[string]any) or text. Only untrusted output is indexed, up to Config.SessionBytes
// of its text; the values are extracted before the lock is taken, so a large output delays no
// other session.
func (s *Sessions) Observe(k Key, src Source, labels warden.FlowLabels, content any) {
	if !labels.Untrusted() && !labels.Private() {
		return
	}
	var b *batch
	if labels.Untrusted() {
		b = extractOutput(content, s.cfg.SessionBytes, s.hash)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(k, src, labels.Private(), b)
}

// apply adds one observation to k's session: private data read, untrusted output's values (b,
// nil when the output was not untrusted). Called with s.mu held.
func (s *Sessions) apply(k Key, src Source, private bool, b *batch) {
	ss := s.session(k)
	if private {
		ss.private = true
	}
	if b != nil {
		ss.untrusted = true
		for _, name := range [...]string{src.Tool, src.Tool + ":" + src.Action} {
			if !ss.sources[name] {
				ss.sources[name] = true
				ss.sorted = nil
			}
		}
		ss.index.insert(src, b)
	}
	s.account(ss)
	s.drop(ss)
}

// session returns k's session, made most recently used, creating it if need be; a session
// made again after a drop is marked evicted. Called with s.mu held.
func (s *Sessions) session(k Key) *session {
	now := s.now()
	if el := s.sessions[k]; el != nil {
		ss := el.Value.(*session)
		ss.used = now
		s.lru.MoveToFront(el)
		return ss
	}
	ss := &session{key: k, sources: map[string]bool{}, index: NewIndex(s.cfg.SessionBytes), used: now}
	if el := s.tombs[k]; el != nil {
		ss.evicted, ss.private = true, el.Value.(*tombstone).private
		s.tombList.Remove(el)
		delete(s.tombs, k)
	}
	s.sessions[k] = s.lru.PushFront(ss)
	return ss
}

// account updates what ss counts against TotalBytes. Called with s.mu held.
func (s *Sessions) account(ss *session) {
	n := int64(sessionOverhead + ss.index.Bytes())
	for name := range ss.sources {
		n += int64(len(name))
	}
	s.bytes += n - ss.bytes
	ss.bytes = n
}

// drop drops the least recently used sessions other than keep, leaving a tombstone of each,
// until the total is within TotalBytes. Called with s.mu held.
func (s *Sessions) drop(keep *session) {
	for s.bytes > s.cfg.TotalBytes {
		el := s.lru.Back()
		ss := el.Value.(*session)
		if ss == keep {
			return
		}
		s.remove(el)
		s.tomb(ss.key, ss.private)
		s.tombList.Front().Value.(*tombstone).used = ss.used
	}
}

// tomb leaves a tombstone of a session whose history is lost, forgetting the oldest beyond
// maxTombstones. Called with s.mu held.
func (s *Sessions) tomb(k Key, private bool) {
	if len(s.tombs) >= maxTombstones {
		old := s.tombList.Back()
		delete(s.tombs, old.Value.(*tombstone).key)
		s.tombList.Remove(old)
	}
	s.tombs[k] = s.tombList.PushFront(&tombstone{key: k, private: private, used: s.now()})
}

// remove forgets a session without a tombstone. Called with s.mu held.
func (s *Sessions) remove(el *list.Element) {
	ss := el.Value.(*session)
	s.lru.Remove(el)
	delete(s.sessions, ss.key)
	s.bytes -= ss.bytes
}

// Facts returns what the session had read and which of args carry values from its untrusted
// output. labels are the called action's, copied into the facts. A session dropped to stay
// within TotalBytes has read untrusted output as far as anyone knows: its facts say Evicted,
// UntrustedRead, and every top-level argument not otherwise tainted is tainted with kind
// "evicted" (fail closed).
func (s *Sessions) Facts(k Key, labels warden.FlowLabels, args map[string]any) *warden.FlowFacts {
	f := &warden.FlowFacts{Labels: labels}
	// Most calls are of sessions that read nothing: their arguments need no reading.
	s.mu.Lock()
	known := s.sessions[k] != nil || s.tombs[k] != nil
	s.mu.Unlock()
	if !known {
		return f
	}
	var vals []argValues
	if len(args) > 0 {
		vals = extractArgs(args, s.hash)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	evicted := false
	if el := s.sessions[k]; el != nil {
		ss := el.Value.(*session)
		ss.used = s.now()
		s.lru.MoveToFront(el)
		f.UntrustedRead, f.PrivateRead, evicted = ss.untrusted || ss.evicted, ss.private, ss.evicted
		if len(ss.sources) > 0 {
			if ss.sorted == nil {
				for name := range ss.sources {
					ss.sorted = append(ss.sorted, name)
				}
				slices.Sort(ss.sorted)
			}
			f.UntrustedSources = slices.Clone(ss.sorted)
		}
		f.Tainted = ss.index.match(vals, nil)
	} else if el := s.tombs[k]; el != nil {
		t := el.Value.(*tombstone)
		t.used = s.now()
		s.tombList.MoveToFront(el)
		f.UntrustedRead, f.PrivateRead, evicted = true, t.private, true
	}
	if evicted {
		f.Evicted = true
		f.Tainted = taintRest(f.Tainted, vals)
	}
	return f
}

// taintRest adds every argument not in tainted (both sorted by name) with kind "evicted".
func taintRest(tainted []warden.TaintedArg, args []argValues) []warden.TaintedArg {
	out := make([]warden.TaintedArg, 0, len(args))
	i := 0
	for _, a := range args {
		if i < len(tainted) && tainted[i].Arg == a.name {
			out = append(out, tainted[i])
			i++
			continue
		}
		out = append(out, warden.TaintedArg{Arg: a.name, Kind: kindEvicted})
	}
	return out
}

// End forgets a session (the MCP session ended), leaving no tombstone: a later session of the
// same key really is new.
func (s *Sessions) End(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.synced, k)
	if el := s.sessions[k]; el != nil {
		s.remove(el)
	}
	if el := s.tombs[k]; el != nil {
		s.tombList.Remove(el)
		delete(s.tombs, k)
	}
}

// Expire forgets sessions and tombstones idle longer than Config.Idle.
func (s *Sessions) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.cfg.Idle)
	for el := s.lru.Back(); el != nil && el.Value.(*session).used.Before(cut); el = s.lru.Back() {
		s.remove(el)
	}
	for k, st := range s.synced {
		if st.used.Before(cut) {
			delete(s.synced, k)
		}
	}
	for el := s.tombList.Back(); el != nil && el.Value.(*tombstone).used.Before(cut); el = s.tombList.Back() {
		delete(s.tombs, el.Value.(*tombstone).key)
		s.tombList.Remove(el)
	}
}

// Len is the number of sessions held (not counting tombstones).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Bytes is what the sessions held count against Config.TotalBytes: their indexed text and a
// fixed overhead each.
func (s *Sessions) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
