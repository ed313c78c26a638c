package cedar

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestDecide(t *testing.T) {
	type want struct {
		effect, reason string
		policies       []string
		message        string // substring, when set
	}
	allow := func(ids ...string) want { return want{warden.EffectAllow, warden.ReasonPolicyAllow, ids, ""} }
	noMatch := want{warden.EffectDeny, warden.ReasonNoMatchingPolicy, nil, ""}

	withArgs := func(r *warden.Request, args string) *warden.Request {
		if err := json.Unmarshal([]byte(args), &r.Arguments); err != nil {
			panic(err)
		}
		return r
	}
	withArgValue := func(r *warden.Request, name string, v any) *warden.Request {
		r.Arguments = map[string]any{name: v}
		return r
	}
	withResource := func(r *warden.Request, res string) *warden.Request { r.Resource = res; return r }
	onBehalfOf := func(r *warden.Request, who string) *warden.Request { r.OnBehalfOf = who; return r }
	bodyUninspected := func(r *warden.Request) *warden.Request { r.BodyUninspected = true; return r }

	const limit = `@id("l") permit(principal, action, resource) when { context.num.amount.lessThan(decimal("100.0")) };`
	const grant = `@id("g") permit(principal == Agent::"triage-bot", action in Action::"github", resource in Tool::"github");`

	tests := []struct {
		name   string
		policy string
		req    *warden.Request
		want   want
	}{
		{"permit", grant, req("triage-bot", "github:issues.list"), allow("g")},
		{"default deny: no policy", ``, req("triage-bot", "github:issues.list"), noMatch},
		{"default deny: other agent", grant, req("other-bot", "github:issues.list"), noMatch},
		{"default deny: other tool", grant, req("triage-bot", "everything:echo"), noMatch},
		{"unnamed policy gets file#index", `permit(principal, action, resource); permit(principal == Agent::"x", action, resource);`,
			req("x", "everything:echo"), allow("main.cedar#0", "main.cedar#1")},
		{"forbid beats permit", grant + `@id("f") forbid(principal, action == Action::"github:repo.delete", resource);`,
			req("triage-bot", "github:repo.delete"), want{warden.EffectDeny, warden.ReasonForbidden, []string{"f"}, "forbidden by policy f"}},
		{"forbid elsewhere leaves permit", grant + `@id("f") forbid(principal, action == Action::"github:repo.delete", resource);`,
			req("triage-bot", "github:issues.list"), allow("g")},
		{"action list", `@id("l") permit(principal, action in [Action::"github:issues.list", Action::"github:issues.comment"], resource);`,
			req("triage-bot", "github:issues.comment"), allow("l")},
		{"action list excludes", `@id("l") permit(principal, action in [Action::"github:issues.list"], resource);`,
			req("triage-bot", "github:repo.delete"), noMatch},
		{"mcp group", `@id("m") permit(principal, action in Action::"everything", resource);`, req("a", "everything:echo"), allow("m")},
		{"mcp action", `@id("m") permit(principal, action == Action::"everything:echo", resource);`, req("a", "everything:echo"), allow("m")},
		{"mcp action excludes", `@id("m") permit(principal, action == Action::"everything:echo", resource);`, req("a", "everything:add"), noMatch},

		{"resource is the tool without a resource", `@id("r") permit(principal, action, resource == Tool::"github");`,
			req("a", "github:user.get"), allow("r")},
		{"resource in tool matches a named resource", `@id("r") permit(principal, action, resource in Tool::"github");`,
			withResource(req("a", "github:issues.list"), "repo:acme/web"), allow("r")},
		{"resource condition holds", grant[:len(grant)-1] + ` when { resource == Resource::"repo:acme/web" };`,
			withResource(req("triage-bot", "github:issues.list"), "repo:acme/web"), allow("g")},
		{"resource condition fails", grant[:len(grant)-1] + ` when { resource == Resource::"repo:acme/web" };`,
			withResource(req("triage-bot", "github:issues.list"), "repo:acme/secret"), noMatch},
		{"resource pattern holds", grant[:len(grant)-1] + ` when { context.resource like "repo:acme/*" };`,
			withResource(req("triage-bot", "github:issues.list"), "repo:acme/web"), allow("g")},
		{"resource pattern fails", grant[:len(grant)-1] + ` when { context.resource like "repo:acme/*" };`,
			withResource(req("triage-bot", "github:issues.list"), "repo:other/web"), noMatch},
		{"resource pattern without a resource", grant[:len(grant)-1] + ` when { context.resource like "repo:acme/*" };`,
			req("triage-bot", "github:issues.list"), noMatch},
		{"resource in other tool", `@id("r") permit(principal, action, resource in Tool::"everything");`,
			withResource(req("a", "github:issues.list"), "repo:acme/web"), noMatch},

		{"args condition holds", `@id("a") permit(principal, action, resource) when { context.args.count <= 10 && context.args.q like "bug*" };`,
			withArgs(req("a", "everything:echo"), `{"count": 10, "q": "bug 42"}`), allow("a")},
		{"args condition fails", `@id("a") permit(principal, action, resource) when { context.args.count <= 10 };`,
			withArgs(req("a", "everything:echo"), `{"count": 11}`), noMatch},
		{"args nested and sets", `@id("a") permit(principal, action, resource) when { context.args.opts.labels.contains("x") && context.args.opts.force == false };`,
			withArgs(req("a", "everything:echo"), `{"opts": {"labels": ["x", "y"], "force": false}}`), allow("a")},
		{"args null member is absent", `@id("a") permit(principal, action, resource) when { !(context.args has cursor) };`,
			withArgs(req("a", "everything:echo"), `{"cursor": null}`), allow("a")},
		{"args decimal", `@id("a") permit(principal, action, resource) when { context.args.amount.lessThan(decimal("100.0")) };`,
			withArgs(req("a", "everything:echo"), `{"amount": 99.95}`), allow("a")},
		{"args decimal against a Long is an error", `@id("a") permit(principal, action, resource) when { context.args.amount < 100 };`,
			withArgs(req("a", "everything:echo"), `{"amount": 99.5}`), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"a"}, ""}},
		{"args integral float is Long", `@id("a") permit(principal, action, resource) when { context.args.n == 3 };`,
			withArgs(req("a", "everything:echo"), `{"n": 3.0}`), allow("a")},
		{"args fraction with too many places refused", `@id("a") permit(principal, action, resource);`,
			withArgs(req("a", "everything:echo"), `{"amount": 1.23456}`),
			want{warden.EffectDeny, warden.ReasonInvalidRequest, nil, "argument .amount: 1.23456 has more than 4 digits"}},
		{"args huge number refused", `@id("a") permit(principal, action, resource);`,
			withArgs(req("a", "everything:echo"), `{"list": [1, 1e300]}`),
			want{warden.EffectDeny, warden.ReasonInvalidRequest, nil, "argument .list[1]: 1e+300 is out of range"}},
		{"args null in array refused", `@id("a") permit(principal, action, resource);`,
			withArgs(req("a", "everything:echo"), `{"list": [null]}`),
			want{warden.EffectDeny, warden.ReasonInvalidRequest, nil, "null inside an array"}},

		{"num: an integer is a decimal", limit, withArgs(req("a", "everything:echo"), `{"amount": 4}`), allow("l")},
		{"num: an integral float is a decimal", limit, withArgs(req("a", "everything:echo"), `{"amount": 4.0}`), allow("l")},
		{"num: a fraction is a decimal", limit, withArgs(req("a", "everything:echo"), `{"amount": 98.7}`), allow("l")},
		{"num: over the limit", limit, withArgs(req("a", "everything:echo"), `{"amount": 100}`), noMatch},
		{"num: nested records and sets", `@id("n") permit(principal, action, resource) when { context.num.body.amount.greaterThan(decimal("99.5")) && context.num.body.split.contains(decimal("0.5")) && !(context.num.body has to) && !(context.num has ids) };`,
			withArgs(req("a", "everything:echo"), `{"body": {"amount": 100, "split": [0.5, 1], "to": "x"}, "ids": [1, "two"]}`), allow("n")},
		{"num: a string amount fails a forbid closed", `@id("p") permit(principal, action, resource); @id("f") forbid(principal, action, resource) when { context.args has amount && context.num.amount.greaterThan(decimal("1000.0")) };`,
			withArgs(req("a", "everything:echo"), `{"amount": "5000"}`), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"f"}, ""}},
		{"num: an integer beyond decimal's range is left out", `@id("n") permit(principal, action, resource) when { context.args.n == 1000000000000000 && !(context.num has n) && context.num.m == decimal("922337203685477.0") };`,
			withArgs(req("a", "everything:echo"), `{"n": 1000000000000000, "m": 922337203685477}`), allow("n")},
		{"num: no numbers", `@id("n") permit(principal, action, resource) when { !(context.num has q) };`,
			withArgs(req("a", "everything:echo"), `{"q": "x"}`), allow("n")},

		{"risk", `@id("r") forbid(principal, action, resource) when { context.risk_level >= 4 }; @id("p") permit(principal, action, resource);`,
			req("a", "shell:exec"), want{warden.EffectDeny, warden.ReasonForbidden, []string{"r"}, ""}},
		{"risk string", `@id("p") permit(principal, action, resource) when { context.risk == "low" && context.tool == "everything" };`,
			req("a", "everything:echo"), allow("p")},
		{"labels as tags", `@id("t") permit(principal, action, resource) when { principal.hasTag("team") && principal.getTag("team") == "payments" };`,
			req("a", "everything:echo"), allow("t")},
		{"missing tag", `@id("t") permit(principal, action, resource) when { principal.hasTag("region") };`,
			req("a", "everything:echo"), noMatch},
		{"reading a missing tag is an error", `@id("t") permit(principal, action, resource) when { principal.getTag("region") == "eu" };`,
			req("a", "everything:echo"), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"t"}, ""}},
		{"owner and purpose", `@id("o") permit(principal, action, resource) when { principal.owner == "alice@example.com" && principal.purpose like "*triage*" };`,
			req("a", "everything:echo"), allow("o")},
		{"on behalf of", `@id("b") permit(principal, action, resource) when { context.on_behalf_of == "bob@example.com" };`,
			onBehalfOf(req("a", "everything:echo"), "bob@example.com"), allow("b")},
		{"acting as itself", `@id("b") permit(principal, action, resource) when { context.on_behalf_of == "" && context.session.id == "s-1" };`,
			req("a", "everything:echo"), allow("b")},
		{"body inspected by default", `@id("i") permit(principal, action, resource) when { context.body_inspected };`,
			req("a", "everything:echo"), allow("i")},
		{"body uninspected", `@id("u") forbid(principal, action, resource) unless { context.body_inspected }; @id("p") permit(principal, action, resource);`,
			bodyUninspected(req("a", "github:user.get")), want{warden.EffectDeny, warden.ReasonForbidden, []string{"u"}, ""}},
		{"time", `@id("n") permit(principal, action, resource) when { context.now > 1700000000 && context.datetime < datetime("2027-01-01") && context.datetime.toTime() >= duration("9h") };`,
			req("a", "everything:echo"), allow("n")},

		{"approval", `@id("ap") @approval("required") permit(principal, action, resource);`,
			req("a", "everything:echo"), want{warden.EffectApprovalRequired, warden.ReasonApprovalRequired, []string{"ap"}, "approval"}},
		{"approval wins over a plain permit", `@id("ap") @approval("required") permit(principal, action, resource); @id("p") permit(principal, action, resource);`,
			req("a", "everything:echo"), want{warden.EffectApprovalRequired, warden.ReasonApprovalRequired, []string{"ap"}, ""}},
		{"forbid beats approval", `@id("ap") @approval("required") permit(principal, action, resource); @id("f") forbid(principal, action, resource);`,
			req("a", "everything:echo"), want{warden.EffectDeny, warden.ReasonForbidden, []string{"f"}, ""}},
		{"approval permit not matching", `@id("ap") @approval("required") permit(principal, action == Action::"everything:rm", resource); @id("p") permit(principal, action, resource);`,
			req("a", "everything:echo"), allow("p")},
		{"waived", `@id("w") @approval("waived") permit(principal, action, resource);`,
			req("a", "shell:exec"), want{warden.EffectAllow, warden.ReasonApprovalWaived, []string{"w"}, "approval waived by policy w"}},
		{"waiver names every permit", `@id("p") permit(principal, action, resource); @id("w") @approval("waived") permit(principal, action, resource);`,
			req("a", "shell:exec"), want{warden.EffectAllow, warden.ReasonApprovalWaived, []string{"p", "w"}, "allowed by policy p, w; approval waived by policy w"}},
		{"required beats waived", `@id("w") @approval("waived") permit(principal, action, resource); @id("ap") @approval("required") permit(principal, action, resource);`,
			req("a", "shell:exec"), want{warden.EffectApprovalRequired, warden.ReasonApprovalRequired, []string{"ap"}, ""}},
		{"forbid beats waived", `@id("w") @approval("waived") permit(principal, action, resource); @id("f") forbid(principal, action, resource);`,
			req("a", "shell:exec"), want{warden.EffectDeny, warden.ReasonForbidden, []string{"f"}, ""}},
		{"waiver not matching", `@id("w") @approval("waived") permit(principal, action == Action::"shell:other", resource); @id("p") permit(principal, action, resource);`,
			req("a", "shell:exec"), allow("p")},
		{"waiver alone does not permit", `@id("w") @approval("waived") permit(principal, action, resource) when { false };`,
			req("a", "shell:exec"), noMatch},

		{"error in permit fails closed", `@id("e") permit(principal, action, resource) when { context.args.path like "/tmp/*" };`,
			req("a", "everything:echo"), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"e"}, "policy e:"}},
		{"an erroring permit does not apply", `@id("e") permit(principal, action, resource) when { context.args.n > 1 }; @id("p") permit(principal, action, resource);`,
			withArgs(req("a", "everything:echo"), `{"n": "one"}`), allow("p")},
		{"error in forbid fails closed", `@id("e") forbid(principal, action, resource) when { context.args.size > 100 }; @id("p") permit(principal, action, resource);`,
			req("a", "everything:echo"), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"e"}, ""}},
		{"forbid reported over error", `@id("e") permit(principal, action, resource) when { context.args.n > 1 }; @id("f") forbid(principal, action, resource);`,
			req("a", "everything:echo"), want{warden.EffectDeny, warden.ReasonForbidden, []string{"f"}, ""}},
		{"overflow is an error", `@id("o") permit(principal, action, resource) when { context.args.n + 1 > 0 };`,
			withArgValue(req("a", "everything:echo"), "n", int64(math.MaxInt64)), want{warden.EffectDeny, warden.ReasonPolicyError, []string{"o"}, "overflow"}},
		{"flow: fresh session", `@id("f") permit(principal, action, resource) when { !context.session.untrusted_read && !context.session.private_read && !context.taint.any && context.taint.args.isEmpty() && context.session.untrusted_sources.isEmpty() && context.labels.effect == "" };`,
			req("a", "everything:echo"), allow("f")},
		{"flow: labels", `@id("f") permit(principal, action, resource) when { context.labels.output == "untrusted" && context.labels.data == "private" && context.labels.effect == "external" };`,
			withFlow(req("a", "everything:echo"), &warden.FlowFacts{Labels: flowLabels("untrusted", "private", "external")}), allow("f")},
		{"flow: session read untrusted", `@id("f") permit(principal, action, resource) when { context.session.untrusted_read && context.session.untrusted_sources.contains("mail:read") && context.session.private_read };`,
			withFlow(req("a", "everything:echo"), &warden.FlowFacts{UntrustedRead: true, UntrustedSources: []string{"mail", "mail:read"}, PrivateRead: true}), allow("f")},
		{"flow: tainted destination forbidden", `@id("p") permit(principal, action, resource); @id("t") forbid(principal, action, resource) when { context.taint.args.contains("to") };`,
			withFlow(withArgs(req("a", "everything:echo"), `{"to": "x@evil.example", "body": "hi"}`), &warden.FlowFacts{UntrustedRead: true, Tainted: []warden.TaintedArg{{Arg: "to", Kind: "email", SourceTool: "mail"}}}),
			want{warden.EffectDeny, warden.ReasonForbidden, []string{"t"}, ""}},
		{"flow: untainted destination allowed", `@id("p") permit(principal, action, resource); @id("t") forbid(principal, action, resource) when { context.taint.args.contains("to") };`,
			withFlow(withArgs(req("a", "everything:echo"), `{"to": "x@evil.example", "body": "hi"}`), &warden.FlowFacts{UntrustedRead: true, Tainted: []warden.TaintedArg{{Arg: "body", Kind: "phrase", SourceTool: "mail"}}}),
			allow("p")},
		{"flow: an evicted session taints every argument", `@id("p") permit(principal, action, resource); @id("t") forbid(principal, action, resource) when { context.taint.args.contains("to") && context.taint.any && context.session.untrusted_read };`,
			withFlow(withArgs(req("a", "everything:echo"), `{"to": "x@example.com"}`), &warden.FlowFacts{Evicted: true}),
			want{warden.EffectDeny, warden.ReasonForbidden, []string{"t"}, ""}},
		{"guarded condition", `@id("g") permit(principal, action, resource) when { context.args has path && context.args.path like "/tmp/*" };`,
			req("a", "everything:echo"), noMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCompile(t, map[string]string{"main.cedar": tt.policy})
			d := e.Decide(tt.req)
			if d.Effect != tt.want.effect || d.Reason != tt.want.reason || !slices.Equal(d.Policies, tt.want.policies) {
				t.Errorf("Decide = %s/%s %q; want %s/%s %q\nmessage: %s", d.Effect, d.Reason, d.Policies,
					tt.want.effect, tt.want.reason, tt.want.policies, d.Message)
			}
			if !strings.Contains(d.Message, tt.want.message) {
				t.Errorf("message %q does not contain %q", d.Message, tt.want.message)
			}
			if d.PolicyVersion != 7 {
				t.Errorf("PolicyVersion = %d, want 7", d.PolicyVersion)
			}
		})
	}
}

// TestDecideErrors: a permit that fails to evaluate does not apply, as in Cedar; a forbid or a
// permit that asks for approval that fails denies; every failure is in Decision.Errors.
func TestDecideErrors(t *testing.T) {
	const (
		failingPermit   = `@id("e") permit(principal, action, resource) when { context.args.n > 1 };`
		failingForbid   = `@id("f") forbid(principal, action, resource) when { context.args.n > 1 };`
		failingApproval = `@id("ap") @approval("required") permit(principal, action, resource) when { context.args.n > 1 };`
		failingWaiver   = `@id("w") @approval("waived") permit(principal, action, resource) when { context.args.n > 1 };`
		plain           = `@id("p") permit(principal, action, resource);`
		forbid          = `@id("x") forbid(principal, action, resource);`
	)
	tests := []struct {
		name           string
		policy         string
		action         string
		effect, reason string
		policies       []string
		errors         []string
		message        string
	}{
		{"a failing permit beside one that allows", failingPermit + plain, "everything:echo", warden.EffectAllow, warden.ReasonPolicyAllow, []string{"p"}, []string{"e"}, "allowed by policy p"},
		{"a failing permit alone", failingPermit, "everything:echo", warden.EffectDeny, warden.ReasonPolicyError, []string{"e"}, []string{"e"}, "no policy permits this request, and a permit could not be evaluated for it: policy e: "},
		{"a failing forbid denies", failingForbid + plain, "everything:echo", warden.EffectDeny, warden.ReasonPolicyError, []string{"f"}, []string{"f"}, "denied because a policy could not be evaluated for this request: policy f: "},
		{"a failing forbid beside a failing permit names the forbid", failingPermit + failingForbid, "everything:echo", warden.EffectDeny, warden.ReasonPolicyError, []string{"f"}, []string{"e", "f"}, "denied because a policy could not be evaluated for this request: policy f: "},
		{"a failing approval denies", failingApproval + plain, "everything:echo", warden.EffectDeny, warden.ReasonPolicyError, []string{"ap"}, []string{"ap"}, "policy ap: "},
		{"a failing waiver waives nothing", failingWaiver + plain, "shell:exec", warden.EffectAllow, warden.ReasonPolicyAllow, []string{"p"}, []string{"w"}, ""},
		{"a matching forbid is reported over errors", failingPermit + failingForbid + forbid + plain, "everything:echo", warden.EffectDeny, warden.ReasonForbidden, []string{"x"}, []string{"e", "f"}, ""},
		{"no errors, none recorded", plain, "everything:echo", warden.EffectAllow, warden.ReasonPolicyAllow, []string{"p"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustCompile(t, map[string]string{"main.cedar": tt.policy})
			r := req("a", tt.action)
			r.Arguments = map[string]any{"n": "one"}
			d := e.Decide(r)
			var errs []string
			for _, pe := range d.Errors {
				if pe.Message == "" {
					t.Errorf("error of %s has no message", pe.Policy)
				}
				errs = append(errs, pe.Policy)
			}
			if d.Effect != tt.effect || d.Reason != tt.reason || !slices.Equal(d.Policies, tt.policies) || !slices.Equal(errs, tt.errors) {
				t.Errorf("Decide = %s/%s %q errors %q; want %s/%s %q errors %q\nmessage: %s", d.Effect, d.Reason, d.Policies, errs,
					tt.effect, tt.reason, tt.policies, tt.errors, d.Message)
			}
			if !strings.Contains(d.Message, tt.message) {
				t.Errorf("message %q does not contain %q", d.Message, tt.message)
			}
			if x := e.Explain(r); !slices.Equal(x.Decision.Errors, d.Errors) {
				t.Errorf("Explain's errors %v, Decide's %v", x.Decision.Errors, d.Errors)
			}
		})
	}
}

func TestDecideInvalidRequest(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `permit(principal, action, resource);`})
	noName := req("a", "everything:echo")
	noName.Agent.Name = ""
	badRisk := req("a", "everything:echo")
	badRisk.Tool = &warden.Tool{Name: "everything", Kind: warden.ToolMCP, Risk: "extreme"}
	badTool := req("a", "everything:echo")
	badTool.Tool = &warden.Tool{Name: "not:a-name", Kind: warden.ToolMCP}
	badArg := req("a", "everything:echo")
	badArg.Arguments = map[string]any{"ch": make(chan int)}

	for name, r := range map[string]*warden.Request{
		"nil request":        nil,
		"nil agent":          {Tool: testTool("github"), Action: "issues.list"},
		"nil tool":           {Agent: testAgent("a"), Action: "issues.list"},
		"no action":          {Agent: testAgent("a"), Tool: testTool("github")},
		"agent without name": noName,
		"unknown risk":       badRisk,
		"invalid tool name":  badTool,
		"non-JSON argument":  badArg,
	} {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(r)
			if d.Effect != warden.EffectDeny || d.Reason != warden.ReasonInvalidRequest || d.Message == "" {
				t.Errorf("Decide = %+v; want deny/%s with a message", d, warden.ReasonInvalidRequest)
			}
		})
	}
	var nilEngine *Engine
	if d := nilEngine.Decide(req("a", "everything:echo")); d.Effect != warden.EffectDeny {
		t.Errorf("nil engine: Decide = %+v; want deny", d)
	}
}

// A panic in the evaluator denies; it does not escape to the gateway.
func TestDecideRecoversFromPanic(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `permit(principal, action, resource);`})
	e.policies[0].cedar = nil // what no Compile produces: evaluating it panics
	if d := e.Decide(req("a", "everything:echo")); d.Effect != warden.EffectDeny || d.Reason != warden.ReasonPolicyError || d.Message != msgEvaluatorFailed {
		t.Errorf("Decide = %+v; want deny/%s", d, warden.ReasonPolicyError)
	}
	if x := e.Explain(req("a", "everything:echo")); x.Decision.Effect != warden.EffectDeny {
		t.Errorf("Explain = %+v; want deny", x.Decision)
	}
}

// A tool registered after the policy set was compiled is judged by the wildcard policies.
func TestDecideUnregisteredTool(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `@id("w") permit(principal, action, resource) when { context.tool == "jira" };`})
	r := req("a", "everything:echo")
	r.Tool = &warden.Tool{Name: "jira", Kind: warden.ToolMCP, Risk: warden.RiskHigh}
	if d := e.Decide(r); d.Effect != warden.EffectAllow {
		t.Errorf("Decide = %+v; want allow by w", d)
	}
}

func TestDecideZeroTimeUsesClock(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `@id("n") permit(principal, action, resource) when { context.now > 1700000000 };`})
	r := req("a", "everything:echo")
	r.Time = testNow.AddDate(-100, 0, 0)
	if d := e.Decide(r); d.Effect != warden.EffectDeny {
		t.Fatalf("a request dated 1926 was allowed: %+v", d)
	}
	r.Time = time.Time{}
	if d := e.Decide(r); d.Effect != warden.EffectAllow {
		t.Fatalf("a request without a time was not judged at the current time: %+v", d)
	}
}

func TestExplain(t *testing.T) {
	e := mustCompile(t, map[string]string{
		"a.cedar": `@id("g") permit(principal == Agent::"triage-bot", action in Action::"github", resource);
			@id("f") forbid(principal, action == Action::"github:repo.delete", resource);
			@id("e") permit(principal, action, resource) when { context.args.x == 1 };`,
		"b.cedar": `@id("other") permit(principal == Agent::"other-bot", action, resource);
			@id("mcp") permit(principal, action in Action::"everything", resource);`,
	})
	r := req("triage-bot", "github:repo.delete")
	r.Resource = "repo:acme/web"
	x := e.Explain(r)
	if x.Decision.Effect != warden.EffectDeny || x.Decision.Reason != warden.ReasonForbidden {
		t.Errorf("decision = %+v; want forbidden", x.Decision)
	}
	if x.Principal != `Agent::"triage-bot"` || x.Action != `Action::"github:repo.delete"` || x.Resource != `Resource::"repo:acme/web"` {
		t.Errorf("entities = %s %s %s", x.Principal, x.Action, x.Resource)
	}
	got := map[string]PolicyResult{}
	for _, c := range x.Considered {
		got[c.ID] = c
	}
	if len(got) != 3 || x.Skipped != 2 {
		t.Fatalf("considered %v, skipped %d; want g, f, e considered and 2 skipped", slices.Collect(mapKeys(got)), x.Skipped)
	}
	if !got["g"].Matched || !got["f"].Matched || got["e"].Matched || got["e"].Error == "" {
		t.Errorf("results = %+v", x.Considered)
	}
	if got["f"].Effect != "forbid" || got["f"].File != "a.cedar" || got["f"].Line != 2 {
		t.Errorf("policy f = %+v", got["f"].Policy)
	}
	if d := e.Decide(r); d.Reason != x.Decision.Reason || !slices.Equal(d.Policies, x.Decision.Policies) {
		t.Errorf("Explain decided %+v, Decide %+v", x.Decision, d)
	}

	if x := e.Explain(nil); x.Decision.Reason != warden.ReasonInvalidRequest || x.Considered != nil {
		t.Errorf("Explain(nil) = %+v", x)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestPoliciesAndVersion(t *testing.T) {
	e := mustCompile(t, map[string]string{
		"b.cedar": `permit(principal, action, resource);`,
		"a.cedar": "// grants\n@id(\"ap\") @approval(\"required\")\npermit(principal, action, resource);\nforbid(principal, action, resource) when { context.risk_level > 3 };",
	})
	if e.Version() != 7 {
		t.Errorf("Version = %d", e.Version())
	}
	var got []string
	for _, p := range e.Policies() {
		got = append(got, p.ID+" "+p.Effect+" "+p.File)
		if p.Source == "" || p.Line == 0 {
			t.Errorf("policy %s has no source or line: %+v", p.ID, p)
		}
	}
	want := []string{"ap permit a.cedar", "a.cedar#1 forbid a.cedar", "b.cedar#0 permit b.cedar"}
	if !slices.Equal(got, want) {
		t.Errorf("Policies = %q; want %q", got, want)
	}
	if p := e.Policies()[0]; !p.Approval || p.ApprovalWaived || p.Line != 2 {
		t.Errorf("policy ap = %+v; want approval on line 2", p)
	}
	w := mustCompile(t, map[string]string{"w.cedar": `@approval("waived") permit(principal, action, resource);`})
	if p := w.Policies()[0]; p.Approval || !p.ApprovalWaived {
		t.Errorf("waived policy = %+v; want ApprovalWaived only", p)
	}
}

// Decide is called from every request goroutine at once.
func TestDecideConcurrent(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `
		@id("g") permit(principal == Agent::"triage-bot", action in Action::"github", resource) when { principal.getTag("team") == "payments" };
		@id("f") forbid(principal, action, resource) when { context.args has danger };`})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				r := req("triage-bot", "github:issues.list")
				if (i+j)%2 == 0 {
					r.Arguments = map[string]any{"danger": true}
				}
				d := e.Decide(r)
				if want := []string{"f", "g"}[(i+j)%2]; !slices.Equal(d.Policies, []string{want}) {
					t.Errorf("Decide = %+v; want policy %s", d, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestNumOnlyWhenRead: context.num costs a decision nothing unless some policy reads it.
func TestNumOnlyWhenRead(t *testing.T) {
	r := req("a", "everything:echo")
	r.Arguments = map[string]any{"amount": 98.7, "count": 3.0, "body": map[string]any{"total": 5.0}}
	allocs := func(policy string) float64 {
		e := mustCompile(t, map[string]string{"main.cedar": policy})
		if d := e.Decide(r); d.Effect != warden.EffectAllow {
			t.Fatalf("%s: %+v", policy, d)
		}
		return testing.AllocsPerRun(100, func() { e.Decide(r) })
	}
	without := allocs(`@id("p") permit(principal, action, resource) when { context.args.count < 10 };`)
	with := allocs(`@id("p") permit(principal, action, resource) when { context.num.count.lessThan(decimal("10.0")) };`)
	if without >= with {
		t.Errorf("a decision takes %v allocations when no policy reads context.num, %v when one does", without, with)
	}
}

// TestSets: a named set is the entity Set::"<name>" whose values a policy reads; explain names
// the sets the considered policies read.
func TestSets(t *testing.T) {
	e := mustCompile(t, map[string]string{
		"main.cedar": `@id("payees") permit(principal, action, resource) when {
			context.args has to && Set::"payees".values.contains(context.args.to) ||
			context.args has cc && Set::"payees".values.containsAll(context.args.cc) };`,
		SetPrefix + "payees": `["linda@acme.example", "ap@supplier.example"]`,
		SetPrefix + "unused": `[]`,
	})
	for _, tc := range []struct {
		args   map[string]any
		effect string
	}{
		{map[string]any{"to": "linda@acme.example"}, warden.EffectAllow},
		{map[string]any{"to": "mallory@evil.example"}, warden.EffectDeny},
		{map[string]any{"cc": []any{"linda@acme.example", "ap@supplier.example"}}, warden.EffectAllow},
		{map[string]any{"cc": []any{"linda@acme.example", "mallory@evil.example"}}, warden.EffectDeny},
	} {
		r := req("a", "everything:echo")
		r.Arguments = tc.args
		if d := e.Decide(r); d.Effect != tc.effect {
			t.Errorf("%v: %+v", tc.args, d)
		}
	}
	r := req("a", "everything:echo")
	r.Arguments = map[string]any{"to": "linda@acme.example"}
	if x := e.Explain(r); len(x.Sets) != 1 || x.Sets["payees"] != 2 {
		t.Errorf("explain's sets: %v", x.Sets)
	}
}

func TestSetProblems(t *testing.T) {
	const reads = `@id("p") permit(principal, action, resource) when { Set::"payees".values.contains("x") };`
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"unknown set", map[string]string{"main.cedar": reads}, `unknown set Set::"payees": apply it first`},
		{"another attribute", map[string]string{"main.cedar": `@id("p") permit(principal, action, resource) when { Set::"payees".members.contains("x") };`, SetPrefix + "payees": `["x"]`},
			`a Set has one attribute, values: Set::"payees".values, not Set::"payees".members`},
		{"not JSON", map[string]string{SetPrefix + "payees": `a@x`}, "a set is a JSON array of strings"},
		{"not strings", map[string]string{SetPrefix + "payees": `["a", 1]`}, "a set is a JSON array of strings"},
		{"null", map[string]string{SetPrefix + "payees": `null`}, "a set is a JSON array of strings"},
		{"two arrays", map[string]string{SetPrefix + "payees": `["a"] ["b"]`}, "nothing after it"},
		{"empty value", map[string]string{SetPrefix + "payees": `["a", ""]`}, "value 2: each value is 1 to 1024 bytes"},
		{"long value", map[string]string{SetPrefix + "payees": `["` + strings.Repeat("a", MaxSetValueLen+1) + `"]`}, "value 1: each value is 1 to 1024 bytes"},
		{"control character", map[string]string{SetPrefix + "payees": `["a", "b\u001b[31m"]`}, "value 2: each value is 1 to 1024 bytes of UTF-8 text without control characters"},
		{"too large", map[string]string{SetPrefix + "payees": `["` + strings.Repeat("a", MaxSetBytes) + `"]`}, "a set is at most"},
		{"bad name", map[string]string{SetPrefix + "Payees": `["a"]`}, `invalid set name "Payees"`},
		{"in a scope", map[string]string{"main.cedar": `@id("p") permit(principal in Set::"payees", action, resource);`, SetPrefix + "payees": `["x"]`}, "principal is always Agent, never Set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := compileProblems(t, tc.files)
			if !strings.Contains(ps.Error(), tc.want) {
				t.Errorf("problems %v; want %q", ps, tc.want)
			}
		})
	}
	values, err := ParseSet(`["b", "a", "b"]`)
	if err != nil || !slices.Equal(values, []string{"a", "b"}) || SetText([]string{"b", "a", "b"}) != `["a","b"]` || SetText(nil) != `[]` {
		t.Errorf("ParseSet: %v %v; SetText %s", values, err, SetText([]string{"b", "a", "b"}))
	}
}
