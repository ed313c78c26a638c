// Package taint keeps what each session of an agent has read — whether untrusted output and
// private data, from which tools — and an index of the values that appeared in untrusted output,
// so that a later call's arguments can be traced back to it by value (warden.FlowFacts). It is
// pure and in memory: one Sessions per replica, bounded per session and in total.
package taint

import (
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
	return c
}

// Sessions is the flow state of every session on this replica. It is safe for concurrent use.
type Sessions struct {
	cfg Config
	now func() time.Time

	mu       sync.Mutex
	sessions map[Key]*session
}

// New returns an empty Sessions; now is the clock (nil: time.Now).
func New(cfg Config, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{cfg: cfg.withDefaults(), now: now, sessions: map[Key]*session{}}
}

type session struct {
	untrusted, private bool
	sources            map[string]bool
	index              *Index
	used               time.Time
}

// Observe records one call's output in its session: labels say whether it is untrusted or
// private; content is the output as decoded JSON (string, float64 or json.Number, bool, nil,
// []any, map[string]any) or text. Only untrusted output is indexed.
func (s *Sessions) Observe(k Key, src Source, labels warden.FlowLabels, content any) {
	if !labels.Untrusted() && !labels.Private() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[k]
	if ss == nil {
		ss = &session{sources: map[string]bool{}, index: NewIndex(s.cfg.SessionBytes)}
		s.sessions[k] = ss
	}
	ss.used = s.now()
	if labels.Private() {
		ss.private = true
	}
	if labels.Untrusted() {
		ss.untrusted = true
		ss.sources[src.Tool] = true
		ss.sources[src.Tool+":"+src.Action] = true
		ss.index.Add(src, content)
	}
}

// Facts returns what the session had read and which of args carry values from its untrusted
// output. labels are the called action's, copied into the facts.
func (s *Sessions) Facts(k Key, labels warden.FlowLabels, args map[string]any) *warden.FlowFacts {
	f := &warden.FlowFacts{Labels: labels}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[k]
	if ss == nil {
		return f
	}
	ss.used = s.now()
	f.UntrustedRead, f.PrivateRead = ss.untrusted, ss.private
	for src := range ss.sources {
		f.UntrustedSources = append(f.UntrustedSources, src)
	}
	sortStrings(f.UntrustedSources)
	f.Tainted = ss.index.Match(args)
	return f
}

// End forgets a session (the MCP session ended).
func (s *Sessions) End(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, k)
}

// Expire forgets sessions idle longer than Config.Idle.
func (s *Sessions) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := s.now().Add(-s.cfg.Idle)
	for k, ss := range s.sessions {
		if ss.used.Before(cut) {
			delete(s.sessions, k)
		}
	}
}
