package killswitch

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// LeaseSeconds is how long a runner may go without hearing from the server before it kills its
// sandbox (fail closed); the control stream sends a lease every LeaseSeconds/3.
const LeaseSeconds = 30

// Runner is a `warden run` sandbox registered with this server: what GET /v1/runners lists of
// it, and what only the server keeps.
type Runner struct {
	apitype.RunnerInfo

	// SecretHash is the SHA-256 of the runner's own secret, given once at registration. The
	// runner reports its sandbox's end and deregisters with it, so it can still do both after
	// its agent was killed and the agent's tokens died.
	SecretHash [32]byte `json:"-"`

	terminate chan string // receives the reason once; closed never
	once      sync.Once
}

// Runners is the registry of sandboxes and their control channels on this replica.
type Runners struct {
	mu sync.Mutex
	m  map[string]*Runner
}

// NewRunners returns an empty registry.
func NewRunners() *Runners { return &Runners{m: map[string]*Runner{}} }

// Register records a new sandbox of an agent.
func (rs *Runners) Register(r *Runner) *Runner {
	r.terminate = make(chan string, 1)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.m[r.ID] = r
	return r
}

// Get returns a registered runner of the agent.
func (rs *Runners) Get(id, agentID string) (*Runner, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[id]
	if !ok || r.AgentID != agentID {
		return nil, false
	}
	return r, true
}

// ByRunnerSecret returns the registered runner id whose secret is secret.
func (rs *Runners) ByRunnerSecret(id, secret string) (*Runner, bool) {
	rs.mu.Lock()
	r, ok := rs.m[id]
	rs.mu.Unlock()
	if !ok {
		return nil, false
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], r.SecretHash[:]) != 1 {
		return nil, false
	}
	return r, true
}

// Remove forgets a runner.
func (rs *Runners) Remove(id string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.m, id)
}

// List returns the registered runners.
func (rs *Runners) List() []apitype.RunnerInfo {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]apitype.RunnerInfo, 0, len(rs.m))
	for _, r := range rs.m {
		out = append(out, r.RunnerInfo)
	}
	return out
}

// Terminate tells every runner whose agent match selects to kill its sandbox, and returns how
// many were told. A runner not connected at the moment is told as soon as it connects; one that
// never does kills its sandbox when its lease runs out.
func (rs *Runners) Terminate(match func(agentID string) bool, reason string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, r := range rs.m {
		if match(r.AgentID) {
			r.once.Do(func() { r.terminate <- reason })
			n++
		}
	}
	return n
}

// Connect marks the runner connected and returns its terminate channel; the caller marks it
// disconnected when the stream ends.
func (rs *Runners) Connect(r *Runner) (<-chan string, func()) {
	rs.mu.Lock()
	r.Connected = true
	rs.mu.Unlock()
	return r.terminate, func() {
		rs.mu.Lock()
		r.Connected = false
		rs.mu.Unlock()
	}
}

// RunnerRefusal says why an agent may not start or keep a sandbox, or "": it must be able to
// act, and no lockdown that covers even low-risk tools may be in force. A lockdown from a risk
// up (`--min-risk high`) leaves sandboxes running, as it leaves the agents' other calls: all a
// sandbox reaches passes the gateway, which denies the calls that lockdown covers.
func RunnerRefusal(snap *Snapshot, agentID string, epoch int64, now time.Time) string {
	_, msg := snap.Check(agentID, epoch, sandboxScope, now)
	return msg
}

// sandboxScope stands for a sandbox in the kill state's check: covered by a lockdown of every
// risk, never by a tool's being disabled.
var sandboxScope = &warden.Tool{Risk: warden.RiskLow}
