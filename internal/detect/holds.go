package detect

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// Holds are the approval requirements findings put on agents' calls (the ladder's approve
// step). The gateway's approval step asks Held on every call, so it reads an immutable map
// without a lock; the few writers copy it.
type Holds struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[holdKey]*warden.DetectHold]
}

type holdKey struct{ agent, tool, action, resource string }

// NewHolds returns an empty set of holds.
func NewHolds() *Holds {
	h := &Holds{}
	h.m.Store(&map[holdKey]*warden.DetectHold{})
	return h
}

// Held reports whether a finding holds the agent's call of tool and action on resource (as the
// audit log records it) for a person at now: a map lookup for each scope the runner holds (a
// host, an action, every call of the agent), from the narrowest to the widest.
func (h *Holds) Held(agent, tool, action, resource string, now time.Time) bool {
	m := *h.m.Load()
	if len(m) == 0 {
		return false
	}
	for _, k := range [...]holdKey{{agent, tool, action, resource}, {agent, tool, action, ""}, {agent, "", "", ""}} {
		if x, ok := m[k]; ok && now.Before(x.Until) {
			return true
		}
	}
	return false
}

// Put adds or replaces a hold.
func (h *Holds) Put(x *warden.DetectHold) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.m.Load()
	m := make(map[holdKey]*warden.DetectHold, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[holdKey{x.Agent, x.Tool, x.Action, x.Resource}] = x
	h.m.Store(&m)
}

// Replace installs the holds read from the store: what another replica's detector put.
func (h *Holds) Replace(xs []*warden.DetectHold) {
	m := make(map[holdKey]*warden.DetectHold, len(xs))
	for _, x := range xs {
		m[holdKey{x.Agent, x.Tool, x.Action, x.Resource}] = x
	}
	h.mu.Lock()
	h.m.Store(&m)
	h.mu.Unlock()
}

// List returns the holds in force at now.
func (h *Holds) List(now time.Time) []*warden.DetectHold {
	var out []*warden.DetectHold
	for _, x := range *h.m.Load() {
		if now.Before(x.Until) {
			out = append(out, x)
		}
	}
	return out
}
