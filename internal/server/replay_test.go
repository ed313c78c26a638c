package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cli"
)

// The goal for the injection corpus with the policy library: attack calls blocked
// (denied or held for a person) and benign calls allowed.
const (
	goalAttackBlocked = 0.95
	goalBenignAllowed = 0.90
)

// corpusServer starts a server with the corpus's tools and agents applied. The corpus names its
// MCP servers by their https URLs; here they point at a closed local port, so that registering
// them lists nothing (their pins are deferred) and nothing leaves the machine.
func corpusServer(t *testing.T) (*instance, *apiclient.Client) {
	t.Helper()
	in := start(t, t.TempDir(), nil)
	doc, err := os.ReadFile(filepath.Join("..", "..", "examples", "injection", "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	local := regexp.MustCompile(`https://mcp\.acme\.example/`).ReplaceAllString(string(doc), "http://127.0.0.1:9/")
	if _, err := in.cli(in.admin, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", local)); err != nil {
		t.Fatalf("apply the corpus: %v", err)
	}
	return in, &apiclient.Client{Base: in.url, Token: apiclient.StaticToken(in.admin)}
}

func readCorpus(t *testing.T) []apitype.ReplaySession {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "examples", "injection", "sessions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sessions, err := apitype.ReadReplaySessions(f)
	if err != nil {
		t.Fatal(err)
	}
	return sessions
}

// policyLibrary reads the files of examples/policies, all or the named ones.
func policyLibrary(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "policies")
	if len(names) == 0 {
		matches, err := filepath.Glob(filepath.Join(dir, "*.cedar"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			names = append(names, filepath.Base(m))
		}
	}
	files := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	return files
}

// TestReplayInjectionCorpus replays the injection corpus against the policy library on a real
// server and holds the library to the goal. It prints the figures and every miss.
func TestReplayInjectionCorpus(t *testing.T) {
	in, c := corpusServer(t)
	ctx := context.Background()
	if _, err := in.cli(in.admin, "policy", "apply", filepath.Join("..", "..", "examples", "policies")); err != nil {
		t.Fatalf("apply the policy library: %v", err)
	}
	sessions := readCorpus(t)
	rep, err := c.Replay(ctx, apitype.ReplayRequest{Sessions: sessions})
	if err != nil {
		t.Fatal(err)
	}
	sum := rep.Summary
	t.Logf("policy library on the corpus: attack calls blocked %d/%d (%.1f%%), benign calls allowed %d/%d (%.1f%%); %d allowed, %d denied, %d held",
		sum.AttackBlocked, sum.AttackCalls, 100*sum.AttackRatio, sum.BenignAllowed, sum.BenignCalls, 100*sum.BenignRatio, sum.Allowed, sum.Denied, sum.Held)
	for _, m := range sum.Misses {
		t.Logf("miss: %s step %d (%s, %s): %s", m.Session, m.Step, m.Label, m.Effect, m.Why)
	}
	if rep.PolicyVersion == 0 || len(rep.Sessions) != len(sessions) {
		t.Fatalf("replayed version %d, %d of %d sessions", rep.PolicyVersion, len(rep.Sessions), len(sessions))
	}
	if sum.AttackCalls < 60 || sum.BenignCalls < 100 {
		t.Fatalf("the corpus has %d attack and %d benign calls; it should have at least 60 and 100", sum.AttackCalls, sum.BenignCalls)
	}
	if sum.AttackRatio < goalAttackBlocked || sum.BenignRatio < goalBenignAllowed {
		t.Errorf("attack calls blocked %.3f (goal %.2f), benign calls allowed %.3f (goal %.2f)", sum.AttackRatio, goalAttackBlocked, sum.BenignRatio, goalBenignAllowed)
	}

	// Without the library's flow rules, base alone lets every attack through: the figures above
	// are the rules' doing, not the corpus's.
	baseOnly, err := c.Replay(ctx, apitype.ReplayRequest{Sessions: sessions, Files: policyLibrary(t, "base.cedar")})
	if err != nil {
		t.Fatal(err)
	}
	if baseOnly.Summary.AttackBlocked != 0 || baseOnly.PolicyVersion != 0 {
		t.Errorf("base.cedar alone blocks %d attack calls (version %d)", baseOnly.Summary.AttackBlocked, baseOnly.PolicyVersion)
	}

	// Observe mode: base with observe.cedar decides as base does, and names the rules that
	// would have stopped a call in its decision.
	observe, err := c.Replay(ctx, apitype.ReplayRequest{Sessions: sessions, Files: policyLibrary(t, "base.cedar", "observe.cedar")})
	if err != nil {
		t.Fatal(err)
	}
	flagged, enforced := 0, 0
	for i, s := range observe.Sessions {
		for j, st := range s.Steps {
			if st.Effect != baseOnly.Sessions[i].Steps[j].Effect {
				t.Errorf("%s step %d: observe mode decided %s, base alone %s", s.Name, st.Index, st.Effect, baseOnly.Sessions[i].Steps[j].Effect)
			}
			observed := strings.Contains(strings.Join(st.Policies, " "), "observe:")
			blocked := rep.Sessions[i].Steps[j].Effect != warden.EffectAllow
			if observed {
				flagged++
			}
			if blocked {
				enforced++
			}
		}
	}
	t.Logf("observe mode names an observe rule in %d decisions; enforcing blocks %d calls", flagged, enforced)
	if flagged == 0 {
		t.Error("observe mode flagged no call")
	}

	// The library's own policy test cases pass.
	lib := filepath.Join("..", "..", "examples", "policies")
	if out, err := in.cli(in.admin, "policy", "test", filepath.Join(lib, "cases.yaml"), "--policies", lib); err != nil {
		t.Errorf("warden policy test examples/policies/cases.yaml: %v\n%s", err, out)
	}

	// Observe mode from the command line: base and observe.cedar, each named with --policies.
	var cliObserve apitype.ReplayReport
	in.cliJSON(in.admin, &cliObserve, "replay", filepath.Join("..", "..", "examples", "injection", "sessions.jsonl"),
		"--policies", filepath.Join(lib, "base.cedar"), "--policies", filepath.Join(lib, "observe.cedar"))
	if cliObserve.Summary.AttackBlocked != 0 || cliObserve.Summary.Calls != sum.Calls {
		t.Errorf("observe mode through the CLI: %+v", cliObserve.Summary)
	}

	// The CLI prints the table and the summary, and exits 0 when no expectation is set.
	out, err := in.cli(in.admin, "replay", filepath.Join("..", "..", "examples", "injection", "sessions.jsonl"))
	if err != nil || !strings.Contains(out, "Attack calls blocked:") || !strings.Contains(out, "Benign calls allowed:") {
		t.Fatalf("warden replay: %v\n%s", err, out)
	}
}

// TestReplayExpectations: a step or session whose expectation fails is reported, and the CLI
// exits 1; a file that is not JSON Lines of sessions is refused naming the line.
func TestReplayExpectations(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	dir := t.TempDir()
	if _, err := in.cli(in.admin, "tool", "add", "mail", "--mcp", "http://127.0.0.1:9/mail", "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "p.cedar", `@id("bot") permit (principal == Agent::"bot", action in Action::"mail", resource);`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	ok := writeFile(t, dir, "ok.jsonl", `{"agent":"bot","session":"s1","steps":[{"tool":"mail","action":"read","args":{"folder":"inbox"},"expect":"allow"},{"tool":"nosuch","action":"x","expect":"deny"}],"expect":{"blocked":true}}`+"\n")
	if out, err := in.cli(in.admin, "replay", ok); err != nil || !strings.Contains(out, "mail:read") {
		t.Fatalf("met expectations: %v\n%s", err, out)
	}
	bad := writeFile(t, dir, "bad.jsonl", `{"agent":"bot","session":"s1","steps":[{"tool":"mail","action":"send","args":{"to":"x@elsewhere.example"},"expect":"deny"}],"expect":{"blocked":true}}`+"\n")
	out, err := in.cli(in.admin, "replay", bad)
	if cli.ExitCode(err) != cli.ExitError || !strings.Contains(fmt.Sprint(err), "2 expectations") || !strings.Contains(out, "MISMATCH") {
		t.Fatalf("unmet expectations: exit %d, %v\n%s", cli.ExitCode(err), err, out)
	}
	var rep apitype.ReplayReport
	if s, err := in.cli(in.admin, "replay", bad, "--json"); cli.ExitCode(err) != cli.ExitError || json.Unmarshal([]byte(s), &rep) != nil || rep.Summary.Mismatches != 2 {
		t.Fatalf("--json: exit %d, %+v", cli.ExitCode(err), rep.Summary)
	}
	broken := writeFile(t, dir, "broken.jsonl", `{"agent":"bot","session":"s1","steps":[{"tool":"mail","action":"x"}]}`+"\n"+`{"agent":"bot","session":"s2","steps":[],"colour":"red"}`+"\n")
	if _, err := in.cli(in.admin, "replay", broken); cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("broken file: exit %d, %v", cli.ExitCode(err), err)
	}
	for _, args := range [][]string{{"replay"}, {"replay", ok, "--from-audit", "--since", "1h"}, {"replay", "--from-audit"}, {"replay", ok, "--since", "1h"}} {
		if _, err := in.cli(in.admin, args...); cli.ExitCode(err) != cli.ExitUsage {
			t.Errorf("warden %s: exit %d, %v", strings.Join(args, " "), cli.ExitCode(err), err)
		}
	}
	// Recorded results are larger than admin documents: a replay takes more than 1 MiB.
	big := json.RawMessage(`"` + strings.Repeat("mail text ", 90<<10) + `"`)
	c := &apiclient.Client{Base: in.url, Token: apiclient.StaticToken(in.admin)}
	if _, err := c.Replay(context.Background(), apitype.ReplayRequest{Sessions: []apitype.ReplaySession{{Agent: "bot", Session: "big",
		Steps: []apitype.ReplayStep{{Tool: "mail", Action: "read", Result: big}, {Tool: "mail", Action: "read", Result: big}}}}}); err != nil {
		t.Fatalf("a replay of 1.8 MB: %v", err)
	}

	// A replay only reads: an auditor may run one.
	var auditor apitype.CreatedAdminToken
	in.cliJSON(in.admin, &auditor, "admin", "token", "create", "reader", "--role", "auditor")
	if _, err := in.cli(auditor.Token, "replay", ok); err != nil {
		t.Fatalf("an auditor's replay: %v", err)
	}
}

// TestReplayFromAudit decides the tool calls a real server recorded from /v1/authorize again
// with candidate policies, and reports each change both ways; a call refused before policy
// (an unknown tool) is listed, not compared. Nothing the replay does is recorded.
func TestReplayFromAudit(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	token, _ := setupGitHub(t, in, rec)
	for _, body := range []string{
		`{"tool":"github","action":"issues.list","resource":"repo:acme/web"}`,            // allowed, stays allowed
		`{"tool":"github","action":"issues.list","resource":"repo:acme/other"}`,          // denied, would be allowed
		`{"tool":"github","action":"payments.send","arguments":{"body":{"amount":50}}}`,  // allowed, would be denied
		`{"tool":"github","action":"payments.send","arguments":{"body":{"amount":500}}}`, // denied, stays denied
		`{"tool":"nosuch","action":"x"}`,                                                 // refused before policy
	} {
		if r := in.gw("POST", "/v1/authorize", token, body, map[string]string{"Content-Type": "application/json"}); r.status != 200 {
			t.Fatalf("authorize %s: %d %s", body, r.status, r.body)
		}
	}
	candidate := writeFile(t, t.TempDir(), "candidate.cedar", `
@id("triage-read-any")
permit(principal == Agent::"triage-bot", action == Action::"github:issues.list", resource);
`)
	before := len(in.events("limit=1000"))
	var rep apitype.ReplayReport
	in.cliJSON(in.admin, &rep, "replay", "--from-audit", "--since", "1h", "--policies", candidate)
	a := rep.Audit
	if a == nil || a.Events != 5 || a.Replayed != 4 || a.WouldBlock != 1 || a.WouldAllow != 1 || len(a.Decisions) != 5 {
		t.Fatalf("from audit: %+v", a)
	}
	for _, d := range a.Decisions {
		switch {
		case d.Tool == "nosuch":
			if d.Skipped == "" || d.RecordedReason != "unknown_tool" || d.Replayed != "" {
				t.Errorf("the unknown tool's call: %+v", d)
			}
		case d.Resource == "repo:acme/other":
			if d.Recorded != "deny" || d.Replayed != "allow" || !d.Changed || d.Agent != "triage-bot" || d.DecisionID == "" {
				t.Errorf("would allow: %+v", d)
			}
		case d.Action == "payments.send" && d.Recorded == "allow":
			if d.Replayed != "deny" || d.Reason != "no_matching_policy" || !d.Changed {
				t.Errorf("would block: %+v", d)
			}
		case d.Changed:
			t.Errorf("changed: %+v", d)
		}
	}
	if rep.Summary.Calls != 4 || rep.Summary.Allowed != 2 || rep.Summary.Denied != 2 {
		t.Errorf("summary %+v", rep.Summary)
	}
	if after := len(in.events("limit=1000")); after != before {
		t.Errorf("the replay recorded %d audit events", after-before)
	}
	out, err := in.cli(in.admin, "replay", "--from-audit", "--since", "1h", "--policies", candidate)
	if err != nil || !strings.Contains(out, "Would have blocked 1 calls that were allowed; would have allowed 1 that were denied or held.") {
		t.Fatalf("warden replay --from-audit: %v\n%s", err, out)
	}
	// The policies in force decide every call as they were decided.
	in.cliJSON(in.admin, &rep, "replay", "--from-audit", "--since", "1h")
	if rep.Audit.WouldBlock != 0 || rep.Audit.WouldAllow != 0 || rep.PolicyVersion == 0 {
		t.Errorf("the policies in force: %+v", rep.Audit)
	}
}
