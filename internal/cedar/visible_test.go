package cedar

import "testing"

func TestMayPermit(t *testing.T) {
	e := mustCompile(t, map[string]string{"p.cedar": `
permit(principal == Agent::"bot", action == Action::"everything:echo", resource)
when { context.args.message == "hi" };
permit(principal == Agent::"bot", action == Action::"github:issues.list", resource)
when { resource == Resource::"repo:acme/web" };
permit(principal, action in Action::"shell", resource) when { principal.getTag("team") == "ops" };
forbid(principal == Agent::"bot", action == Action::"everything:add", resource);
`})
	cases := []struct {
		agent, toolAction string
		want              bool
	}{
		{"bot", "everything:echo", true},     // a condition on arguments does not hide it
		{"bot", "github:issues.list", true},  // nor one on the resource
		{"bot", "everything:add", false},     // no permit at all
		{"other", "everything:echo", false},  // another agent
		{"bot", "shell:run", true},           // a group action and a condition on tags: shown
		{"bot", "github:repo.delete", false}, // not granted
	}
	for _, c := range cases {
		r := req(c.agent, c.toolAction)
		if got := e.MayPermit(r.Agent, r.Tool, r.Action); got != c.want {
			t.Errorf("MayPermit(%s, %s) = %v, want %v", c.agent, c.toolAction, got, c.want)
		}
	}
	// A forbid with no condition hides what it covers; one with a condition, or on one
	// resource, does not.
	f := mustCompile(t, map[string]string{"p.cedar": `
permit(principal == Agent::"bot", action, resource);
forbid(principal == Agent::"bot", action == Action::"everything:add", resource);
forbid(principal, action in Action::"shell", resource);
forbid(principal == Agent::"bot", action == Action::"everything:echo", resource) when { context.taint.any };
forbid(principal == Agent::"bot", action == Action::"github:issues.list", resource == Resource::"repo:acme/secret");
`})
	for _, c := range []struct {
		toolAction string
		want       bool
	}{{"everything:add", false}, {"shell:run", false}, {"everything:echo", true}, {"github:issues.list", true}, {"github:user.get", true}} {
		r := req("bot", c.toolAction)
		if got := f.MayPermit(r.Agent, r.Tool, r.Action); got != c.want {
			t.Errorf("with forbids: MayPermit(bot, %s) = %v, want %v", c.toolAction, got, c.want)
		}
	}
	if e.MayPermit(nil, testTool("github"), "x") || (*Engine)(nil).MayPermit(testAgent("bot"), testTool("github"), "issues.list") {
		t.Error("nil inputs must not be visible")
	}
}
