// Package taint keeps what each session of an agent has read — whether untrusted output and
// private data, from which tools — and an index of the values that appeared in untrusted output,
// so that a later call's arguments can be traced back to it by value (warden.FlowFacts). It is
// pure and in memory: one Sessions per replica, bounded per session and in total.
package taint

import (
	"container/heap"
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
	// SessionBytes bounds the memory of the values indexed per session, each value counting
	// 16 bytes (valueBytes; text without values costs nothing): default 1 MiB, 65,536 values.
	// Beyond it the oldest observations are evicted, and the session becomes evicted (every
	// argument tainted), since what they held is no longer known.
	SessionBytes int
	// MaxOutputBytes bounds the text read from one output; an output longer than that is read
	// up to it, and its session becomes evicted. Default 16 MiB (DefaultMaxOutputBytes).
	MaxOutputBytes int
	// TotalBytes bounds all sessions together; beyond it the least recently used sessions of
	// the agent holding the most are dropped (and then count every argument as tainted).
	// Default 256 MiB.
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
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = DefaultMaxOutputBytes
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

// DefaultMaxOutputBytes is Config.MaxOutputBytes's default: generous, since reading costs time
// and no memory beyond the values found, and an output cut makes its session evicted.
const DefaultMaxOutputBytes = 16 << 20

// sessionOverhead is what a session counts against Config.TotalBytes beside its indexed values,
// so that many small sessions are bounded too.
const sessionOverhead = 1024

// maxTombstones bounds the keys of dropped sessions remembered, and maxAgentTombstones those of
// one agent: beyond, the oldest of the agent itself, or of the agent with the most, are
// forgotten, and such a session looks new again. Per agent, so that one agent's churn cannot
// forget another's. Variables, so that tests can lower them.
var (
	maxTombstones      = 100_000
	maxAgentTombstones = 10_000
)

// Sessions is the flow state of every session on this replica. It is safe for concurrent use.
type Sessions struct {
	cfg  Config
	now  func() time.Time
	hash hasher

	mu        sync.Mutex
	sessions  map[Key]*list.Element // of *session, in its agent's lru
	bytes     int64
	tombs     map[Key]*list.Element // of *tombstone, in its agent's tombs
	agents    map[string]*agent     // of the sessions and tombstones held
	byBytes   agentHeap             // the agents holding sessions, the most bytes first
	byTombs   agentHeap             // the agents holding tombstones, the most first
	synced    map[Key]*syncState    // how far each session was read from the store (store.go)
	forgotten []Key                 // ended sessions whose store state ForgetStored deletes
	syncLRU   list.List             // of *syncState without a marker, most recently used first
}

// agent is what one agent holds: eviction is fair between agents, taking from the one holding
// the most, so that one agent opening many sessions cannot push another's out.
type agent struct {
	id    string
	bytes int64     // what its sessions count against TotalBytes
	lru   list.List // of *session, most recently used first
	tombs list.List // of *tombstone, most recently used first
	// at is where the agent is in Sessions.byBytes and byTombs (-1: not there).
	at [2]int
}

// New returns an empty Sessions; now is the clock (nil: time.Now).
func New(cfg Config, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{cfg: cfg.withDefaults(), now: now, hash: newHasher(cfg.Key), sessions: map[Key]*list.Element{}, tombs: map[Key]*list.Element{},
		agents: map[string]*agent{}, byBytes: agentHeap{slot: 0, by: func(a *agent) int64 { return a.bytes }},
		byTombs: agentHeap{slot: 1, by: func(a *agent) int64 { return int64(a.tombs.Len()) }}, synced: map[Key]*syncState{}}
}

type session struct {
	key                Key
	untrusted, private bool
	// evicted: the session was dropped to stay within TotalBytes and began again, or some of
	// its untrusted output was not indexed (cut, or evicted to stay within SessionBytes); what
	// it had read is not all known.
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
// []any, map[string]any) or text, or a Partial of them. Only untrusted output is indexed, up
// to Config.MaxOutputBytes of its text; the values are extracted before the lock is taken, so a
// large output delays no other session.
func (s *Sessions) Observe(k Key, src Source, labels warden.FlowLabels, content any) {
	if !labels.Untrusted() && !labels.Private() {
		return
	}
	var b *batch
	if labels.Untrusted() {
		b = s.extract(content)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(k, src, labels.Private(), b)
}

// extract extracts the values of one untrusted output within the session's bounds.
func (s *Sessions) extract(content any) *batch {
	return extractOutput(content, s.cfg.MaxOutputBytes, s.cfg.SessionBytes/valueBytes, s.hash)
}

// apply adds one observation to k's session: private data read, untrusted output's values (b,
// nil when the output was not untrusted). An output cut, or an observation evicted to make room
// for it, makes the session evicted for the rest of its life (fail closed). Called with s.mu
// held.
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
		if ss.index.insert(src, b) || b.cut {
			ss.evicted = true
		}
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
		s.agents[k.Agent].lru.MoveToFront(el)
		return ss
	}
	ss := &session{key: k, sources: map[string]bool{}, index: NewIndex(s.cfg.SessionBytes), used: now}
	if el := s.tombs[k]; el != nil {
		ss.evicted, ss.private = true, el.Value.(*tombstone).private
		s.untomb(el)
	}
	a := s.agentOf(k.Agent)
	s.sessions[k] = a.lru.PushFront(ss)
	if a.lru.Len() == 1 {
		s.byBytes.push(a)
	}
	return ss
}

// agentOf returns the agent id's state, creating it. Called with s.mu held.
func (s *Sessions) agentOf(id string) *agent {
	a := s.agents[id]
	if a == nil {
		a = &agent{id: id, at: [2]int{-1, -1}}
		s.agents[id] = a
	}
	return a
}

// release forgets an agent that holds nothing any more. Called with s.mu held.
func (s *Sessions) release(a *agent) {
	if a.lru.Len() == 0 && a.tombs.Len() == 0 {
		delete(s.agents, a.id)
	}
}

// account updates what ss counts against TotalBytes. Called with s.mu held.
func (s *Sessions) account(ss *session) {
	n := int64(sessionOverhead + ss.index.Bytes())
	for name := range ss.sources {
		n += int64(len(name))
	}
	a := s.agents[ss.key.Agent]
	s.bytes += n - ss.bytes
	a.bytes += n - ss.bytes
	ss.bytes = n
	s.byBytes.fix(a)
}

// drop drops sessions other than keep, leaving a tombstone of each, until the total is within
// TotalBytes: each time the least recently used session of the agent holding the most bytes.
// Called with s.mu held.
func (s *Sessions) drop(keep *session) {
	for s.bytes > s.cfg.TotalBytes {
		a := s.byBytes.top()
		el := a.lru.Back()
		ss := el.Value.(*session)
		if ss == keep {
			return // one session over the total: SessionBytes is within TotalBytes
		}
		s.remove(el)
		s.tomb(ss.key, ss.private)
		s.tombs[ss.key].Value.(*tombstone).used = ss.used
	}
}

// tomb leaves a tombstone of a session whose history is lost, forgetting beyond
// maxAgentTombstones the agent's oldest, and beyond maxTombstones the oldest of the agent with
// the most. Called with s.mu held.
func (s *Sessions) tomb(k Key, private bool) {
	if a := s.agents[k.Agent]; a != nil && a.tombs.Len() >= maxAgentTombstones {
		s.untomb(a.tombs.Back())
	} else if len(s.tombs) >= maxTombstones {
		s.untomb(s.byTombs.top().tombs.Back())
	}
	a := s.agentOf(k.Agent)
	s.tombs[k] = a.tombs.PushFront(&tombstone{key: k, private: private, used: s.now()})
	if a.tombs.Len() == 1 {
		s.byTombs.push(a)
	} else {
		s.byTombs.fix(a)
	}
}

// untomb forgets a tombstone. Called with s.mu held.
func (s *Sessions) untomb(el *list.Element) {
	k := el.Value.(*tombstone).key
	a := s.agents[k.Agent]
	a.tombs.Remove(el)
	delete(s.tombs, k)
	if a.tombs.Len() == 0 {
		s.byTombs.remove(a)
	} else {
		s.byTombs.fix(a)
	}
	s.release(a)
}

// remove forgets a session without a tombstone. Called with s.mu held.
func (s *Sessions) remove(el *list.Element) {
	ss := el.Value.(*session)
	a := s.agents[ss.key.Agent]
	a.lru.Remove(el)
	delete(s.sessions, ss.key)
	s.bytes -= ss.bytes
	a.bytes -= ss.bytes
	if a.lru.Len() == 0 {
		s.byBytes.remove(a)
	} else {
		s.byBytes.fix(a)
	}
	s.release(a)
}

// Facts returns what the session had read and which of args carry values from its untrusted
// output. labels are the called action's, copied into the facts. A session dropped to stay
// within TotalBytes, or whose untrusted output was not all indexed (cut or evicted), may have
// read anything: its facts say Evicted,
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
		s.agents[k.Agent].lru.MoveToFront(el)
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
		s.agents[k.Agent].tombs.MoveToFront(el)
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
	s.unsync(k)
	if el := s.sessions[k]; el != nil {
		s.remove(el)
	}
	if el := s.tombs[k]; el != nil {
		s.untomb(el)
	}
}

// Expire forgets sessions and tombstones idle longer than Config.Idle.
func (s *Sessions) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.cfg.Idle)
	for _, a := range s.agents {
		// Each removal may release a; its lists stay readable.
		for el := a.lru.Back(); el != nil && el.Value.(*session).used.Before(cut); el = a.lru.Back() {
			s.remove(el)
		}
		for el := a.tombs.Back(); el != nil && el.Value.(*tombstone).used.Before(cut); el = a.tombs.Back() {
			s.untomb(el)
		}
	}
	for k, st := range s.synced {
		if st.used.Before(cut) {
			s.unsync(k)
		}
	}
}

// Len is the number of sessions held (not counting tombstones).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Bytes is what the sessions held count against Config.TotalBytes: their indexed values and a
// fixed overhead each.
func (s *Sessions) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// agentHeap orders agents by a count, the largest first, so that eviction finds the agent
// holding the most in O(log agents). slot is which of agent.at holds an agent's place in it.
type agentHeap struct {
	a    []*agent
	slot int
	by   func(*agent) int64
}

func (h *agentHeap) Len() int           { return len(h.a) }
func (h *agentHeap) Less(i, j int) bool { return h.by(h.a[i]) > h.by(h.a[j]) }
func (h *agentHeap) Swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	h.a[i].at[h.slot], h.a[j].at[h.slot] = i, j
}
func (h *agentHeap) Push(x any) {
	a := x.(*agent)
	a.at[h.slot] = len(h.a)
	h.a = append(h.a, a)
}
func (h *agentHeap) Pop() any {
	a := h.a[len(h.a)-1]
	h.a[len(h.a)-1] = nil
	h.a = h.a[:len(h.a)-1]
	a.at[h.slot] = -1
	return a
}

func (h *agentHeap) top() *agent   { return h.a[0] }
func (h *agentHeap) push(a *agent) { heap.Push(h, a) }
func (h *agentHeap) fix(a *agent) {
	if a.at[h.slot] >= 0 {
		heap.Fix(h, a.at[h.slot])
	}
}
func (h *agentHeap) remove(a *agent) {
	if a.at[h.slot] >= 0 {
		heap.Remove(h, a.at[h.slot])
	}
}
