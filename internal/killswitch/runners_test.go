package killswitch

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

func TestRunnerRefusal(t *testing.T) {
	t.Parallel()
	now := time.Now()
	st := NewState()
	st.ObserveAgent(&warden.Agent{ID: "agt_1", Name: "bot", Status: warden.AgentActive, Epoch: 3, ExpiresAt: now.Add(time.Hour)})
	st.SetTools(st.Ticket(), []*warden.Tool{{Name: "github", Risk: warden.RiskLow, Disabled: true}})
	cases := []struct {
		name    string
		epoch   int64
		lock    warden.Lockdown
		refused bool
	}{
		{"active agent, no lockdown, a tool disabled", 3, warden.Lockdown{}, false},
		{"stale epoch", 2, warden.Lockdown{}, true},
		{"fleet-wide lockdown", 3, warden.Lockdown{Active: true, Reason: "r"}, true},
		{"lockdown from low risk", 3, warden.Lockdown{Active: true, MinRisk: warden.RiskLow, Reason: "r"}, true},
		{"lockdown from high risk leaves sandboxes running", 3, warden.Lockdown{Active: true, MinRisk: warden.RiskHigh, Reason: "r"}, false},
	}
	for _, c := range cases {
		st.SetLockdown(st.Ticket(), c.lock)
		if msg := RunnerRefusal(st.Load(), "agt_1", c.epoch, now); (msg != "") != c.refused {
			t.Errorf("%s: refusal %q", c.name, msg)
		}
	}
	if RunnerRefusal(st.Load(), "agt_unknown", 1, now) == "" {
		t.Error("an unknown agent may run a sandbox")
	}
}

func TestRunnerSecret(t *testing.T) {
	t.Parallel()
	rs := NewRunners()
	rs.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_1", AgentID: "agt_1"}, SecretHash: sha256Of("wrun_right")})
	if _, ok := rs.ByRunnerSecret("run_1", "wrun_right"); !ok {
		t.Error("the right secret is refused")
	}
	for _, c := range [][2]string{{"run_1", "wrun_wrong"}, {"run_1", ""}, {"run_2", "wrun_right"}} {
		if _, ok := rs.ByRunnerSecret(c[0], c[1]); ok {
			t.Errorf("runner %q accepted secret %q", c[0], c[1])
		}
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// A runner is found only under its own agent; Terminate tells each matching runner once, even
// one that connects later; List shows connection state without the secret; Remove forgets.
func TestRunnersTerminate(t *testing.T) {
	t.Parallel()
	rs := NewRunners()
	r1 := rs.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_1", AgentID: "agt_1", Agent: "bot"}, SecretHash: sha256Of("s")})
	rs.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_2", AgentID: "agt_2", Agent: "other"}})
	if _, ok := rs.Get("run_1", "agt_2"); ok {
		t.Error("another agent's runner was found")
	}
	if r, ok := rs.Get("run_1", "agt_1"); !ok || r != r1 {
		t.Error("the agent's own runner was not found")
	}
	// Told before it connects: the reason waits for it.
	if n := rs.Terminate(func(a string) bool { return a == "agt_1" }, "killed"); n != 1 {
		t.Errorf("Terminate told %d runners; want 1", n)
	}
	if n := rs.Terminate(func(a string) bool { return a == "agt_1" }, "killed again"); n != 1 {
		t.Errorf("a second Terminate counted %d; want 1", n)
	}
	ch, disconnect := rs.Connect(r1)
	select {
	case reason := <-ch:
		if reason != "killed" {
			t.Errorf("the runner was told %q; want the first reason", reason)
		}
	default:
		t.Fatal("a runner connecting after Terminate was not told")
	}
	select {
	case reason := <-ch:
		t.Errorf("the runner was told twice: %q", reason)
	default:
	}
	// List gives apitype.RunnerInfo, which has no field for the runner's secret hash.
	for _, r := range rs.List() {
		if r.ID == "run_1" && !r.Connected || r.ID == "run_2" && r.Connected {
			t.Errorf("listed runner %s (connected %v)", r.ID, r.Connected)
		}
	}
	disconnect()
	rs.Remove("run_1")
	if _, ok := rs.Get("run_1", "agt_1"); ok || len(rs.List()) != 1 {
		t.Errorf("after Remove: %+v", rs.List())
	}
}

// A registration's skills: each a valid name given once with a sha256 digest, at most
// apitype.MaxRunnerSkills of them.
func TestCheckRunnerSkills(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("ab", 32)
	var many []apitype.RunnerSkill
	for i := range apitype.MaxRunnerSkills + 1 {
		many = append(many, apitype.RunnerSkill{Name: fmt.Sprintf("s%d", i), Digest: d})
	}
	for _, ok := range [][]apitype.RunnerSkill{nil, {{Name: "notes", Digest: d}}, many[:apitype.MaxRunnerSkills]} {
		if err := CheckRunnerSkills(ok); err != nil {
			t.Errorf("%d skills refused: %v", len(ok), err)
		}
	}
	for name, bad := range map[string][]apitype.RunnerSkill{
		"too many":         many,
		"named twice":      {{Name: "notes", Digest: d}, {Name: "notes", Digest: "sha256:" + strings.Repeat("cd", 32)}},
		"bad name":         {{Name: "../notes", Digest: d}},
		"no name":          {{Digest: d}},
		"no digest":        {{Name: "notes"}},
		"uppercase digest": {{Name: "notes", Digest: strings.ToUpper(d)}},
		"short digest":     {{Name: "notes", Digest: d[:70]}},
	} {
		if err := CheckRunnerSkills(bad); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%s: %v; want invalid", name, err)
		}
	}
}

// SkillRefusal refuses a sandbox exactly when a digest it mounted is quarantined.
func TestSkillRefusal(t *testing.T) {
	t.Parallel()
	d, other := "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	st := NewState()
	st.SetQuarantined(st.Ticket(), []*warden.Quarantine{{Digest: d}})
	if msg := SkillRefusal(st.Load(), []apitype.RunnerSkill{{Name: "a", Digest: other}, {Name: "b", Digest: d}}); !strings.Contains(msg, "b@"+d+" is quarantined") {
		t.Errorf("a quarantined skill: refusal %q", msg)
	}
	if msg := SkillRefusal(st.Load(), []apitype.RunnerSkill{{Name: "a", Digest: other}}); msg != "" {
		t.Errorf("no quarantined skill: refusal %q", msg)
	}
	if msg := SkillRefusal(st.Load(), nil); msg != "" {
		t.Errorf("no skills: refusal %q", msg)
	}
}
