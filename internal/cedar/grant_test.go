package cedar

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

func TestGrant(t *testing.T) {
	tests := []struct {
		name string
		spec GrantSpec
	}{
		{"whole-tool", GrantSpec{Agent: "triage-bot", Tool: "github"}},
		{"one-action", GrantSpec{Agent: "triage-bot", Tool: "github", Actions: []string{"issues.list"}, Index: 1}},
		{"actions-when", GrantSpec{Agent: "triage-bot", Tool: "github", Actions: []string{"issues.list", "issues.comment", "issues.list"},
			When: `resource == Resource::"repo:acme/web"`, Index: 2}},
		{"approval", GrantSpec{Agent: "deploy-bot", Tool: "shell", Approval: true, Index: 0}},
		{"waived", GrantSpec{Agent: "deploy-bot", Tool: "shell", Actions: []string{"exec"}, WaiveApproval: true, Index: 1}},
		{"multiline-when", GrantSpec{Agent: "ops-bot", Tool: "everything", Actions: []string{"echo"},
			When: "context.args.count < 10 // at most ten\n  && principal.getTag(\"team\") == \"payments\"", Index: 3}},
	}
	files := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Grant(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "grant/"+tt.name+".cedar", got)
			files[tt.name+".cedar"] = got
		})
	}
	// Grants are meant to be compiled; every one must pass validation and keep its id.
	e, err := Compile(files, testTools(), 1)
	if err != nil {
		t.Fatalf("compiled grants do not validate: %v", err)
	}
	d := e.Decide(&warden.Request{Agent: testAgent("triage-bot"), Tool: testTool("github"), Action: "issues.comment", Resource: "repo:acme/web", Time: testNow})
	if d.Effect != warden.EffectAllow || strings.Join(d.Policies, ",") != "grant:triage-bot:github:2,grant:triage-bot:github:0" {
		t.Errorf("Decide = %+v; want allow by grants 2 and 0, in file order", d)
	}
}

// A grant's fields come from a config file an attacker may be able to influence; none of them may
// widen the policy beyond the one permit it describes.
func TestGrantRejectsInjection(t *testing.T) {
	base := GrantSpec{Agent: "triage-bot", Tool: "github"}
	tests := []struct {
		name string
		edit func(*GrantSpec)
		want string
	}{
		{"agent quote", func(g *GrantSpec) { g.Agent = `x", action, resource); permit(principal == Agent::"y` }, "invalid agent name"},
		{"agent uppercase", func(g *GrantSpec) { g.Agent = "Triage" }, "invalid agent name"},
		{"tool quote", func(g *GrantSpec) { g.Tool = `github"` }, "invalid tool name"},
		{"tool colon", func(g *GrantSpec) { g.Tool = "github:issues" }, "invalid tool name"},
		{"empty tool", func(g *GrantSpec) { g.Tool = "" }, "invalid tool name"},
		{"action quote", func(g *GrantSpec) { g.Actions = []string{`list"], resource); permit(principal, action in [Action::"x`} }, "invalid action"},
		{"action colon", func(g *GrantSpec) { g.Actions = []string{"other:thing"} }, "invalid action"},
		{"action space", func(g *GrantSpec) { g.Actions = []string{"issues list"} }, "invalid action"},
		{"empty action", func(g *GrantSpec) { g.Actions = []string{""} }, "invalid action"},
		{"action newline", func(g *GrantSpec) { g.Actions = []string{"a\nb"} }, "invalid action"},
		{"when closes and opens a policy", func(g *GrantSpec) { g.When = `true }; permit(principal, action, resource) when { true` }, "must be one Cedar expression"},
		{"when closes and adds a policy", func(g *GrantSpec) {
			g.When = "true };\npermit(principal, action, resource);\n@x(\"\") permit(principal, action, resource) when {true"
		}, "must be one Cedar expression"},
		{"when adds an unless", func(g *GrantSpec) { g.When = `false } unless { false` }, "must be one Cedar expression"},
		{"when adds a when", func(g *GrantSpec) { g.When = `false } when { true` }, "must be one Cedar expression"},
		{"when closes the policy", func(g *GrantSpec) { g.When = `true };` }, "not a Cedar expression"},
		{"when is a statement", func(g *GrantSpec) { g.When = `permit(principal, action, resource)` }, "not a Cedar expression"},
		{"when is two expressions", func(g *GrantSpec) { g.When = `true false` }, "not a Cedar expression"},
		{"when unbalanced", func(g *GrantSpec) { g.When = `(true` }, "not a Cedar expression"},
		{"when unknown variable", func(g *GrantSpec) { g.When = `user == "x"` }, "not a Cedar expression"},
		{"negative index", func(g *GrantSpec) { g.Index = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := base
			tt.edit(&g)
			text, err := Grant(g)
			if err == nil {
				t.Fatalf("Grant accepted it:\n%s", text)
			}
			if warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), tt.want) {
				t.Errorf("Grant error = %q (%s); want invalid, containing %q", warden.ErrorMessage(err), warden.ErrorCode(err), tt.want)
			}
		})
	}
}

// A comment in When cannot swallow the end of the condition: the expression sits on lines of its
// own, so `// }` comments out only itself.
func TestGrantWhenComment(t *testing.T) {
	text, err := Grant(GrantSpec{Agent: "a", Tool: "github", When: `context.risk_level < 3 // } permit(principal, action, resource) when { true`})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(map[string]string{"g.cedar": text}, testTools(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.Policies()); n != 1 {
		t.Fatalf("grant compiled to %d policies:\n%s", n, text)
	}
	if strings.Contains(text, "permit(principal, action, resource)") {
		t.Errorf("the comment survived into the policy text:\n%s", text)
	}
}

func TestGrantWhenSyntaxError(t *testing.T) {
	for when, want := range map[string]string{
		"(true":                "at its end",
		"context.risk_level <": "at its end",
		"true &&\ncontext.args.x == == 1\n|| false": "line 2, column",
	} {
		_, err := Grant(GrantSpec{Agent: "a", Tool: "github", When: when})
		if msg := warden.ErrorMessage(err); !strings.Contains(msg, "not a Cedar expression ("+want) {
			t.Errorf("Grant(when %q) error %q; want it to point %q", when, msg, want)
		}
	}
}
