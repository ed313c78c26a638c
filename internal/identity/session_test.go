package identity_test

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/identity"
)

// TestSessionBoundToPerson pins issue 12 #2 (session half): two people's tokens exchanged by one
// agent with the same client-chosen session_id used to carry the same sid, so an approval bound
// to that session covered the other person's call. The sid is now bound to agent and person.
func TestSessionBoundToPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other, _ := e.addAgent("other-bot")
	sid := func(agent string, person, requested string) string {
		t.Helper()
		a := e.agent
		if agent == "other" {
			a = other
		}
		iss, err := e.svc.Issue(ctx, a, identity.IssueRequest{OnBehalfOf: person, SessionID: requested})
		if err != nil {
			t.Fatal(err)
		}
		if s := iss.Claims.SessionID; !strings.HasPrefix(s, "ses_") || len(s) > 128 {
			t.Fatalf("sid %q", s)
		}
		return iss.Claims.SessionID
	}
	alice := sid("", "alice@example.com", "task-42")
	bob := sid("", "bob@example.com", "task-42")
	own := sid("", "", "task-42")
	fresh := sid("", "alice@example.com", "")

	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"two people, same session_id", alice, bob, false},
		{"a person and the agent itself, same session_id", alice, own, false},
		{"another agent for the same person, same session_id", alice, sid("other", "alice@example.com", "task-42"), false},
		{"same agent, person and session_id: the same session", alice, sid("", "alice@example.com", "task-42"), true},
		{"the sid itself sent back for the same person: kept", alice, sid("", "alice@example.com", alice), true},
		{"a new session sent back for the same person: kept", fresh, sid("", "alice@example.com", fresh), true},
		{"the agent's own sid sent back: kept", own, sid("", "", own), true},
		{"alice's sid sent for bob: not alice's", alice, sid("", "bob@example.com", alice), false},
		{"alice's sid sent for bob: not bob's either", bob, sid("", "bob@example.com", alice), false},
		{"alice's sid sent by another agent for alice", alice, sid("other", "alice@example.com", alice), false},
		{"the client's value is not the sid", "task-42", alice, false},
		{"no session_id: a new session each time", fresh, sid("", "alice@example.com", ""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.same {
				t.Fatalf("%q and %q: same = %v, want %v", tt.a, tt.b, tt.a == tt.b, tt.same)
			}
		})
	}
}

// FuzzSessionFor holds the binding for any agent, person and requested value: the sid is
// bound (sending it back keeps it), and is never the session of another person or agent.
func FuzzSessionFor(f *testing.F) {
	f.Add("agt_1", "alice@example.com", "bob@example.com", "task-42")
	f.Add("agt_1", "", "alice", "")
	f.Add("agt_1", "alice", "alice\x00", "ses_")
	f.Add("agt_1", "a", "", "ses_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Fuzz(func(t *testing.T, agent, person, other, requested string) {
		sid := identity.SessionFor(agent, person, requested)
		if !strings.HasPrefix(sid, "ses_") || len(sid) > 128 {
			t.Fatalf("sid %q", sid)
		}
		if again := identity.SessionFor(agent, person, sid); again != sid {
			t.Fatalf("sent back, %q became %q", sid, again)
		}
		if requested != "" && identity.SessionFor(agent, person, requested) != sid {
			t.Fatal("the same request gave another session")
		}
		if other != person {
			if s := identity.SessionFor(agent, other, sid); s == sid {
				t.Fatalf("%q's sid %q kept for %q", person, sid, other)
			}
			if requested != "" && identity.SessionFor(agent, other, requested) == sid {
				t.Fatalf("%q and %q got the same sid for %q", person, other, requested)
			}
		}
		if s := identity.SessionFor(agent+"x", person, sid); s == sid {
			t.Fatal("another agent kept the sid")
		}
	})
}
