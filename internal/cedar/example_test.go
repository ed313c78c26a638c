package cedar_test

import (
	"fmt"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/cedar"
)

func Example() {
	tools := []*warden.Tool{{
		Name: "github", Kind: warden.ToolHTTP, Risk: warden.RiskMedium,
		Routes: []string{
			"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}",
			"DELETE /repos/{owner}/{repo} -> repo.delete repo:{owner}/{repo}",
		},
	}}
	grant, err := cedar.Grant(cedar.GrantSpec{Agent: "triage-bot", Tool: "github", When: `context.args.state == "open"`})
	if err != nil {
		panic(err)
	}
	engine, err := cedar.Compile(map[string]string{
		"warden.yaml": grant,
		"guard.cedar": `@id("no-deletes") forbid(principal, action == Action::"github:repo.delete", resource);`,
	}, tools, 3)
	if err != nil {
		panic(err)
	}

	agent := &warden.Agent{Name: "triage-bot", Owner: "alice@example.com"}
	for _, r := range []*warden.Request{
		{Agent: agent, Tool: tools[0], Action: "issues.list", Resource: "repo:acme/web", Arguments: map[string]any{"state": "open"}},
		{Agent: agent, Tool: tools[0], Action: "repo.delete", Resource: "repo:acme/web"},
		{Agent: &warden.Agent{Name: "other-bot"}, Tool: tools[0], Action: "issues.list"},
	} {
		r.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		d := engine.Decide(r)
		fmt.Println(d.Effect, d.Reason, d.Policies, d.PolicyVersion)
	}
	// Output:
	// allow policy_allow [grant:triage-bot:github:0] 3
	// deny forbidden_by_policy [no-deletes] 3
	// deny no_matching_policy [] 3
}
