package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
)

// runnerBody is a registration of a sandbox that mounted skills.
func runnerBody(t *testing.T, skills ...apitype.RunnerSkill) string {
	t.Helper()
	b, err := json.Marshal(apitype.RunnerRequest{Hostname: "h", PID: 1, Command: "sh", Skills: skills})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listRunners is GET /v1/runners as the admin.
func listRunners(t *testing.T, in *instance) []apitype.RunnerInfo {
	t.Helper()
	r := in.gw("GET", "/v1/runners", in.admin, "", nil)
	var out []apitype.RunnerInfo
	if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
		t.Fatalf("GET /v1/runners: %d %s", r.status, r.body)
	}
	return out
}

func waitTerminate(t *testing.T, ch <-chan string, within time.Duration) (string, bool) {
	t.Helper()
	select {
	case reason := <-ch:
		return reason, true
	case <-time.After(within):
		return "", false
	}
}

// TestRunnerSkillsQuarantine: a runner registration says which skill versions its sandbox
// mounted (validated strictly); quarantining one of their digests tells that sandbox, and no
// other, to stop before the command returns, and the report and the CLI say so; a registration
// naming a quarantined digest is refused; GET /v1/runners lists the skills.
func TestRunnerSkillsQuarantine(t *testing.T) {
	t.Parallel()
	e := newSkillEnv(t)
	in := e.in
	dir, digest := writeSkill(t, "pdf-tools", "Fill PDF forms.", map[string]string{"scripts/fill.py": "print('fill')\n"})
	if _, err := e.add(t, dir, "--signature", e.sign(t, digest)); err != nil {
		t.Fatal(err)
	}
	bot := createAgent(t, in, "bot")
	token := in.mustToken(bot.ClientID, bot.ClientSecret)
	other := "sha256:" + strings.Repeat("cd", 32)
	ct := map[string]string{"Content-Type": "application/json"}

	// Strict: a bad name, digest, duplicate or unknown field is refused, and registers nothing.
	for name, body := range map[string]string{
		"bad digest":    runnerBody(t, apitype.RunnerSkill{Name: "pdf-tools", Digest: "sha256:abc"}),
		"bad name":      runnerBody(t, apitype.RunnerSkill{Name: "../pdf", Digest: digest}),
		"named twice":   runnerBody(t, apitype.RunnerSkill{Name: "pdf-tools", Digest: digest}, apitype.RunnerSkill{Name: "pdf-tools", Digest: other}),
		"unknown field": `{"hostname":"h","pid":1,"command":"sh","skills":[{"name":"pdf-tools","digest":"` + digest + `","trusted":true}]}`,
	} {
		if r := in.gw("POST", "/v1/runners", token, body, ct); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s; want 400", name, r.status, r.body)
		}
	}
	if runners := listRunners(t, in); len(runners) != 0 {
		t.Fatalf("refused registrations registered %+v", runners)
	}

	mounted := connectRunnerBody(t, in, token, runnerBody(t, apitype.RunnerSkill{Name: "notes", Digest: other}, apitype.RunnerSkill{Name: "pdf-tools", Digest: digest}))
	unmounted := connectRunnerBody(t, in, token, runnerBody(t, apitype.RunnerSkill{Name: "notes", Digest: other}))
	plain := connectRunner(t, in, token)
	found := false
	runners := listRunners(t, in)
	for _, r := range runners {
		found = found || len(r.Skills) == 2 && r.Skills[1] == apitype.RunnerSkill{Name: "pdf-tools", Digest: digest}
	}
	if !found {
		t.Errorf("GET /v1/runners does not list the mounted skills: %+v", runners)
	}

	var q apitype.QuarantineReport
	in.cliJSON(in.admin, &q, "quarantine", digest, "--reason", "exfiltrates files, INC-12")
	if q.SandboxesStopped != 1 {
		t.Errorf("quarantine report: sandboxes_stopped %d; want 1", q.SandboxesStopped)
	}
	// Told before the command returned: the terminate is on its way already.
	if reason, ok := waitTerminate(t, mounted, 5*time.Second); !ok || !strings.Contains(reason, digest) {
		t.Errorf("the sandbox that mounted the skill: told %q (%v)", reason, ok)
	}
	for name, ch := range map[string]<-chan string{"another skill": unmounted, "no skill": plain} {
		if reason, ok := waitTerminate(t, ch, 1500*time.Millisecond); ok {
			t.Errorf("the sandbox with %s was told to stop: %q", name, reason)
		}
	}
	if !hasEvent(in.events("type=kill.quarantine"), warden.EventQuarantine, func(ev *warden.AuditEvent) bool {
		return strings.Contains(ev.Decision.Message, "sandboxes stopped 1")
	}) {
		t.Error("the kill.quarantine event does not count the sandbox")
	}
	out, err := in.cli(in.admin, "quarantine", digest, "--reason", "again")
	if err != nil || strings.Contains(out, "Sandboxes") {
		t.Errorf("quarantining again: %v\n%s", err, out)
	}

	// A registration naming the quarantined digest is refused, and registers nothing.
	before := len(listRunners(t, in))
	r := in.gw("POST", "/v1/runners", token, runnerBody(t, apitype.RunnerSkill{Name: "pdf-tools", Digest: digest}), ct)
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "quarantined") {
		t.Errorf("registration naming a quarantined digest: %d %s; want 409", r.status, r.body)
	}
	if runners := listRunners(t, in); len(runners) != before {
		t.Errorf("the refused registration was registered: %+v", runners)
	}
	if !hasEvent(in.events("type=sandbox.refused"), "sandbox.refused", func(ev *warden.AuditEvent) bool {
		return ev.Decision.Effect == warden.EffectDeny && ev.Decision.Reason == warden.ReasonQuarantined && strings.Contains(ev.Decision.Message, digest)
	}) {
		t.Error("no sandbox.refused event for the refused registration")
	}
}

// TestRunnerSkillsSafetyNet: the control stream's periodic check stops a sandbox whose skill is
// quarantined in the kill state even when no reconcile told it (here the snapshot is changed
// directly, and the safety-net poll is a minute away).
func TestRunnerSkillsSafetyNet(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), func(c *config.Config) {
		c.Tokens.RefreshInterval = config.Duration(time.Minute)
		c.KillSwitch.MaxStaleness = config.Duration(time.Minute)
	})
	bot := createAgent(t, in, "bot")
	token := in.mustToken(bot.ClientID, bot.ClientSecret)
	digest := "sha256:" + strings.Repeat("ef", 32)
	ch := connectRunnerBody(t, in, token, runnerBody(t, apitype.RunnerSkill{Name: "notes", Digest: digest}))
	in.srv.Kill.State.SetQuarantined(in.srv.Kill.State.Ticket(), []*warden.Quarantine{{Digest: digest, Reason: "test", At: time.Now()}})
	reason, ok := waitTerminate(t, ch, 5*time.Second)
	if !ok || !strings.Contains(reason, fmt.Sprintf("notes@%s is quarantined", digest)) {
		t.Fatalf("the control stream's check: told %q (%v); want a terminate naming the skill", reason, ok)
	}
}

// TestRunnerSkillsQuarantineOtherReplica runs two replicas on one PostgreSQL database: a sandbox
// registered on replica b that mounted a skill is stopped by b's reconciler when the skill's
// digest is quarantined on replica a, and b's acknowledgement in a's report counts it. The polls
// are slowed so that only the announcement can have done it.
func TestRunnerSkillsQuarantineOtherReplica(t *testing.T) {
	t.Parallel()
	store := pgtest.Database(t)
	edit := onlyAnnouncements(store)
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	b := startReplicaB(t, a, edit)

	bot := createAgent(t, a, "bot")
	var token string
	// b issues a token once the agent is in the store, and accepts it once the agent's
	// announcement reached its kill state: wait for both.
	eventuallyTrue(t, "replica b knows the agent", func() bool {
		r := b.tokenFor(bot.ClientID, bot.ClientSecret)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &tok) != nil {
			return false
		}
		token = tok.AccessToken
		return b.self(token).status == http.StatusOK
	})
	digest := "sha256:" + strings.Repeat("7e", 32)
	onB := connectRunnerBody(t, b, token, runnerBody(t, apitype.RunnerSkill{Name: "notes", Digest: digest}))

	var q apitype.QuarantineReport
	a.cliJSON(a.admin, &q, "quarantine", digest, "--reason", "exfiltrates notes, INC-31")
	var ackB *apitype.ReplicaAck
	for i := range q.Replicas {
		if q.Replicas[i].ID == "replica-b" {
			ackB = &q.Replicas[i]
		}
	}
	if q.SandboxesStopped != 0 || ackB == nil || !ackB.Acked || ackB.SandboxesStopped != 1 {
		t.Errorf("report: here %d sandboxes, replicas %+v; want b to have stopped 1", q.SandboxesStopped, q.Replicas)
	}
	if reason, ok := waitTerminate(t, onB, 5*time.Second); !ok || !strings.Contains(reason, digest) {
		t.Errorf("the sandbox on b: told %q (%v)", reason, ok)
	}
}
