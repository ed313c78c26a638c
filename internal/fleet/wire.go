package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
)

// channel is the one PostgreSQL notification channel the fleet speaks on: changes and their
// acknowledgements both, so that one LISTEN connection per replica hears everything.
const channel = "warden_changes"

// The bounds that keep every payload well under PostgreSQL's 8000-byte limit on a
// notification, whatever a caller names.
const (
	maxPayload = 8000
	maxNameLen = 1024 // a change's Name: an agent ID, a tool name, …
	maxIDLen   = 200  // a replica's ID
)

// kindAck marks an acknowledgement. A change has no kind, so that its payload is exactly
// Change's JSON ({"t","n","v","r"}).
const kindAck = "ack"

// ack is one replica's acknowledgement that it applied a kill-state version and what it
// terminated doing so.
type ack struct {
	Replica string
	Version int64
	Applied
}

// ackWire is an acknowledgement's payload.
type ackWire struct {
	Kind             string `json:"kind"`
	Replica          string `json:"replica"`
	Version          int64  `json:"version"`
	CallsCancelled   int    `json:"calls_cancelled"`
	SessionsClosed   int    `json:"sessions_closed"`
	SandboxesStopped int    `json:"sandboxes_stopped"`
}

// notice is a decoded payload: a change, an acknowledgement, or neither (a kind this
// replica does not know, from a newer one, which it ignores).
type notice struct {
	change *Change
	ack    *ack
}

// encodeAck is an acknowledgement's payload.
func encodeAck(a ack) string {
	b, _ := json.Marshal(ackWire{
		Kind: kindAck, Replica: a.Replica, Version: a.Version, CallsCancelled: a.CallsCancelled,
		SessionsClosed: a.SessionsClosed, SandboxesStopped: a.SandboxesStopped,
	})
	return string(b)
}

// decodeNotice reads a notification's payload. Unknown fields and kinds are ignored, so that a
// newer replica may say more; a payload that is not what it claims to be is an error, and the
// caller drops it. A change of a topic this replica does not know is read as TopicAll: a
// reload of everything is the safe way to apply what it cannot name.
func decodeNotice(payload string) (notice, error) {
	if len(payload) > maxPayload {
		return notice{}, fmt.Errorf("payload of %d bytes, more than a notification holds", len(payload))
	}
	// The kind first, then the payload as that kind: a change has no "kind" at all.
	var head struct {
		Kind *string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(payload), &head); err != nil {
		return notice{}, fmt.Errorf("not a JSON object: %w", err)
	}
	switch {
	case head.Kind == nil:
		return decodeChange(payload)
	case *head.Kind == kindAck:
		return decodeAck(payload)
	}
	return notice{}, nil
}

func decodeChange(payload string) (notice, error) {
	var c Change
	if err := json.Unmarshal([]byte(payload), &c); err != nil {
		return notice{}, fmt.Errorf("change: %w", err)
	}
	switch {
	case c.Version <= 0:
		return notice{}, errors.New("change without a positive version")
	case c.Replica == "" || len(c.Replica) > maxIDLen:
		return notice{}, errors.New("change without a publisher")
	case len(c.Name) > maxNameLen:
		return notice{}, errors.New("change naming more than a name")
	}
	if !c.Topic.known() {
		c.Topic, c.Name = TopicAll, ""
	}
	return notice{change: &c}, nil
}

func decodeAck(payload string) (notice, error) {
	var w ackWire
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return notice{}, fmt.Errorf("acknowledgement: %w", err)
	}
	switch {
	case w.Version <= 0:
		return notice{}, errors.New("acknowledgement without a positive version")
	case w.Replica == "" || len(w.Replica) > maxIDLen:
		return notice{}, errors.New("acknowledgement without a replica")
	case w.CallsCancelled < 0 || w.SessionsClosed < 0 || w.SandboxesStopped < 0:
		return notice{}, errors.New("acknowledgement with a negative count")
	}
	return notice{ack: &ack{Replica: w.Replica, Version: w.Version, Applied: Applied{
		CallsCancelled: w.CallsCancelled, SessionsClosed: w.SessionsClosed, SandboxesStopped: w.SandboxesStopped,
	}}}, nil
}

// known reports whether t is one of the topics this replica can apply by name.
func (t Topic) known() bool {
	switch t {
	case TopicAgent, TopicTool, TopicPolicy, TopicBudget, TopicAdminToken, TopicKey,
		TopicRevocation, TopicLockdown, TopicQuarantine, TopicAll:
		return true
	}
	return false
}
