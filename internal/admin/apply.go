package admin

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/gateway"
)

// ManagedLabel marks the agents and tools that `warden apply` created: the ones it may change
// or remove when the file no longer declares them. Nothing else is ever removed by an apply.
const (
	ManagedLabel = "managed-by"
	ManagedValue = "warden-apply"
)

// grantsFile is the policy file that holds the grants of the applied document.
const grantsFile = ApplyPrefix + "grants.cedar"

// Document is warden.yaml: agents, tools, grants and budgets declared in one place.
type Document struct {
	Agents  []AgentSpec  `json:"agents,omitempty" yaml:"agents"`
	Tools   []ToolSpec   `json:"tools,omitempty" yaml:"tools"`
	Grants  []GrantDecl  `json:"grants,omitempty" yaml:"grants"`
	Budgets []BudgetDecl `json:"budgets,omitempty" yaml:"budgets"`
}

// GrantDecl lets an agent take actions of a tool; it compiles to a Cedar permit.
type GrantDecl struct {
	Agent   string   `json:"agent" yaml:"agent"`
	Tool    string   `json:"tool" yaml:"tool"`
	Actions []string `json:"actions,omitempty" yaml:"actions"` // empty: every action of the tool
	When    string   `json:"when,omitempty" yaml:"when"`       // an optional Cedar condition
	// Approval is true (or "required") to make every call the grant allows wait for a person, or
	// "waived" to lift the approval a high or critical tool's risk would otherwise ask for.
	Approval GrantApproval `json:"approval,omitempty" yaml:"approval"`
}

// BudgetDecl declares one budget; exactly one of Rate, Quota, Concurrency and Sum is set.
type BudgetDecl struct {
	Agent       string `json:"agent" yaml:"agent"`
	Tool        string `json:"tool,omitempty" yaml:"tool"`
	Action      string `json:"action,omitempty" yaml:"action"`
	Rate        string `json:"rate,omitempty" yaml:"rate"`   // "20/hour"
	Quota       string `json:"quota,omitempty" yaml:"quota"` // "1000/day"
	Concurrency int    `json:"concurrency,omitempty" yaml:"concurrency"`
	Sum         string `json:"sum,omitempty" yaml:"sum"`     // the argument, e.g. "amount"
	Limit       string `json:"limit,omitempty" yaml:"limit"` // with sum: "500/day"
}

func (d BudgetDecl) spec() (string, error) {
	var specs []string
	if d.Rate != "" {
		specs = append(specs, "rate "+d.Rate)
	}
	if d.Quota != "" {
		specs = append(specs, "quota "+d.Quota)
	}
	if d.Concurrency != 0 {
		specs = append(specs, fmt.Sprintf("concurrency %d", d.Concurrency))
	}
	if d.Sum != "" || d.Limit != "" {
		specs = append(specs, "sum "+d.Sum+" "+d.Limit)
	}
	if len(specs) != 1 {
		return "", warden.Errorf(warden.EInvalid, "budget of %s: give exactly one of rate, quota, concurrency, or sum with limit", d.Agent)
	}
	return specs[0], nil
}

// Change is one line of a plan.
type Change struct {
	Kind   string `json:"kind"` // agent, tool, grant, budget
	Name   string `json:"name"`
	Op     string `json:"op"` // create, update, remove, unchanged
	Detail string `json:"detail,omitempty"`
}

// Plan is what an apply does (or, for a dry run, would do).
type Plan struct {
	DryRun  bool     `json:"dry_run"`
	Changes []Change `json:"changes"`
	// Credentials are the client credentials of the agents an apply created, shown once.
	Credentials   map[string]AgentCredentials `json:"credentials,omitempty"`
	PolicyVersion int64                       `json:"policy_version,omitempty"`
}

// AgentCredentials are an agent's client credentials.
type AgentCredentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// desired is a validated document.
type desired struct {
	agents  map[string]AgentSpec
	tools   map[string]*warden.Tool
	grants  map[string]string // policy id → Cedar text
	budgets map[string][]*warden.Budget
	order   []string // grant ids in document order
}

var grantIDRE = regexp.MustCompile(`@id\("([^"]+)"\)`)

func (doc Document) validate() (*desired, error) {
	d := &desired{agents: map[string]AgentSpec{}, tools: map[string]*warden.Tool{}, grants: map[string]string{}, budgets: map[string][]*warden.Budget{}}
	for _, a := range doc.Agents {
		if _, err := a.validate(); err != nil {
			return nil, err
		}
		if _, dup := d.agents[a.Name]; dup {
			return nil, warden.Errorf(warden.EInvalid, "agent %s is declared twice", a.Name)
		}
		d.agents[a.Name] = a
	}
	for _, ts := range doc.Tools {
		t, err := ts.Tool()
		if err != nil {
			return nil, err
		}
		if _, dup := d.tools[t.Name]; dup {
			return nil, warden.Errorf(warden.EInvalid, "tool %s is declared twice", t.Name)
		}
		d.tools[t.Name] = t
	}
	index := map[string]int{}
	for _, g := range doc.Grants {
		key := g.Agent + "/" + g.Tool
		text, err := cedar.Grant(cedar.GrantSpec{Agent: g.Agent, Tool: g.Tool, Actions: g.Actions, When: g.When,
			Approval: g.Approval == ApprovalRequired, WaiveApproval: g.Approval == ApprovalWaived, Index: index[key]})
		if err != nil {
			return nil, err
		}
		index[key]++
		m := grantIDRE.FindStringSubmatch(text)
		if m == nil {
			return nil, warden.Errorf(warden.EInternal, "a compiled grant has no id")
		}
		d.grants[m[1]] = text
		d.order = append(d.order, m[1])
	}
	seen := map[string]bool{}
	for _, bd := range doc.Budgets {
		spec, err := bd.spec()
		if err != nil {
			return nil, err
		}
		b, err := budget.ParseSpec(bd.Agent, bd.Tool, bd.Action, spec)
		if err != nil {
			return nil, err
		}
		if seen[b.ID] {
			return nil, warden.Errorf(warden.EInvalid, "budget %s is declared twice", budget.Describe(b))
		}
		seen[b.ID] = true
		d.budgets[b.Agent] = append(d.budgets[b.Agent], b)
	}
	return d, nil
}

func (d *desired) grantsText() string {
	if len(d.order) == 0 {
		return ""
	}
	parts := make([]string, len(d.order))
	for i, id := range d.order {
		parts[i] = d.grants[id]
	}
	return "// Generated by `warden apply` from the grants of warden.yaml. Do not edit.\n\n" + strings.Join(parts, "\n\n") + "\n"
}

func managed(labels map[string]string) bool { return labels[ManagedLabel] == ManagedValue }

func withManaged(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[ManagedLabel] = ManagedValue
	return out
}

// Apply makes the store match the document: it creates what is declared and missing, updates
// what differs, and removes what an earlier apply created and the document no longer declares.
// Everything is validated first, including that the resulting policies compile against the
// resulting tools, so a bad document changes nothing. Applying the same document twice changes
// nothing the second time. With dryRun it only reports the plan.
func (s *Service) Apply(ctx context.Context, p *warden.Principal, doc Document, dryRun bool) (*Plan, error) {
	d, err := doc.validate()
	if err != nil {
		return nil, err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()

	plan := &Plan{DryRun: dryRun, Changes: []Change{}}
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := s.store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	files, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}

	// Tools and the policy set as they will be.
	finalTools := map[string]*warden.Tool{}
	for _, t := range tools {
		finalTools[t.Name] = t
	}
	for _, name := range slices.Sorted(maps.Keys(d.tools)) {
		want := d.tools[name]
		want.Labels = withManaged(want.Labels)
		cur, ok := finalTools[name]
		switch {
		case !ok:
			plan.add("tool", name, "create", string(want.Kind)+" "+toolTarget(want))
		case !sameTool(cur, want):
			plan.add("tool", name, "update", "")
		default:
			plan.add("tool", name, "unchanged", "")
		}
		finalTools[name] = want
	}
	for _, t := range tools {
		if _, declared := d.tools[t.Name]; !declared && managed(t.Labels) {
			plan.add("tool", t.Name, "remove", "")
			delete(finalTools, t.Name)
		}
	}
	for _, t := range finalTools {
		if err := s.checkSecrets(ctx, t); err != nil {
			return nil, err
		}
	}
	nextFiles := maps.Clone(files)
	delete(nextFiles, grantsFile)
	if text := d.grantsText(); text != "" {
		nextFiles[grantsFile] = text
	}
	plan.grantChanges(files[grantsFile], d)
	if _, err := cedar.Compile(nextFiles, gateway.WithBuiltins(slices.Collect(maps.Values(finalTools))), version+1); err != nil {
		return nil, err
	}
	if err := gateway.Check(slices.Collect(maps.Values(finalTools)), nextFiles); err != nil {
		return nil, err
	}

	// Agents.
	byName := map[string]*warden.Agent{}
	for _, a := range agents {
		byName[a.Name] = a
	}
	for _, name := range slices.Sorted(maps.Keys(d.agents)) {
		want := d.agents[name]
		cur, ok := byName[name]
		switch {
		case !ok:
			plan.add("agent", name, "create", "owner "+want.Owner)
		case cur.Owner != want.Owner || cur.Purpose != strings.TrimSpace(want.Purpose) || !maps.Equal(cur.Labels, withManaged(want.Labels)):
			plan.add("agent", name, "update", "")
		default:
			plan.add("agent", name, "unchanged", "")
		}
	}
	for _, a := range agents {
		if _, declared := d.agents[a.Name]; !declared && managed(a.Labels) {
			plan.add("agent", a.Name, "remove", "")
		}
	}

	// Budgets, for every agent the document declares and every managed agent it drops.
	budgetAgents := map[string]bool{}
	for name := range d.agents {
		budgetAgents[name] = true
	}
	for name := range d.budgets {
		budgetAgents[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(budgetAgents)) {
		plan.budgetChanges(s.budgets.Show(name, s.now()), d.budgets[name])
	}

	if dryRun || !plan.changes() {
		return plan, nil
	}
	if err := s.carryOut(ctx, p, plan, d, budgetAgents, nextFiles, version, files[grantsFile] != nextFiles[grantsFile]); err != nil {
		return plan, err
	}
	return plan, s.event(ctx, p, warden.EventApply, "warden.yaml", plan.summary())
}

func (plan *Plan) add(kind, name, op, detail string) {
	plan.Changes = append(plan.Changes, Change{Kind: kind, Name: name, Op: op, Detail: detail})
}

func (plan *Plan) changes() bool {
	for _, c := range plan.Changes {
		if c.Op != "unchanged" {
			return true
		}
	}
	return false
}

func (plan *Plan) summary() string {
	n := map[string]int{}
	for _, c := range plan.Changes {
		n[c.Op]++
	}
	return fmt.Sprintf("%d created, %d updated, %d removed, %d unchanged", n["create"], n["update"], n["remove"], n["unchanged"])
}

func (plan *Plan) grantChanges(old string, d *desired) {
	oldGrants := map[string]string{}
	for _, block := range strings.Split(old, "\n\n") {
		if m := grantIDRE.FindStringSubmatch(block); m != nil {
			oldGrants[m[1]] = strings.TrimSpace(block)
		}
	}
	for _, id := range d.order {
		prev, ok := oldGrants[id]
		switch {
		case !ok:
			plan.add("grant", id, "create", "")
		case prev != strings.TrimSpace(d.grants[id]):
			plan.add("grant", id, "update", "")
		default:
			plan.add("grant", id, "unchanged", "")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(oldGrants)) {
		if _, ok := d.grants[id]; !ok {
			plan.add("grant", id, "remove", "")
		}
	}
}

func (plan *Plan) budgetChanges(current []budget.Status, want []*warden.Budget) {
	have := map[string]*warden.Budget{}
	for _, st := range current {
		have[st.Budget.ID] = st.Budget
	}
	for _, b := range want {
		cur, ok := have[b.ID]
		switch {
		case !ok:
			plan.add("budget", budget.Describe(b), "create", "")
		case cur.Limit != b.Limit || cur.Window != b.Window:
			plan.add("budget", budget.Describe(b), "update", "was "+budget.Describe(cur))
		default:
			plan.add("budget", budget.Describe(b), "unchanged", "")
		}
		delete(have, b.ID)
	}
	for _, b := range have {
		plan.add("budget", budget.Describe(b), "remove", "")
	}
}

// carryOut makes the changes of a validated plan: tools, then agents, then policies, then
// budgets, then removals — so that nothing refers to what does not exist yet.
func (s *Service) carryOut(ctx context.Context, p *warden.Principal, plan *Plan, d *desired, budgetAgents map[string]bool, files map[string]string, version int64, grantsChanged bool) error {
	now := s.now().UTC()
	for _, c := range plan.Changes {
		if c.Kind != "tool" {
			continue
		}
		want := d.tools[c.Name]
		var err error
		switch c.Op {
		case "create":
			want.CreatedAt, want.UpdatedAt = now, now
			err = s.store.CreateTool(ctx, want)
		case "update":
			_, err = s.store.UpdateTool(ctx, c.Name, func(t *warden.Tool) error {
				created, disabled := t.CreatedAt, t.Disabled
				*t = *want
				t.CreatedAt, t.Disabled, t.UpdatedAt = created, disabled, now
				return nil
			})
		}
		if err != nil {
			return fmt.Errorf("tool %s: %w", c.Name, err)
		}
	}
	plan.Credentials = map[string]AgentCredentials{}
	for _, c := range plan.Changes {
		if c.Kind != "agent" {
			continue
		}
		want := d.agents[c.Name]
		want.Labels = withManaged(want.Labels)
		switch c.Op {
		case "create":
			a, secret, err := s.CreateAgent(ctx, p, want)
			if err != nil {
				return fmt.Errorf("agent %s: %w", c.Name, err)
			}
			plan.Credentials[a.Name] = AgentCredentials{ClientID: a.ID, ClientSecret: secret}
		case "update":
			if _, err := s.update(ctx, p, c.Name, warden.EventAgentUpdate, "warden apply", func(a *warden.Agent) error {
				a.Owner, a.Purpose, a.Labels = want.Owner, strings.TrimSpace(want.Purpose), want.Labels
				return nil
			}); err != nil {
				return fmt.Errorf("agent %s: %w", c.Name, err)
			}
		}
	}
	if grantsChanged {
		ps, err := s.storePolicies(ctx, p, files, version, warden.EventPolicyApply, "warden apply")
		if err != nil {
			return err
		}
		plan.PolicyVersion = ps.Version
	}
	if err := s.registry.Load(ctx); err != nil {
		s.log.Error("reloading the gateway after apply", "err", err)
	}
	// Replace is idempotent: an agent whose budgets are as declared keeps them, counters included.
	for name := range budgetAgents {
		if err := s.budgets.Replace(ctx, name, d.budgets[name]); err != nil {
			return fmt.Errorf("budgets of %s: %w", name, err)
		}
	}
	for _, c := range plan.Changes {
		if c.Op != "remove" {
			continue
		}
		var err error
		switch c.Kind {
		case "agent":
			if err = s.budgets.Replace(ctx, c.Name, nil); err == nil {
				err = s.DeleteAgent(ctx, p, c.Name)
			}
		case "tool":
			if err = s.store.DeleteTool(ctx, c.Name); err == nil {
				s.calls.CancelTool(c.Name)
			}
		}
		if err != nil {
			return fmt.Errorf("removing %s %s: %w", c.Kind, c.Name, err)
		}
	}
	if err := s.registry.Load(ctx); err != nil {
		s.log.Error("reloading the gateway after apply", "err", err)
	}
	return nil
}

// sameTool compares what a document declares about a tool.
func sameTool(a, b *warden.Tool) bool {
	norm := func(t *warden.Tool) warden.Tool {
		c := *t
		c.CreatedAt, c.UpdatedAt, c.Disabled = time.Time{}, time.Time{}, false
		if len(c.Command) == 0 {
			c.Command = nil
		}
		if len(c.Routes) == 0 {
			c.Routes = nil
		}
		if len(c.SensitiveArgs) == 0 {
			c.SensitiveArgs = nil
		}
		if len(c.SecretEnv) == 0 {
			c.SecretEnv = nil
		}
		if len(c.Approval) == 0 {
			c.Approval = nil
		}
		if len(c.Labels) == 0 {
			c.Labels = nil
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
