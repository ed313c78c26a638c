package cedar

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden"
)

// FuzzCompile: no Cedar text makes Compile panic, and whatever compiles decides without
// panicking and with one of the known outcomes.
func FuzzCompile(f *testing.F) {
	for _, seed := range []string{
		`permit(principal, action, resource);`,
		`@id("g") @approval("required") permit(principal == Agent::"a", action in [Action::"github:issues.list", Action::"everything"], resource in Tool::"github") when { context.args.n > 1 };`,
		`forbid(principal is Agent in Agent::"a", action, resource is Resource in Tool::"github") unless { principal.getTag("team") == "x" };`,
		`permit(principal, action, resource) when { context.datetime > datetime("2026-01-01") && decimal("1.5").lessThan(context.args.d) };`,
		`permit(principal, action, resource) when { if context.args has x then context.args.x like "*a?" else ip("10.0.0.1").isLoopback() };`,
		`@id("x") permit(principal, action, resource); @id("x") permit(principal, action, resource);`,
		`permit(principal == User::"x", action == Action::"nope", resource);`,
		"permit(principal, action, resource) when { 1 + };",
		"@",
		"",
	} {
		f.Add(seed)
	}
	tools := testTools()
	reqs := []*warden.Request{req("a", "github:issues.list"), req("a", "everything:echo"), req("b", "shell:exec")}
	reqs[0].Resource = "repo:acme/web"
	reqs[1].Arguments = map[string]any{"n": 2.0, "x": "abc", "d": 2.5}
	f.Fuzz(func(t *testing.T, text string) {
		e, err := Compile(map[string]string{"fuzz.cedar": text}, tools, 1)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid || warden.ErrorMessage(err) == "" {
				t.Fatalf("Compile error %v is not an invalid error with a message", err)
			}
			return
		}
		for _, r := range reqs {
			checkDecision(t, e.Decide(r))
			e.Explain(r)
		}
	})
}

// FuzzDecideArgs: no JSON arguments make Decide panic; they are judged or refused.
func FuzzDecideArgs(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"n": 1, "s": "x", "b": true, "l": [1, 2, 2], "o": {"p": null}}`,
		`{"d": 0.1, "e": 1e3, "big": 123456789012345678901234567890, "neg": -0.0001}`,
		`{"x": [null]}`,
		`{"x": 1e-400, "y": 1E+400}`,
		`{"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"": {"\u0000": "\ud800"}}`,
		`{"o": {"p": 2.5, "q": [1, 1.5]}, "n": 922337203685478}`,
	} {
		f.Add([]byte(seed))
	}
	e := mustCompile(f, map[string]string{"main.cedar": `
		@id("p") permit(principal, action, resource) when { context.args has n && context.args.n > 0 };
		@id("d") permit(principal, action, resource) when { context.args has d && context.args.d.greaterThan(decimal("0.5")) };
		@id("f") forbid(principal, action, resource) when { context.args has l && context.args.l.contains(2) };
		@id("s") permit(principal, action, resource) when { context.args has s && context.args.s like "*x*" };
		@id("num") forbid(principal, action, resource) when { context.args has o && context.num.o has p && context.num.o.p.greaterThan(decimal("1.0")) };`})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, useNumber := range []bool{false, true} {
			dec := json.NewDecoder(bytes.NewReader(data))
			if useNumber {
				dec.UseNumber()
			}
			var args map[string]any
			if dec.Decode(&args) != nil {
				return
			}
			r := req("a", "everything:echo")
			r.Arguments = args
			checkDecision(t, e.Decide(r))
		}
	})
}

func checkDecision(t *testing.T, d warden.Decision) {
	t.Helper()
	switch d.Effect + "/" + d.Reason {
	case "allow/" + warden.ReasonPolicyAllow, "allow/" + warden.ReasonApprovalWaived, "approval_required/" + warden.ReasonApprovalRequired,
		"deny/" + warden.ReasonNoMatchingPolicy, "deny/" + warden.ReasonForbidden, "deny/" + warden.ReasonPolicyError, "deny/" + warden.ReasonInvalidRequest:
	default:
		t.Fatalf("unexpected decision %+v", d)
	}
	if d.Reason == warden.ReasonPolicyError && d.Message == msgEvaluatorFailed {
		t.Fatalf("the evaluator panicked: %+v", d)
	}
}
