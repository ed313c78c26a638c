package cedar

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// testNow is the time of every test request, so that decisions do not depend on the clock.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testTools() []*warden.Tool {
	return []*warden.Tool{
		{
			Name: "github", Kind: warden.ToolHTTP, Risk: warden.RiskMedium,
			Routes: []string{
				"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}",
				"POST /repos/{owner}/{repo}/issues/{n}/comments -> issues.comment repo:{owner}/{repo}",
				"DELETE /repos/{owner}/{repo} -> repo.delete repo:{owner}/{repo}",
				"GET /user -> user.get",
			},
		},
		{Name: "everything", Kind: warden.ToolMCP, Risk: warden.RiskLow},
		{Name: "shell", Kind: warden.ToolMCPCommand, Risk: warden.RiskCritical, Command: []string{"mcp-shell"}},
	}
}

func testTool(name string) *warden.Tool {
	for _, t := range testTools() {
		if t.Name == name {
			return t
		}
	}
	panic("no test tool " + name)
}

func testAgent(name string) *warden.Agent {
	return &warden.Agent{
		ID: "id-" + name, Name: name, Owner: "alice@example.com", Purpose: "triage issues",
		Labels: map[string]string{"team": "payments", "env": "prod"}, Status: warden.AgentActive,
	}
}

// req builds a request of agent on "tool:action".
func req(agent, toolAction string) *warden.Request {
	tool, action, _ := strings.Cut(toolAction, ":")
	return &warden.Request{Agent: testAgent(agent), Tool: testTool(tool), Action: action, SessionID: "s-1", Time: testNow}
}

func mustCompile(t testing.TB, files map[string]string) *Engine {
	t.Helper()
	e, err := Compile(files, testTools(), 7)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

// compileProblems compiles files that must fail and returns the problems found.
func compileProblems(t *testing.T, files map[string]string) Problems {
	t.Helper()
	_, err := Compile(files, testTools(), 1)
	if err == nil {
		t.Fatalf("Compile succeeded; want problems")
	}
	if code := warden.ErrorCode(err); code != warden.EInvalid {
		t.Fatalf("error code = %q, want %q (%v)", code, warden.EInvalid, err)
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("error %v carries no Problems", err)
	}
	return ps
}

func withFlow(r *warden.Request, f *warden.FlowFacts) *warden.Request {
	r.Flow = f
	return r
}

func flowLabels(output, data, effect string) warden.FlowLabels {
	return warden.FlowLabels{
		Output: warden.FlowLabel{Value: output, Source: warden.LabelFromTool},
		Data:   warden.FlowLabel{Value: data, Source: warden.LabelFromTool},
		Effect: warden.FlowLabel{Value: effect, Source: warden.LabelFromTool},
	}
}
