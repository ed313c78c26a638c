package cedar

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   string // in the problem's message
	}{
		{"unknown entity type in scope", `@id("p") permit(principal == User::"alice", action, resource);`, "unknown entity type User"},
		{"unknown entity type in condition", `@id("p") permit(principal, action, resource) when { principal in Group::"admins" };`, "unknown entity type Group"},
		{"unknown type in is", `@id("p") permit(principal, action, resource) when { resource is Photo };`, "unknown entity type Photo"},
		{"unknown type in is-in", `@id("p") permit(principal, action, resource) when { resource is Photo in Tool::"github" };`, "unknown entity type Photo"},
		{"unknown tool in a set", `@id("p") permit(principal, action, resource) when { [Tool::"github", Tool::"gitlab"].contains(resource) };`, `unknown tool Tool::"gitlab"`},
		{"bad agent in a record", `@id("p") permit(principal, action, resource) when { {"who": Agent::"Bad Name"}.who == principal };`, `Agent::"Bad Name" can never match`},
		{"namespaced type", `@id("p") permit(principal is Warden::Agent, action, resource);`, "unknown entity type Warden::Agent"},
		{"unknown tool", `@id("p") permit(principal, action, resource in Tool::"gitlab");`, `unknown tool Tool::"gitlab" (registered tools everything, github, shell)`},
		{"unknown tool in action", `@id("p") permit(principal, action in Action::"gitlab", resource);`, `no tool "gitlab" is registered`},
		{"unknown http action", `@id("p") permit(principal, action == Action::"github:issue.list", resource);`,
			`unknown action Action::"github:issue.list": tool "github" (http) has actions issues.comment, issues.list, repo.delete, user.get`},
		{"unknown http action in set", `@id("p") permit(principal, action in [Action::"github:issues.list", Action::"github:pulls.merge"], resource);`, `Action::"github:pulls.merge"`},
		{"unknown http action in condition", `@id("p") permit(principal, action, resource) when { action == Action::"github:nope" };`, `Action::"github:nope"`},
		{"empty action name", `@id("p") permit(principal, action == Action::"github:", resource);`, "names no action"},
		{"misspelt session fact", `@id("p") permit(principal, action, resource) when { !context.session.untrusted_reads };`,
			`context.session has no attribute "untrusted_reads"; it has id, private_read, untrusted_read, untrusted_sources`},
		{"misspelt taint fact", `@id("p") forbid(principal, action, resource) when { context.taint has arg };`, `context.taint has no attribute "arg"`},
		{"unknown label", `@id("p") forbid(principal, action, resource) when { context.labels.effects == "external" };`, `context.labels has no attribute "effects"`},
		{"the session id as it was before flow facts", `@id("p") forbid(principal, action, resource) when { context.session == "" };`,
			"context.session is a record: use its attributes (id, private_read, untrusted_read, untrusted_sources) (context.session was the session id before flow facts: it is context.session.id now)"},
		{"a record compared whole", `@id("p") permit(principal, action, resource) when { context.taint == {"any": false, "args": []} && context.taint.any == false };`,
			"context.taint is a record: use its attributes (any, args)"},
		{"decimal without a point", `@id("p") permit(principal, action, resource) when { context.num.amount.lessThan(decimal("100")) };`,
			`decimal("100") is not a decimal: write a point and 1 to 4 digits after it, as decimal("100.0")`},
		{"misspelt num", `@id("p") permit(principal, action, resource) when { context.nums has amount };`, `context has no attribute "nums"`},
		{"empty action set", `@id("p") permit(principal, action in [], resource);`, "matches no action"},
		{"action scope of another type", `@id("p") permit(principal, action == Tool::"github", resource);`, "action is always Action, never Tool"},
		{"principal of another type", `@id("p") permit(principal == Tool::"github", action, resource);`, "principal is always Agent, never Tool"},
		{"resource of another type", `@id("p") permit(principal, action, resource == Agent::"triage-bot");`, "resource is always Tool or Resource, never Agent"},
		{"agent name that cannot exist", `@id("p") permit(principal == Agent::"Triage Bot", action, resource);`, `Agent::"Triage Bot" can never match`},
		{"empty resource", `@id("p") permit(principal, action, resource == Resource::"");`, `Resource::"" can never match`},
		{"context typo", `@id("p") permit(principal, action, resource) when { context.risk_levle > 2 };`, `context has no attribute "risk_levle"`},
		{"context has typo", `@id("p") permit(principal, action, resource) when { context has arg };`, `context has no attribute "arg"`},
		{"principal attribute typo", `@id("p") permit(principal, action, resource) when { principal.team == "x" };`, `principal.getTag("team")`},
		{"resource attribute", `@id("p") permit(principal, action, resource) when { resource.owner == "x" };`, "has no attributes"},
		{"action attribute", `@id("p") permit(principal, action, resource) when { action.name == "x" };`, "actions have no attributes"},
		{"resource tags", `@id("p") permit(principal, action, resource) when { resource.hasTag("x") };`, "resource has no tags"},
		{"approval on forbid", `@id("p") @approval("required") forbid(principal, action, resource);`, "@approval belongs on a permit"},
		{"approval misspelt value", `@id("p") @approval("requried") permit(principal, action, resource);`, `@approval("requried") is not understood`},
		{"approval without value", `@id("p") @approval permit(principal, action, resource);`, `@approval("") is not understood`},
		{"waiver on forbid", `@id("p") @approval("waived") forbid(principal, action, resource);`, "@approval belongs on a permit"},
		{"bad id", `@id("has space") permit(principal, action, resource);`, `@id("has space") is not a usable id`},
		{"duplicate id", `@id("p") permit(principal, action, resource); @id("p") forbid(principal, action, resource);`, "id already used by the policy at main.cedar:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := compileProblems(t, map[string]string{"main.cedar": tt.policy})
			found := false
			for _, p := range ps {
				if strings.Contains(p.Message, tt.want) {
					found = true
					wantID := "p"
					if tt.name == "bad id" {
						wantID = "has space" // the id is reported as written, to be found
					}
					if p.Policy != wantID || p.File != "main.cedar" || p.Line == 0 {
						t.Errorf("problem %+v does not name policy %s in main.cedar with a line", p, wantID)
					}
				}
			}
			if !found {
				t.Errorf("problems %v; want one containing %q", ps, tt.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, policy := range []string{
		`permit(principal == Agent::"not-yet-created", action, resource);`,
		`permit(principal in Agent::"a", action, resource);`,
		`permit(principal is Agent, action, resource is Resource);`,
		`permit(principal is Agent in Agent::"a", action, resource is Resource in Tool::"github");`,
		`permit(principal, action == Action::"everything:any-name_at/all.v2", resource);`,
		`permit(principal, action == Action::"shell:exec", resource);`,
		`forbid(principal, action, resource) when { context.labels.effect == "external" && context.taint.args.containsAny(["to", "iban"]) };`,
		`permit(principal, action, resource) when { context has session && context.session has id && context.session.id == "s-1" };`,
		`permit(principal, action, resource) when { !context.session.untrusted_read || !context.taint.any } unless { context.session.untrusted_sources.contains("mail") || context.session.private_read };`,
		`permit(principal, action, resource == Resource::"repo:acme/web");`,
		`permit(principal, action, resource) when { context.args.anything.at.all == 1 };`,
		`permit(principal, action, resource) when { principal.getTag("team") == "x" && principal has owner };`,
		`permit(principal, action, resource) when { [Tool::"github", Resource::"x"].contains(resource) };`,
		`permit(principal, action, resource) when { {"a": Agent::"b"}.a == principal };`,
		`forbid(principal, action, resource) unless { context.risk_level < 3 };`,
		`@description("any annotation warden does not know is kept") permit(principal, action, resource);`,
		"// only a comment",
		"",
	} {
		if _, err := Compile(map[string]string{"main.cedar": policy}, testTools(), 1); err != nil {
			t.Errorf("Compile(%s): %v", policy, err)
		}
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	ps := compileProblems(t, map[string]string{
		"a.cedar": "permit(principal, action, resource);\n\nforbid(principal, action, resource) when { 1 + };",
		"b.cedar": `permit(principal == User::"x", action == Action::"github:nope", resource);`,
		"c.cedar": `permit(principal, action, resource);`,
	})
	if len(ps) != 3 {
		t.Fatalf("problems = %v; want 3", ps)
	}
	if ps[0].File != "a.cedar" || ps[0].Line != 3 || !strings.HasPrefix(ps[0].Message, "syntax error") {
		t.Errorf("parse problem = %+v; want a.cedar line 3", ps[0])
	}
	if !strings.Contains(ps[0].String(), "a.cedar:3:") {
		t.Errorf("parse problem reads %q; want it to start with the file and line", ps[0].String())
	}
	for _, p := range ps[1:] {
		if p.File != "b.cedar" || p.Policy != "b.cedar#0" {
			t.Errorf("problem %+v; want it in b.cedar, policy b.cedar#0", p)
		}
	}
	_, err := Compile(map[string]string{"a.cedar": "permit(principal, action, resource) when { 1 + };"}, testTools(), 1)
	if msg := warden.ErrorMessage(err); !strings.HasPrefix(msg, "invalid policy: a.cedar:1:") {
		t.Errorf("public message = %q", msg)
	}
}

func TestCompileRejectsTools(t *testing.T) {
	tests := []struct {
		name  string
		tools []*warden.Tool
		want  string
	}{
		{"nil tool", []*warden.Tool{nil}, "nil tool"},
		{"bad name", []*warden.Tool{{Name: "Git Hub", Kind: warden.ToolMCP}}, "invalid tool name"},
		{"duplicate", []*warden.Tool{{Name: "a", Kind: warden.ToolMCP}, {Name: "a", Kind: warden.ToolHTTP}}, "registered twice"},
		{"unknown kind", []*warden.Tool{{Name: "a", Kind: "grpc"}}, `unknown kind "grpc"`},
		{"route without arrow", []*warden.Tool{{Name: "a", Kind: warden.ToolHTTP, Routes: []string{"GET /x issues.list"}}}, `want "METHOD /path -> action [resource]"`},
		{"route with bad action", []*warden.Tool{{Name: "a", Kind: warden.ToolHTTP, Routes: []string{`GET /x -> "quoted"`}}}, "invalid action"},
		{"route with too much", []*warden.Tool{{Name: "a", Kind: warden.ToolHTTP, Routes: []string{"GET /x -> a b c"}}}, "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(nil, tt.tools, 1)
			if warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), tt.want) {
				t.Errorf("Compile error = %v; want invalid, containing %q", err, tt.want)
			}
			if _, err := Schema(tt.tools); warden.ErrorCode(err) != warden.EInvalid {
				t.Errorf("Schema error = %v; want invalid", err)
			}
		})
	}
}
