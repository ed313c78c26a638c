package apitype

import (
	"time"

	"github.com/wardenhq/warden"
)

// KillRequest is the body of POST /v1/agents/{name}/kill.
type KillRequest struct {
	Reason       string   `json:"reason"`
	DisableTools []string `json:"disable_tools,omitempty"`
}

// LockdownRequest is the body of POST /v1/lockdown.
type LockdownRequest struct {
	Reason  string      `json:"reason"`
	MinRisk warden.Risk `json:"min_risk,omitempty"`
}

// QuarantineRequest is the body of POST /v1/quarantine.
type QuarantineRequest struct {
	Digest string `json:"digest"`
	Reason string `json:"reason"`
}

// QuarantineReport is the answer of POST /v1/quarantine: the quarantine and what it stopped.
type QuarantineReport struct {
	*warden.Quarantine
	// Manifests names the pinned MCP tool manifests of the digest ("SERVER/TOOL"), now denied
	// with reason quarantined on every path.
	Manifests []string `json:"manifests,omitempty"`
	// Servers names the local MCP servers (tools) whose pinned package has the digest: their
	// running instances stopped on every replica, their calls in flight cancelled, a start
	// refused and their tools denied with reason quarantined until the quarantine is lifted.
	Servers []string `json:"servers,omitempty"`
	// CallsCancelled counts the calls in flight to them this replica cancelled; Replicas what
	// every replica did (fleet).
	CallsCancelled int `json:"calls_cancelled"`
	// SandboxesStopped counts the `warden run` sandboxes registered here that mounted a skill of
	// the digest and were told to stop; each replica's count is in Replicas.
	SandboxesStopped int          `json:"sandboxes_stopped"`
	ElapsedMS        float64      `json:"elapsed_ms"`
	Replicas         []ReplicaAck `json:"replicas,omitempty"`
}

// ManifestAcceptRequest is the body of POST /v1/tools/{name}/manifests/accept: Tool names one
// MCP tool of the server ("" accepts every held one); Digest, when given, is the held manifest
// the person reviewed — a tool held with any other digest (the server changed it again since) is
// not accepted.
type ManifestAcceptRequest struct {
	Tool   string `json:"tool,omitempty"`
	Digest string `json:"digest,omitempty"`
	Reason string `json:"reason"`
}

// KillReport says what a kill, a suspension or a lockdown did.
type KillReport struct {
	Agent               string             `json:"agent,omitempty"`
	AgentID             string             `json:"agent_id,omitempty"`
	Status              warden.AgentStatus `json:"status,omitempty"`
	Epoch               int64              `json:"epoch,omitempty"`
	AlreadyKilled       bool               `json:"already_killed,omitempty"`
	Lockdown            *warden.Lockdown   `json:"lockdown,omitempty"`
	SessionsInvalidated int                `json:"sessions_invalidated"`
	CallsCancelled      int                `json:"calls_cancelled"`
	StreamsClosed       int                `json:"streams_closed"`
	ApprovalsRejected   int                `json:"approvals_rejected"`
	SandboxesStopped    int                `json:"sandboxes_stopped"`
	ToolsDisabled       []string           `json:"tools_disabled,omitempty"`
	ElapsedMS           float64            `json:"elapsed_ms"`
	// Version is the fleet's state version this change was published as.
	Version int64 `json:"version,omitempty"`
	// Replicas is what each live replica did with the change, this one first; a replica that
	// did not acknowledge within the bound has Acked false.
	Replicas []ReplicaAck `json:"replicas,omitempty"`
}

// ReplicaAck is one replica's acknowledgement of a kill-state change: it applied the version
// and terminated what it forbids on that replica.
type ReplicaAck struct {
	ID               string  `json:"id"`
	Acked            bool    `json:"acked"`
	AckedMS          float64 `json:"acked_ms"` // from publishing to the ack's arrival
	CallsCancelled   int     `json:"calls_cancelled"`
	SessionsClosed   int     `json:"sessions_closed"`
	SandboxesStopped int     `json:"sandboxes_stopped"`
	Error            string  `json:"error,omitempty"` // why it did not answer, when it did not
}

// Replica is one `warden serve` of the fleet, as GET /v1/replicas lists it.
type Replica struct {
	ID             string    `json:"id"`
	Address        string    `json:"address,omitempty"` // its public URL
	Version        string    `json:"version,omitempty"` // warden's version it runs
	StartedAt      time.Time `json:"started_at"`
	HeartbeatAt    time.Time `json:"heartbeat_at"`
	Live           bool      `json:"live"`            // heartbeat within the liveness bound
	AppliedVersion int64     `json:"applied_version"` // the newest state version it applied
	LagVersions    int64     `json:"lag_versions"`    // the fleet's newest version minus applied_version
	Fresh          bool      `json:"fresh"`           // it can confirm its view is current (not stale_state)
	Self           bool      `json:"self,omitempty"`  // the replica that answered
}

// Replicas answers GET /v1/replicas.
type Replicas struct {
	Version  int64     `json:"version"` // the fleet's newest state version
	Replicas []Replica `json:"replicas"`
}

// RunnerRequest registers a sandbox.
type RunnerRequest struct {
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Command  string `json:"command"`
	// Skills are the skill versions the sandbox mounts (at most MaxRunnerSkills, each name
	// once): a quarantine of one of their digests stops the sandbox, and a registration naming a
	// quarantined digest is refused.
	Skills []RunnerSkill `json:"skills,omitempty"`
}

// MaxRunnerSkills bounds the skills one sandbox may mount.
const MaxRunnerSkills = 64

// RunnerSkill is one skill version a sandbox mounted: the skill's name and the canonical digest
// the runner verified its files against.
type RunnerSkill struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// RunnerRegistered answers a registration.
type RunnerRegistered struct {
	ID           string `json:"id"`
	LeaseSeconds int    `json:"lease_seconds"`
	// Secret authenticates the runner's report and deregistration (Authorization: Bearer
	// wrun_…), which must work after the agent's tokens died in a kill. It is shown once.
	Secret string `json:"secret"`
}

// RunnerReport is what a runner reports about its sandbox.
type RunnerReport struct {
	Event           string `json:"event"` // terminated or exited
	Reason          string `json:"reason,omitempty"`
	ProcessesKilled int    `json:"processes_killed,omitempty"`
	ExitCode        int    `json:"exit_code"`
}

// RunnerInfo is a registered sandbox as GET /v1/runners lists it.
type RunnerInfo struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	Agent     string    `json:"agent"`
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
	Command   string    `json:"command"`
	Started   time.Time `json:"started"`
	Connected bool      `json:"connected"`
	// Skills are the skill versions the sandbox mounted.
	Skills []RunnerSkill `json:"skills,omitempty"`
}

// Events of the runner control stream, GET /v1/runners/{id}/control (Server-Sent Events).
const (
	RunnerEventLease     = "lease"     // data RunnerControl{LeaseSeconds}
	RunnerEventTerminate = "terminate" // data RunnerControl{Reason}
)

// RunnerControl is the data of a control stream event.
type RunnerControl struct {
	LeaseSeconds int    `json:"lease_seconds,omitempty"`
	Reason       string `json:"reason,omitempty"`
}
