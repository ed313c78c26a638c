package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
)

// TestDetectContains runs detection in a real server on a fake clock: three days of the
// agent's normal calls through the decision API teach its baseline; a replay of a normal day
// finds nothing; the first deploy (a high-risk action it never used) is a finding within a
// second, and from then its deploys wait for a person (the default ladder's approve); a burst
// of ten times its rate at 3 a.m. is a rate spike that suspends it (the ladder as configured).
func TestDetectContains(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) // a Monday
	in := startClock(t, "127.0.0.1:0", t.TempDir(), clk, func(c *config.Config) {
		c.Detect.LearningCalls = 100
		c.Detect.Ladder = []config.DetectRule{
			{Detector: "first_seen_action", MinRisk: "high", Step: "approve"},
			{Detector: "rate_spike", Step: "suspend"},
			{Detector: "first_seen_host", Step: "approve"},
		}
	})
	rec := newRecorder(t)
	cli := func(args ...string) {
		t.Helper()
		if _, err := in.cli(in.admin, args...); err != nil {
			t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
		}
	}
	cli("tool", "add", "github", "--http", rec.srv.URL+"/api", "--risk", "low",
		"--route", "GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}")
	cli("tool", "add", "ops", "--http", rec.srv.URL+"/ops", "--risk", "high",
		"--route", "GET /status -> status", "--route", "POST /deploy -> deploy")
	c := createAgent(t, in, "deploy-bot")
	dir := t.TempDir()
	writeFile(t, dir, "bot.cedar", `
permit(principal == Agent::"deploy-bot", action == Action::"github:issues.list", resource);
@approval("waived")
permit(principal == Agent::"deploy-bot", action in [Action::"ops:status", Action::"ops:deploy"], resource);
permit(principal == Agent::"deploy-bot", action == Action::"egress:net.connect", resource);
`)
	cli("policy", "apply", dir, "--comment", "deploy bot")

	askOn := func(tool, action, resource string) map[string]any {
		t.Helper()
		token := in.mustToken(c.ClientID, c.ClientSecret)
		r := in.gw("POST", "/v1/authorize", token, fmt.Sprintf(`{"tool":%q,"action":%q,"resource":%q}`, tool, action, resource),
			map[string]string{"Content-Type": "application/json"})
		if r.status != 200 {
			t.Fatalf("authorize %s %s: %d %s", tool, action, r.status, r.body)
		}
		return r.json(t)
	}
	ask := func(tool, action string) map[string]any { return askOn(tool, action, "repo:acme/web") }
	// A normal day: from 09:00, every ten minutes, the issues, the status and a connection to
	// its API host, 60 calls.
	day := func() {
		for range 20 {
			for _, a := range [][3]string{{"github", "issues.list", "repo:acme/web"}, {"ops", "status", "repo:acme/web"}, {"egress", "net.connect", "api.acme.example:443"}} {
				if d := askOn(a[0], a[1], a[2]); d["effect"] != "allow" {
					t.Fatalf("normal call %v: %v", a, d)
				}
			}
			clk.Advance(10 * time.Minute)
		}
	}
	findings := func() []apitype.Alert {
		t.Helper()
		var out []apitype.Alert
		in.cliJSON(in.admin, &out, "alerts", "--json")
		return out
	}
	// waitFor waits at most a second of real time for the log to hold an event of typ.
	waitFor := func(typ string) *warden.AuditEvent {
		t.Helper()
		deadline := time.After(time.Second)
		for {
			changed := in.srv.Audit.Changed()
			if evs := in.events("type=" + typ); len(evs) > 0 {
				return evs[len(evs)-1]
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatalf("no %s event within a second", typ)
			}
		}
	}
	for range 3 {
		day()
		clk.Advance(24*time.Hour - 200*time.Minute)
	}
	day() // the replay of a normal day, after learning
	if f := findings(); len(f) != 0 {
		t.Fatalf("a normal day was reported: %+v", f)
	}

	// The first deploy: allowed (detection is not on the call's path), then found.
	if d := ask("ops", "deploy"); d["effect"] != "allow" {
		t.Fatalf("first deploy: %v", d)
	}
	ev := waitFor("detect.first_seen_action")
	var evidence apitype.AlertEvidence
	if err := json.Unmarshal(ev.Target.Arguments, &evidence); err != nil || evidence.Step != "approve" || evidence.Agent != "deploy-bot" || ev.Target.Risk != warden.RiskHigh {
		t.Fatalf("finding %s: %+v %v", ev.Target.Arguments, evidence, err)
	}
	// From now on its deploys wait for a person; its other calls do not.
	// The held call waits approvals.hold (60 s of the fake clock) before it is told it is pending.
	held := make(chan response, 1)
	deployToken := in.mustToken(c.ClientID, c.ClientSecret)
	go func() {
		held <- in.do("POST", "/v1/authorize", map[string]string{"Authorization": "Bearer " + deployToken, "Content-Type": "application/json"},
			`{"tool":"ops","action":"deploy","resource":"repo:acme/web"}`)
	}()
	waitFor("approval.requested")
	clk.Advance(61 * time.Second)
	if r := <-held; r.status != 200 || r.json(t)["effect"] != "approval_required" {
		t.Fatalf("deploy after the finding: %d %s", r.status, r.body)
	}
	if d := ask("ops", "status"); d["effect"] != "allow" {
		t.Fatalf("status after the finding: %v", d)
	}
	// The issues of another organisation's repository: a resource pattern never seen (the
	// default ladder alerts), where another repository of acme would be the same pattern.
	if d := askOn("github", "issues.list", "repo:acme/api"); d["effect"] != "allow" {
		t.Fatalf("issues of acme/api: %v", d)
	}
	if d := askOn("github", "issues.list", "repo:rival/secret-plans"); d["effect"] != "allow" {
		t.Fatalf("issues of rival/secret-plans: %v", d)
	}
	if ev := waitFor("detect.first_seen_resource"); !strings.Contains(ev.Decision.Message, "repo:rival/*") {
		t.Fatalf("the new resource pattern: %+v", ev)
	}
	if evs := in.events("type=detect.first_seen_resource"); len(evs) != 1 {
		t.Fatalf("another repository of acme was reported: %d findings of a new resource pattern", len(evs))
	}

	// A connection to a host it never reached: found, and from then its connections to that
	// host, and only to that host, wait for a person (first_seen_host → approve).
	if d := askOn("egress", "net.connect", "paste.evil.example:443"); d["effect"] != "allow" {
		t.Fatalf("first connection to the new host: %v", d)
	}
	if ev := waitFor("detect.first_seen_host"); !strings.Contains(ev.Decision.Message, "paste.evil.example:443") {
		t.Fatalf("the new host: %+v", ev)
	}
	// A held call would wait for the fake clock: wait for the answer in real time instead.
	known := make(chan response, 1)
	go func() {
		known <- in.do("POST", "/v1/authorize", map[string]string{"Authorization": "Bearer " + deployToken, "Content-Type": "application/json"},
			`{"tool":"egress","action":"net.connect","resource":"api.acme.example:443"}`)
	}()
	select {
	case r := <-known:
		if r.status != 200 || r.json(t)["effect"] != "allow" {
			t.Fatalf("the known host after the finding: %d %s", r.status, r.body)
		}
	case <-time.After(5 * time.Second):
		clk.Advance(61 * time.Second)
		<-known
		t.Fatal("a connection to the known host was held: the hold covers more than the new host")
	}
	requested := len(in.events("type=approval.requested"))
	go func() {
		held <- in.do("POST", "/v1/authorize", map[string]string{"Authorization": "Bearer " + deployToken, "Content-Type": "application/json"},
			`{"tool":"egress","action":"net.connect","resource":"paste.evil.example:443"}`)
	}()
	for deadline := time.After(time.Second); ; {
		changed := in.srv.Audit.Changed()
		if len(in.events("type=approval.requested")) > requested {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("the connection to the new host was not sent to a person within a second")
		}
	}
	clk.Advance(61 * time.Second)
	if r := <-held; r.status != 200 || r.json(t)["effect"] != "approval_required" {
		t.Fatalf("connection to the new host after the finding: %d %s", r.status, r.body)
	}
	var pending []*apitype.ApprovalView
	in.cliJSON(in.admin, &pending, "approvals", "list", "--json")
	if len(pending) != 2 || pending[0].Reason != warden.ApprovalByDetection || pending[0].Action != "deploy" ||
		pending[1].Reason != warden.ApprovalByDetection || pending[1].Resource != "paste.evil.example:443" {
		t.Fatalf("pending approvals: %+v %+v", pending[0], pending[len(pending)-1])
	}

	// 03:00 the next day: thirty calls in a minute, ten times its rate.
	clk.Advance(24*time.Hour - time.Duration(clk.Now().Hour()-3)*time.Hour - time.Duration(clk.Now().Minute())*time.Minute)
	token := in.mustToken(c.ClientID, c.ClientSecret)
	for range 30 {
		in.gw("POST", "/v1/authorize", token, `{"tool":"github","action":"issues.list","resource":"repo:acme/web"}`, map[string]string{"Content-Type": "application/json"})
	}
	spike := waitFor("detect.rate_spike")
	suspended := waitFor("agent.suspend")
	if raw, _ := json.Marshal(suspended); !strings.Contains(string(raw), "detect finding "+spike.ID) || suspended.Actor.Name != "warden-detect" {
		t.Errorf("the suspension does not name the finding %s: %+v", spike.ID, suspended)
	}
	if r := in.gw("POST", "/v1/authorize", token, `{"tool":"github","action":"issues.list","resource":"repo:acme/web"}`, map[string]string{"Content-Type": "application/json"}); r.status == 200 && r.json(t)["effect"] == "allow" {
		t.Fatalf("a suspended agent's call was allowed: %s", r.body)
	}
	if f := findings(); !hasKind(f, "off_hours") || !hasKind(f, "rate_spike") || !hasKind(f, "first_seen_action") || !hasKind(f, "first_seen_resource") {
		t.Fatalf("alerts: %+v", f)
	}

	// An operator acknowledges the finding; the baseline shows what is normal.
	out, err := in.cli(in.admin, "alerts", "ack", spike.ID, "--reason", "load test, INC-7")
	if err != nil || !strings.Contains(out, "Acknowledged "+spike.ID) {
		t.Fatalf("ack: %v %s", err, out)
	}
	if _, err := in.cli(in.admin, "alerts", "ack", spike.ID, "--reason", "again"); err == nil {
		t.Error("a finding was acknowledged twice")
	}
	out, err = in.cli(in.admin, "agent", "baseline", "deploy-bot")
	if err != nil || !strings.Contains(out, "ops/status") || !strings.Contains(out, "learned") || !strings.Contains(out, "held for approval") ||
		!strings.Contains(out, "github/issues.list repo:acme/*") || !strings.Contains(out, "bytes sent") || !strings.Contains(out, "approval requests") ||
		!strings.Contains(out, "budget burn") {
		t.Fatalf("baseline: %v\n%s", err, out)
	}
}

func hasKind(as []apitype.Alert, kind string) bool {
	for _, a := range as {
		if a.Kind == kind {
			return true
		}
	}
	return false
}
