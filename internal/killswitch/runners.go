package killswitch

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/skill"
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

// Len counts the registered runners.
func (rs *Runners) Len() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.m)
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

// TerminateDigest tells every runner whose sandbox mounted a skill of the digest to kill its
// sandbox, and returns how many were told; as Terminate, a runner told once is not told again.
func (rs *Runners) TerminateDigest(digest, reason string) int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	n := 0
	for _, r := range rs.m {
		if slices.ContainsFunc(r.Skills, func(s apitype.RunnerSkill) bool { return s.Digest == digest }) {
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

// CheckRunnerSkills validates the skills a registration says its sandbox mounted: at most
// apitype.MaxRunnerSkills, each a valid skill name given once with a sha256 digest.
func CheckRunnerSkills(skills []apitype.RunnerSkill) error {
	if len(skills) > apitype.MaxRunnerSkills {
		return warden.Errorf(warden.EInvalid, "a sandbox mounts at most %d skills, not %d", apitype.MaxRunnerSkills, len(skills))
	}
	seen := make(map[string]bool, len(skills))
	for _, s := range skills {
		if err := skill.ValidateName(s.Name); err != nil {
			return warden.Errorf(warden.EInvalid, "skills: %v", err)
		}
		if !warden.ValidDigest(s.Digest) {
			return warden.Errorf(warden.EInvalid, "skills: %s: digest %q: want sha256:<64 hex digits>", s.Name, s.Digest)
		}
		if seen[s.Name] {
			return warden.Errorf(warden.EInvalid, "skills: %s is named twice", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// SkillRefusal says why a sandbox that mounted skills may not start or keep running, or "":
// none of their digests may be quarantined. The reconciler stops such a sandbox when the
// quarantine comes; this is for a registration and for the control stream's periodic check.
func SkillRefusal(snap *Snapshot, skills []apitype.RunnerSkill) string {
	for _, s := range skills {
		if snap.Quarantined(s.Digest) {
			return quarantinedSkill(s)
		}
	}
	return ""
}

func quarantinedSkill(s apitype.RunnerSkill) string {
	return fmt.Sprintf("skill %s@%s is quarantined", s.Name, s.Digest)
}

// sandboxScope stands for a sandbox in the kill state's check: covered by a lockdown of every
// risk, never by a tool's being disabled.
var sandboxScope = &warden.Tool{Risk: warden.RiskLow}
