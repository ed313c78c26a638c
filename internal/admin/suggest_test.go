package admin

import (
	"slices"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
)

// TestSuggestGrants: actions grouped per tool by the resources they were used on; a tool whose
// calls named no resource gets no condition; an approved action asks for approval again.
func TestSuggestGrants(t *testing.T) {
	calls := []suggestCall{
		{tool: "github", action: "issues.list", resource: "repo:acme/web"},
		{tool: "github", action: "issues.list", resource: "repo:acme/api"},
		{tool: "github", action: "issues.get", resource: "repo:acme/api"},
		{tool: "github", action: "issues.get", resource: "repo:acme/web"},
		{tool: "github", action: "user.get"},
		{tool: "mail", action: "read"},
		{tool: "mail", action: "send", approved: true},
		{tool: "vault", action: "read", waived: true},
		{tool: "vault", action: "read"},
		{tool: "bad tool", action: "x"},
	}
	got, skipped := suggestGrants("bot", calls)
	want := []apitype.SuggestedGrant{
		{GrantDecl: apitype.GrantDecl{Agent: "bot", Tool: "github", Actions: []string{"issues.get", "issues.list"}, When: `context.resource like "repo:acme/*"`},
			Resources: []string{"repo:acme/*"}, Calls: 4},
		{GrantDecl: apitype.GrantDecl{Agent: "bot", Tool: "github", Actions: []string{"user.get"}, When: `context.resource == ""`}, Resources: []string{""}, Calls: 1},
		{GrantDecl: apitype.GrantDecl{Agent: "bot", Tool: "mail", Actions: []string{"read"}}, Calls: 1},
		{GrantDecl: apitype.GrantDecl{Agent: "bot", Tool: "mail", Actions: []string{"send"}, Approval: apitype.ApprovalRequired}, Calls: 1},
		{GrantDecl: apitype.GrantDecl{Agent: "bot", Tool: "vault", Actions: []string{"read"}, Approval: apitype.ApprovalWaived}, Calls: 2},
	}
	if skipped != 1 || len(got) != len(want) {
		t.Fatalf("got %d grants, %d skipped: %+v", len(got), skipped, got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tool != w.Tool || !slices.Equal(g.Actions, w.Actions) || g.When != w.When || g.Approval != w.Approval || !slices.Equal(g.Resources, w.Resources) || g.Calls != w.Calls {
			t.Errorf("grant %d = %+v, want %+v", i, g, w)
		}
	}
	y, c, err := renderSuggestion("bot", got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(y, "grants:\n") || !strings.Contains(y, `when: context.resource like "repo:acme/*"`) || !strings.Contains(c, `@id("suggested:bot:github:1")`) || !strings.Contains(y, "approval: waived") || !strings.Contains(c, `@approval("waived")`) {
		t.Errorf("yaml:\n%s\ncedar:\n%s", y, c)
	}
}

// FuzzSuggestCovers: whatever resources an agent used, the suggested Cedar compiles and allows
// each recorded call again (the condition's quoting is exact), and no call on a resource that
// neither matches exactly nor shares a generalised prefix.
func FuzzSuggestCovers(f *testing.F) {
	f.Add("repo:acme/web", "repo:acme/api", "repo:other/x")
	f.Add(`a"b\c`, "x/*y", "x/")
	f.Add("a*/1", "a*/2", "ab/3")
	f.Add("tab\there/1", "tab\there/2", "tab\there")
	f.Add("", "é/ü", "\u2028/a")
	f.Fuzz(func(t *testing.T, r1, r2, other string) {
		for _, s := range []string{r1, r2, other} {
			if !utf8Valid(s) || len(s) > 200 {
				return
			}
		}
		calls := []suggestCall{{tool: "github", action: "issues.list", resource: r1}, {tool: "github", action: "issues.list", resource: r2}}
		grants, _ := suggestGrants("bot", calls)
		_, text, err := renderSuggestion("bot", grants)
		if err != nil {
			t.Fatalf("render %q, %q: %v", r1, r2, err)
		}
		tool := &warden.Tool{Name: "github", Kind: warden.ToolMCP, Risk: warden.RiskLow}
		e, err := cedar.Compile(map[string]string{"s.cedar": text}, []*warden.Tool{tool}, 1)
		if err != nil {
			t.Fatalf("the suggestion for %q, %q does not compile: %v\n%s", r1, r2, err, text)
		}
		decide := func(res string) string {
			return e.Decide(&warden.Request{Agent: &warden.Agent{Name: "bot", Status: warden.AgentActive}, Tool: tool, Action: "issues.list", Resource: res}).Effect
		}
		for _, r := range []string{r1, r2} {
			if d := decide(r); d != warden.EffectAllow {
				t.Fatalf("resource %q recorded, decided %s by\n%s", r, d, text)
			}
		}
		covered := other == r1 || other == r2
		for _, p := range grants[0].Resources {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, "/") && strings.HasPrefix(other, prefix) {
				covered = true
			}
		}
		if d := decide(other); (d == warden.EffectAllow) != covered {
			t.Fatalf("resource %q (covered %t) decided %s by\n%s", other, covered, d, text)
		}
	})
}

func utf8Valid(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s && !strings.ContainsRune(s, 0xFFFD)
}
