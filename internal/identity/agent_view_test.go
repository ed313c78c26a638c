package identity_test

import (
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestAgentView(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, ok := e.svc.Agent(e.agent.ID)
	if !ok || a.Name != "build-bot" || a.Owner != "alice@example.com" || a.SecretHash != nil {
		t.Fatalf("Agent: %+v, %v; want the record without its secret hash", a, ok)
	}
	e.clock.Advance(time.Second)
	e.update(func(a *warden.Agent) {
		a.Labels = map[string]string{"team": "web"}
		a.Status = warden.AgentSuspended
		a.Epoch++
	})
	a, _ = e.svc.Agent(e.agent.ID)
	if a.Labels["team"] != "web" || a.Status != warden.AgentSuspended {
		t.Fatalf("after an update: %+v", a)
	}
	e.svc.ForgetAgent(e.agent.ID)
	if _, ok := e.svc.Agent(e.agent.ID); ok {
		t.Fatal("a forgotten agent is still known")
	}
}
