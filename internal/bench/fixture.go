package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// fixture is what a bench or drill run creates on the server — tools in front of its upstream,
// agents, a policy file granting them, budgets — and removes when it ends. Every name starts with
// the run's prefix ("bench-k3f9x2", "drill-k3f9x2"), every agent and tool carries the label
// bench=true or drill=true, so a run's own audit events are easy to tell from real ones.
//
// Policies are versioned and only ever added: admin.ApplyPolicies stores a new version. Setup
// applies the people-written files in force plus one file of the run's own; cleanup applies the
// files in force then without that file — which, when nobody changed policies in between, is
// exactly the set from before, under a new version. (`warden apply`'s generated grants are kept
// by the server either way.)
type fixture struct {
	c      *client
	kind   string // bench or drill
	prefix string

	HTTPTool, MCPTool string
	Agents            []*fixtureAgent
	PolicyFile        string

	tools   []string
	budgets []string
	applied bool
}

type fixtureAgent struct {
	Name, ClientID, Secret string
}

func newFixture(c *client, kind string) *fixture {
	prefix := kind + "-" + suffix(6)
	return &fixture{c: c, kind: kind, prefix: prefix, HTTPTool: prefix + "-http", MCPTool: prefix + "-mcp", PolicyFile: "warden-" + prefix + ".cedar"}
}

func (f *fixture) labels() map[string]string { return map[string]string{f.kind: "true"} }

// setup registers the tools in front of u, applies a policy file granting agents (and, for the
// policies scenario, others-1 more policies for agents that cannot exist), creates the agents and,
// with budgets, budgets that are never reached.
func (f *fixture) setup(ctx context.Context, u *upstream, agents []string, policies int, budgets bool) error {
	for _, spec := range []apitype.ToolSpec{
		{Name: f.HTTPTool, HTTP: u.URL + "/api", Risk: "low", Labels: f.labels(),
			// pay is the decision API's action (POST /v1/authorize with arguments {"n": 1}); the
			// sum budget counts its argument.
			Routes: []string{"GET /echo -> echo", "POST /pay -> pay", "GET /block -> block"}},
		{Name: f.MCPTool, MCP: u.URL + "/mcp", Risk: "low", Labels: f.labels()},
	} {
		if _, err := f.c.AddTool(ctx, spec); err != nil {
			return err
		}
		f.tools = append(f.tools, spec.Name)
	}
	if err := f.applyPolicies(ctx, agents, policies); err != nil {
		return err
	}
	for _, name := range agents {
		a, err := f.c.CreateAgent(ctx, apitype.AgentSpec{
			Name: name, Owner: "warden-" + f.kind + "@example.invalid", TTL: "1d", Labels: f.labels(),
			Purpose: fmt.Sprintf("warden %s %s: temporary agent, removed when the run ends", f.kind, f.prefix),
		})
		if err != nil {
			return err
		}
		f.Agents = append(f.Agents, &fixtureAgent{Name: name, ClientID: a.ClientID, Secret: a.ClientSecret})
	}
	if budgets {
		for _, name := range agents {
			for _, b := range []apitype.BudgetSpec{
				{Agent: name, Spec: "quota 1000000000000/day"},
				{Agent: name, Spec: "concurrency 100000"},
				{Agent: name, Tool: f.HTTPTool, Spec: "rate 1000000000/second"},
				{Agent: name, Tool: f.MCPTool, Spec: "rate 1000000000/second"},
				{Agent: name, Tool: f.HTTPTool, Action: "pay", Spec: "sum n 1000000000000/day"},
			} {
				bud, err := f.c.SetBudget(ctx, b)
				if err != nil {
					return err
				}
				f.budgets = append(f.budgets, bud.ID)
			}
		}
	}
	return nil
}

// policyText grants each agent both tools; the rest, up to policies, grant the run's HTTP tool to
// agents that do not exist (named after the run, so nobody else's), which makes the policy set
// as large as an installation with that many grants. Written compactly: 10,000 of them must fit
// in one admin request (1 MiB).
func (f *fixture) policyText(agents []string, policies int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// warden %s %s: temporary; removed when the run ends.\n", f.kind, f.prefix)
	for _, a := range agents {
		fmt.Fprintf(&b, "permit(principal == Agent::%q, action in [Action::%q, Action::%q], resource);\n", a, f.HTTPTool, f.MCPTool)
	}
	for i := 0; i < policies-len(agents); i++ {
		fmt.Fprintf(&b, "permit(principal==Agent::\"%s-%d\",action in Action::%q,resource);\n", f.prefix, i, f.HTTPTool)
	}
	return b.String()
}

// peopleFiles are the files a person applied: the generated grants of `warden apply` and the
// named sets are kept by the server and may not be sent.
func peopleFiles(ps *warden.PolicySet) map[string]string {
	out := map[string]string{}
	for name, text := range ps.Files {
		if !admin.Generated(name) {
			out[name] = text
		}
	}
	return out
}

func (f *fixture) applyPolicies(ctx context.Context, agents []string, policies int) error {
	cur, err := f.c.latestPolicies(ctx)
	if err != nil {
		return err
	}
	files := peopleFiles(cur)
	files[f.PolicyFile] = f.policyText(agents, max(policies, len(agents)))
	if _, err := f.c.ApplyPolicies(ctx, apitype.PolicyApply{Files: files, IfVersion: cur.Version,
		Comment: fmt.Sprintf("warden %s %s: grant its temporary agents", f.kind, f.prefix)}); err != nil {
		return err
	}
	f.applied = true
	return nil
}

// Cleanup says what a run removed and whether anything it created is left.
type Cleanup struct {
	Removed []string `json:"removed"`
	Left    []string `json:"left"`
	Errors  []string `json:"errors,omitempty"`
}

// OK says the run left nothing behind.
func (c *Cleanup) OK() bool { return len(c.Left) == 0 && len(c.Errors) == 0 }

// cleanup removes what setup created, each step whatever the others did, then checks that
// nothing with the run's prefix is left. It runs even when ctx was cancelled (Ctrl-C).
func (f *fixture) cleanup(ctx context.Context) *Cleanup {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	r := &Cleanup{Removed: []string{}, Left: []string{}}
	fail := func(err error) { r.Errors = append(r.Errors, warden.ErrorMessage(err)) }
	if f.applied {
		if v, err := f.removePolicyFile(ctx); err != nil {
			fail(err)
		} else {
			r.Removed = append(r.Removed, fmt.Sprintf("policy file %s (policies version %d has the files in force without it)", f.PolicyFile, v))
		}
	}
	for _, id := range f.budgets {
		if err := f.c.DeleteBudget(ctx, id); err != nil && warden.ErrorCode(err) != warden.ENotFound {
			fail(err)
		}
	}
	if len(f.budgets) > 0 {
		r.Removed = append(r.Removed, fmt.Sprintf("%d budgets", len(f.budgets)))
	}
	for _, a := range f.Agents {
		if err := f.c.DeleteAgent(ctx, a.Name); err != nil && warden.ErrorCode(err) != warden.ENotFound {
			fail(err)
		} else {
			r.Removed = append(r.Removed, "agent "+a.Name)
		}
	}
	for _, t := range f.tools {
		if err := f.c.RemoveTool(ctx, t); err != nil && warden.ErrorCode(err) != warden.ENotFound {
			fail(err)
		} else {
			r.Removed = append(r.Removed, "tool "+t)
		}
	}
	left, err := f.leftovers(ctx)
	if err != nil {
		fail(err)
	}
	r.Left = append(r.Left, left...)
	return r
}

// removePolicyFile applies the people-written files in force without the run's file; when
// someone applied in between, it retries on their version.
func (f *fixture) removePolicyFile(ctx context.Context) (int64, error) {
	var err error
	for range 5 {
		var cur *warden.PolicySet
		if cur, err = f.c.latestPolicies(ctx); err != nil {
			return 0, err
		}
		files := peopleFiles(cur)
		if _, ok := files[f.PolicyFile]; !ok {
			return cur.Version, nil
		}
		delete(files, f.PolicyFile)
		var ps *warden.PolicySet
		ps, err = f.c.ApplyPolicies(ctx, apitype.PolicyApply{Files: files, IfVersion: cur.Version,
			Comment: fmt.Sprintf("warden %s %s: restore the policies from before the run", f.kind, f.prefix)})
		if err == nil {
			return ps.Version, nil
		}
		if warden.ErrorCode(err) != warden.EConflict {
			return 0, err
		}
	}
	return 0, err
}

// leftovers lists what carries the run's prefix on the server: agents, tools, the policy file.
func (f *fixture) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	agents, err := f.c.Agents(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if strings.HasPrefix(a.Name, f.prefix) {
			left = append(left, "agent "+a.Name)
		}
	}
	tools, err := f.c.Tools(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tools {
		if strings.HasPrefix(t.Name, f.prefix) {
			left = append(left, "tool "+t.Name)
		}
	}
	ps, err := f.c.latestPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := ps.Files[f.PolicyFile]; ok {
		left = append(left, "policy file "+f.PolicyFile)
	}
	slices.Sort(left)
	return left, nil
}
