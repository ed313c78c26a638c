package warden

import (
	"context"
	"regexp"
	"time"
)

// AgentStatus is the lifecycle state of an agent identity.
type AgentStatus string

const (
	AgentActive    AgentStatus = "active"    // may get tokens and act
	AgentSuspended AgentStatus = "suspended" // reversibly stopped; resume restores it
	AgentKilled    AgentStatus = "killed"    // stopped for good; only an admin restore undoes it
)

// Agent is a non-human identity: software that holds credentials and takes actions through tools.
// Its ID is also its OAuth client_id and never changes; its Name is what people use.
type Agent struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Owner        string            `json:"owner"`
	Purpose      string            `json:"purpose"`
	Labels       map[string]string `json:"labels,omitempty"`
	Status       AgentStatus       `json:"status"`
	StatusReason string            `json:"status_reason,omitempty"`
	// Epoch is raised by every change that must kill outstanding tokens (suspend, secret
	// rotation, kill). A token carries the epoch it was issued in; an older one is dead.
	Epoch int64 `json:"epoch"`
	// SecretHash is the SHA-256 of the client secret; the secret itself is never stored.
	SecretHash []byte    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// ExpiresAt is the end of the identity's lifetime; an expired agent gets no tokens until renewed.
	ExpiresAt time.Time `json:"expires_at"`
}

// Expired reports whether the identity's lifetime is over at now.
func (a *Agent) Expired(now time.Time) bool { return expired(a.ExpiresAt, now) }

// expired reports whether a lifetime ending at expiresAt (zero: never) is over at now.
func expired(expiresAt, now time.Time) bool { return !expiresAt.IsZero() && !now.Before(expiresAt) }

// CanAct reports whether the agent may hold live tokens at now: active and not expired.
func (a *Agent) CanAct(now time.Time) bool { return ActRefusal(a.Status, a.ExpiresAt, now) == "" }

// ActRefusal says why an agent of this status, whose lifetime ends at expiresAt (zero: never),
// may not act at now, or "" if it may: only an active agent within its lifetime acts. It is the
// one rule the token endpoint, the kill state and every enforcement point apply; the message is
// safe to show the agent.
func ActRefusal(status AgentStatus, expiresAt, now time.Time) string {
	switch status {
	case AgentActive:
	case AgentSuspended:
		return "agent is suspended"
	case AgentKilled:
		return "agent is killed"
	default:
		return "agent is not active"
	}
	if expired(expiresAt, now) {
		return "agent identity expired; renew it"
	}
	return ""
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// ValidateName checks an agent, admin token or tool name: lowercase letters, digits and '-',
// 1 to 63 characters.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return Errorf(EInvalid, "invalid %s name %q: use 1-63 lowercase letters, digits and '-'", kind, name)
	}
	return nil
}

// AgentStore keeps agent identities.
type AgentStore interface {
	// CreateAgent stores a new agent; a taken name is EConflict.
	CreateAgent(ctx context.Context, a *Agent) error
	// Agent returns the agent with the given name (ENotFound if none).
	Agent(ctx context.Context, name string) (*Agent, error)
	// AgentByID returns the agent with the given ID, which is also its client_id.
	AgentByID(ctx context.Context, id string) (*Agent, error)
	// Agents lists every agent, ordered by name.
	Agents(ctx context.Context) ([]*Agent, error)
	// UpdateAgent applies fn to the current state of the named agent and stores the result in one
	// transaction, so concurrent changes (a suspend racing a rotation) never lose an epoch raise.
	// If fn returns an error nothing is written.
	UpdateAgent(ctx context.Context, name string, fn func(a *Agent) error) (*Agent, error)
	// DeleteAgent removes the named agent.
	DeleteAgent(ctx context.Context, name string) error
}
