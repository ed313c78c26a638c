package detect

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// TestHeldScopes: a host's hold covers that host's calls alone, an action's hold every resource
// of that action, an agent's hold every call of the agent; none outlives its time or reaches
// another agent.
func TestHeldScopes(t *testing.T) {
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	until := now.Add(time.Hour)
	h := NewHolds()
	h.Put(&warden.DetectHold{Agent: "host-bot", Tool: "egress", Action: "connect", Resource: "paste.evil.example:443", Until: until})
	h.Put(&warden.DetectHold{Agent: "action-bot", Tool: "repo", Action: "delete", Until: until})
	h.Put(&warden.DetectHold{Agent: "spike-bot", Until: until})
	for _, c := range []struct {
		agent, tool, action, resource string
		at                            time.Time
		want                          bool
	}{
		{"host-bot", "egress", "connect", "paste.evil.example:443", now, true},
		{"host-bot", "egress", "connect", "api.example.com:443", now, false},
		{"action-bot", "repo", "delete", "acme/app", now, true},
		{"action-bot", "repo", "delete", "", now, true},
		{"action-bot", "repo", "read", "acme/app", now, false},
		{"spike-bot", "mail", "send", "x@example.com", now, true},
		{"spike-bot", "repo", "read", "", now, true},
		{"spike-bot", "repo", "read", "", until, false},
		{"other-bot", "repo", "delete", "acme/app", now, false},
	} {
		if got := h.Held(c.agent, c.tool, c.action, c.resource, c.at); got != c.want {
			t.Errorf("Held(%s, %s, %s, %q, %s) = %v, want %v", c.agent, c.tool, c.action, c.resource, c.at, got, c.want)
		}
	}
}
