package cedar

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/wardenhq/warden"
)

// policyGen writes random policies over the test vocabulary, with every scope form the index
// classifies and some it does not, and conditions that match, miss or fail to evaluate.
type policyGen struct {
	r *rand.Rand
}

var (
	genAgents    = []string{"a0", "a1", "a2", "a3", "a4"}
	genActions   = []string{"github:issues.list", "github:issues.comment", "github:repo.delete", "github:user.get", "everything:echo", "everything:add", "shell:exec"}
	genGroups    = []string{"github", "everything", "shell"}
	genResources = []string{"repo:acme/web", "repo:acme/api"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func (g policyGen) principal() string {
	a := pick(g.r, genAgents)
	return pick(g.r, []string{
		"principal", "principal", // wildcards are common enough to matter
		fmt.Sprintf("principal == Agent::%q", a),
		fmt.Sprintf("principal == Agent::%q", a),
		fmt.Sprintf("principal in Agent::%q", a),
		"principal is Agent",
		fmt.Sprintf("principal is Agent in Agent::%q", a),
	})
}

func (g policyGen) actionRef() string {
	if g.r.IntN(3) == 0 {
		return fmt.Sprintf("Action::%q", pick(g.r, genGroups))
	}
	return fmt.Sprintf("Action::%q", pick(g.r, genActions))
}

func (g policyGen) action() string {
	switch g.r.IntN(6) {
	case 0:
		return "action"
	case 1, 2:
		return "action == " + g.actionRef()
	case 3, 4:
		return "action in " + g.actionRef()
	}
	refs := make([]string, 1+g.r.IntN(3))
	for i := range refs {
		refs[i] = g.actionRef()
	}
	return "action in [" + strings.Join(refs, ", ") + "]"
}

func (g policyGen) resource() string {
	t, res := pick(g.r, genGroups), pick(g.r, genResources)
	return pick(g.r, []string{
		"resource", "resource", "resource",
		fmt.Sprintf("resource == Tool::%q", t),
		fmt.Sprintf("resource in Tool::%q", t),
		fmt.Sprintf("resource == Resource::%q", res),
		fmt.Sprintf("resource in Resource::%q", res),
		"resource is Resource",
		fmt.Sprintf("resource is Tool in Tool::%q", t),
	})
}

func (g policyGen) condition() string {
	return pick(g.r, []string{
		"",
		"",
		fmt.Sprintf(" when { context.args has n && context.args.n > %d }", g.r.IntN(10)),
		fmt.Sprintf(" unless { context.args has n && context.args.n < %d }", g.r.IntN(10)),
		` when { principal.getTag("team") == "payments" }`,
		` when { principal.hasTag("oncall") }`,
		" when { context.risk_level >= 3 }",
		` when { context.args.s like "a*" }`, // an error when s is absent
		fmt.Sprintf(" when { principal == Agent::%q }", pick(g.r, genAgents)),
		fmt.Sprintf(" when { action in Action::%q }", pick(g.r, genGroups)),
		fmt.Sprintf(" when { resource in Tool::%q }", pick(g.r, genGroups)),
	})
}

func (g policyGen) policy() string {
	var b strings.Builder
	effect := "permit"
	switch n := g.r.IntN(10); {
	case n == 0:
		effect = "forbid"
	case n == 1:
		b.WriteString(`@approval("required") `)
	}
	fmt.Fprintf(&b, "%s(%s, %s, %s)%s;\n", effect, g.principal(), g.action(), g.resource(), g.condition())
	return b.String()
}

func (g policyGen) request() *warden.Request {
	tool, action, _ := strings.Cut(pick(g.r, genActions), ":")
	r := &warden.Request{
		Agent:  testAgent(pick(g.r, append(genAgents, "nobody"))),
		Tool:   testTool(tool),
		Action: action,
		Time:   testNow,
	}
	if g.r.IntN(2) == 0 {
		r.Agent.Labels = map[string]string{"oncall": "yes"}
	}
	if g.r.IntN(2) == 0 {
		r.Resource = pick(g.r, genResources)
	}
	r.Arguments = map[string]any{}
	if g.r.IntN(4) != 0 {
		r.Arguments["n"] = g.r.IntN(10)
	}
	if g.r.IntN(2) == 0 {
		r.Arguments["s"] = pick(g.r, []string{"abc", "xyz"})
	}
	return r
}

// TestIndexMatchesFullEvaluation is the index's contract: deciding through it gives exactly the
// decision that evaluating every policy gives, for random policy sets and requests. It also
// checks both against plain cedar.Authorize over the whole set, where Cedar's semantics and
// warden's agree (no evaluation errors).
func TestIndexMatchesFullEvaluation(t *testing.T) {
	rounds, policies, requests := 80, 40, 60
	if testing.Short() {
		rounds = 10
	}
	seen := map[string]int{}
	for round := range rounds {
		g := policyGen{rand.New(rand.NewPCG(uint64(round), 42))}
		files := map[string]string{}
		for i := range policies {
			files[fmt.Sprintf("f%d.cedar", i%4)] += g.policy()
		}
		e, err := Compile(files, testTools(), 1)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		all := make([]int32, len(e.policies))
		for i := range all {
			all[i] = int32(i)
		}
		full := func(cedar.Request, string) []int32 { return all }
		ps := cedar.NewPolicySet()
		for _, p := range e.policies {
			ps.Add(cedar.PolicyID(p.ID), p.cedar)
		}

		for range requests {
			r := g.request()
			indexed := e.evaluate(r, e.candidatesFor)
			want := e.evaluate(r, full)
			if !reflect.DeepEqual(indexed.decision, want.decision) {
				t.Fatalf("round %d: indexed %+v\nfull    %+v\nrequest %s on %s:%s resource %q args %v\npolicies:\n%s",
					round, indexed.decision, want.decision, r.Agent.Name, r.Tool.Name, r.Action, r.Resource, r.Arguments, joinFiles(files))
			}
			seen[want.decision.Reason]++

			cedarReq, ents, err := e.translate(r, true)
			if err != nil {
				t.Fatal(err)
			}
			d, diag := cedar.Authorize(ps, ents, cedarReq)
			if len(diag.Errors) > 0 {
				continue
			}
			allowed := want.decision.Effect != warden.EffectDeny
			if allowed != (d == cedar.Allow) {
				t.Fatalf("round %d: warden %+v, cedar %v\n%s", round, want.decision, d, joinFiles(files))
			}
			var reasons []string
			for _, reason := range diag.Reasons {
				reasons = append(reasons, string(reason.PolicyID))
			}
			if want.decision.Reason != warden.ReasonApprovalRequired && want.decision.Reason != warden.ReasonNoMatchingPolicy &&
				!sameSet(reasons, want.decision.Policies) {
				t.Fatalf("round %d: warden policies %q, cedar reasons %q", round, want.decision.Policies, reasons)
			}
		}
	}
	// A differential test that only ever saw one outcome would prove little.
	for _, reason := range []string{warden.ReasonPolicyAllow, warden.ReasonApprovalRequired, warden.ReasonNoMatchingPolicy, warden.ReasonForbidden, warden.ReasonPolicyError} {
		if seen[reason] == 0 {
			t.Errorf("no request was decided %s; outcomes: %v", reason, seen)
		}
	}
	t.Logf("outcomes: %v", seen)
}

func joinFiles(files map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(mapKeys(files)) {
		fmt.Fprintf(&b, "-- %s\n%s", name, files[name])
	}
	return b.String()
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestIndexBuckets(t *testing.T) {
	e := mustCompile(t, map[string]string{"main.cedar": `
		@id("eq") permit(principal == Agent::"a", action == Action::"github:issues.list", resource);
		@id("in") permit(principal in Agent::"a", action in Action::"github", resource);
		@id("set") permit(principal is Agent in Agent::"a", action in [Action::"github:issues.list", Action::"github", Action::"everything:echo"], resource);
		@id("any-agent") forbid(principal, action in Action::"github:issues.list", resource);
		@id("any") forbid(principal is Agent, action, resource) when { context.risk_level > 3 };
		@id("other") permit(principal == Agent::"b", action, resource);`})
	ids := func(agent, tool, action string) []string {
		var out []string
		for _, i := range e.index.candidates(agent, tool, tool+":"+action) {
			out = append(out, e.policies[i].ID)
		}
		return out
	}
	for _, tt := range []struct {
		agent, tool, action string
		want                []string
	}{
		{"a", "github", "issues.list", []string{"eq", "in", "set", "any-agent", "any"}},
		{"a", "github", "repo.delete", []string{"in", "set", "any"}},
		{"a", "everything", "echo", []string{"set", "any"}},
		{"a", "everything", "add", []string{"any"}},
		{"b", "github", "issues.list", []string{"any-agent", "any", "other"}},
		{"c", "shell", "exec", []string{"any"}},
	} {
		if got := ids(tt.agent, tt.tool, tt.action); !slices.Equal(got, tt.want) {
			t.Errorf("candidates(%s, %s:%s) = %q; want %q", tt.agent, tt.tool, tt.action, got, tt.want)
		}
	}
}

func TestMergeSorted(t *testing.T) {
	got := mergeSorted([][]int32{{1, 4, 9}, {2, 4}, {0, 9, 12}, {4}})
	if want := []int32{0, 1, 2, 4, 9, 12}; !slices.Equal(got, want) {
		t.Errorf("mergeSorted = %v; want %v", got, want)
	}
}
