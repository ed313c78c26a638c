package server_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/httpapi"
)

// shadowDoc grants the agent bot two MCP tools (their upstream a closed local port: the
// decision API needs none).
const shadowDoc = `
agents:
  - name: bot
    owner: bob@example.com
    purpose: Triage issues
tools:
  - name: github
    mcp: http://127.0.0.1:9/github
    risk: low
  - name: mail
    mcp: http://127.0.0.1:9/mail
    risk: low
grants:
  - {agent: bot, tool: github}
  - {agent: bot, tool: mail}
`

// shadowCandidate keeps the grants (a candidate keeps the generated files) and forbids github.
const shadowCandidate = `@id("no-github")
forbid (principal, action in Action::"github", resource);
`

// shadowCalls is the agent's decisions through the decision API on in.
type shadowCalls struct {
	t    *testing.T
	in   *instance
	auth map[string]string
}

func newShadowCalls(t *testing.T, in *instance, cred struct{ id, secret string }) *shadowCalls {
	return &shadowCalls{t: t, in: in, auth: map[string]string{"Authorization": "Bearer " + in.mustToken(cred.id, cred.secret), "Content-Type": "application/json"}}
}

// decide asks for one call and returns its effect and decision id.
func (c *shadowCalls) decide(tool, action string) (effect, id string) {
	c.t.Helper()
	r := c.in.do("POST", "/v1/authorize", c.auth, `{"tool":"`+tool+`","action":"`+action+`","resource":"repo:acme/web"}`)
	if r.status != 200 {
		c.t.Fatalf("authorize %s:%s: %d %s", tool, action, r.status, r.body)
	}
	d := r.json(c.t)
	return d["effect"].(string), d["decision_id"].(string)
}

// shadowDiffs returns the policy.shadow_diff events in in's audit log once there are want of
// them (they are appended off the call's path), failing after 10 s.
func shadowDiffs(t *testing.T, in *instance, want int) []*warden.AuditEvent {
	t.Helper()
	var evs []*warden.AuditEvent
	waitUntil(t, 10*time.Second, "the shadow differences are recorded", func() bool {
		evs = in.events("type=" + warden.EventPolicyShadowDiff + "&limit=1000")
		return len(evs) >= want
	})
	return evs
}

// TestPolicyShadow: a candidate that denies a tool the live set allows changes no decision;
// each of its N calls is exactly one policy.shadow_diff event and the M calls of a tool both
// sets treat alike none, as the report counts them too. Only admins change the candidate;
// one that does not compile is refused as apply refuses it. Promote puts it in force through
// apply's path; drop removes it.
func TestPolicyShadow(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	plan := in.apply(shadowDoc)
	cred := plan.Credentials["bot"]
	calls := newShadowCalls(t, in, struct{ id, secret string }{cred.ClientID, cred.ClientSecret})
	candidate := writeFile(t, t.TempDir(), "no-github.cedar", shadowCandidate)

	// Operators and auditors may read the candidate and its report, not change it.
	for _, role := range []string{"operator", "auditor"} {
		var tok httpapi.CreatedAdminToken
		in.cliJSON(in.admin, &tok, "admin", "token", "create", "shadow-"+role, "--role", role)
		h := map[string]string{"Authorization": "Bearer " + tok.Token, "Content-Type": "application/json"}
		if r := in.do("PUT", "/v1/policies/shadow", h, `{"files":{"a.cedar":"`+strings.ReplaceAll(strings.ReplaceAll(shadowCandidate, `"`, `\"`), "\n", `\n`)+`"}}`); r.status != 403 {
			t.Errorf("%s applied a shadow: %d %s, want 403", role, r.status, r.body)
		}
		if r := in.do("POST", "/v1/policies/shadow/promote", h, `{}`); r.status != 403 {
			t.Errorf("%s promoted a shadow: %d %s, want 403", role, r.status, r.body)
		}
		if r := in.do("GET", "/v1/policies/shadow/report", h, ""); r.status != 200 {
			t.Errorf("%s read the report: %d %s, want 200", role, r.status, r.body)
		}
	}
	if r := in.do("GET", "/v1/policies/shadow", map[string]string{"Authorization": "Bearer " + in.admin}, ""); r.status != 404 {
		t.Fatalf("no shadow yet: %d %s, want 404", r.status, r.body)
	}

	// A candidate that does not compile: the same refusal as apply.
	bad := writeFile(t, t.TempDir(), "bad.cedar", `permit (principal, action == Action::"nosuchtool:x", resource);`)
	_, applyErr := in.cli(in.admin, "policy", "apply", bad)
	_, shadowErr := in.cli(in.admin, "policy", "apply", "--shadow", bad)
	if applyErr == nil || shadowErr == nil || applyErr.Error() != shadowErr.Error() {
		t.Fatalf("policy apply: %v; with --shadow: %v; want the same refusal", applyErr, shadowErr)
	}

	var sh warden.PolicyShadow
	in.cliJSON(in.admin, &sh, "policy", "apply", "--shadow", candidate, "--comment", "no github")
	if sh.Version != 1 || sh.Base != 1 {
		t.Fatalf("shadow %+v: want version 1 beside live version 1", sh)
	}

	const n, m = 4, 3
	for range m {
		if effect, _ := calls.decide("mail", "read"); effect != warden.EffectAllow {
			t.Fatalf("mail:read decided %s", effect)
		}
	}
	ids := map[string]bool{}
	for range n {
		effect, id := calls.decide("github", "issues.list")
		if effect != warden.EffectAllow {
			t.Fatalf("github:issues.list decided %s under a shadow that forbids it: the shadow must change nothing", effect)
		}
		ids[id] = true
	}
	// The mail calls were queued first: once the github ones are in, every difference is.
	diffs := shadowDiffs(t, in, n)
	if len(diffs) != n {
		t.Fatalf("%d differences, want exactly %d", len(diffs), n)
	}
	for _, ev := range diffs {
		var sd warden.PolicyShadowDecision
		if err := json.Unmarshal(ev.Target.Arguments, &sd); err != nil {
			t.Fatal(err)
		}
		if !ids[ev.Decision.ID] || ev.Actor.Name != "bot" || ev.Target.Tool != "github" || ev.Target.Action != "issues.list" ||
			ev.Decision.Effect != warden.EffectAllow || sd.Effect != warden.EffectDeny || !slices.Contains(sd.Policies, "no-github") || sd.ShadowVersion != 1 {
			t.Errorf("difference %+v, shadow %+v", ev, sd)
		}
	}

	var rep apitype.PolicyShadowReport
	in.cliJSON(in.admin, &rep, "policy", "shadow", "report")
	if rep.Diffs != n || rep.Dropped != 0 || len(rep.Groups) != 1 || rep.Shadow == nil || rep.Shadow.Version != 1 {
		t.Fatalf("report %+v: want %d differences in one group of shadow version 1", rep, n)
	}
	if g := rep.Groups[0]; g.Tool != "github" || g.Action != "issues.list" || g.Live != warden.EffectAllow || g.Shadow != warden.EffectDeny || g.Count != n || len(g.Examples) != apitype.MaxShadowExamples {
		t.Errorf("group %+v", g)
	}
	if r := rep.Replica; r.ShadowVersion != 1 || r.Compared != n+m || r.Diffs != n || r.Dropped != 0 {
		t.Errorf("this replica's counts %+v: want %d compared, %d different", r, n+m, n)
	}
	out, err := in.cli(in.admin, "policy", "shadow", "report")
	if err != nil || !strings.Contains(out, "Differences since") || !strings.Contains(out, "allow → deny") {
		t.Errorf("policy shadow report: %v\n%s", err, out)
	}
	if out, err := in.cli(in.admin, "policy", "shadow", "show"); err != nil || !strings.Contains(out, "no-github") {
		t.Errorf("policy shadow show: %v\n%s", err, out)
	}

	// Promote: github is now denied live, and the candidate is gone.
	var ps warden.PolicySet
	in.cliJSON(in.admin, &ps, "policy", "shadow", "promote", "--reason", "verified")
	if ps.Version != 2 || !strings.Contains(ps.Comment, "promote shadow 1") {
		t.Fatalf("promoted %+v", ps)
	}
	if effect, _ := calls.decide("github", "issues.list"); effect != warden.EffectDeny {
		t.Fatalf("after promote github:issues.list is %s, want deny", effect)
	}
	if effect, _ := calls.decide("mail", "read"); effect != warden.EffectAllow {
		t.Fatalf("after promote mail:read is %s, want allow", effect)
	}
	if r := in.do("GET", "/v1/policies/shadow", map[string]string{"Authorization": "Bearer " + in.admin}, ""); r.status != 404 {
		t.Fatalf("after promote: %d %s, want 404", r.status, r.body)
	}
	if evs := in.events("type=" + warden.EventPolicyShadowPromote); len(evs) != 1 || !strings.Contains(evs[0].Decision.Message, "promote shadow 1: verified") {
		t.Fatalf("promote events %+v", evs)
	}

	// Drop: a new candidate, removed unpromoted.
	in.cliJSON(in.admin, &sh, "policy", "apply", "--shadow", writeFile(t, t.TempDir(), "none.cedar", "// nothing\n"))
	if sh.Version != 2 {
		t.Fatalf("the next candidate is version %d, want 2", sh.Version)
	}
	if _, err := in.cli(in.admin, "policy", "shadow", "drop", "--reason", "not now"); err != nil {
		t.Fatal(err)
	}
	if r := in.do("GET", "/v1/policies/shadow", map[string]string{"Authorization": "Bearer " + in.admin}, ""); r.status != 404 {
		t.Fatalf("after drop: %d %s, want 404", r.status, r.body)
	}
	if evs := in.events("type=" + warden.EventPolicyShadowDrop); len(evs) != 1 || evs[0].Target.Resource != "policy_shadow:2" {
		t.Fatalf("drop events %+v", evs)
	}
	if _, err := in.cli(in.admin, "policy", "shadow", "drop"); err == nil {
		t.Fatal("dropping no candidate succeeded")
	}
}
