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
}

// RunnerRequest registers a sandbox.
type RunnerRequest struct {
	Hostname string `json:"hostname"`
	PID      int    `json:"pid"`
	Command  string `json:"command"`
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
