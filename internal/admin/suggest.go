package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/respattern"
)

// defaultSuggestSince is the period a suggestion reads when none is given.
const defaultSuggestSince = "30d"

// Suggest reads the agent's tool calls that went ahead since a time (an RFC 3339 time or a
// duration ago; default 30 days) and proposes the smallest grants that cover them, with the
// permits in force for the agent that decided none of them. Nothing changes.
func (s *Service) Suggest(ctx context.Context, agent, since string) (*apitype.SuggestReport, error) {
	if err := warden.ValidateName("agent", agent); err != nil {
		return nil, err
	}
	if since == "" {
		since = defaultSuggestSince
	}
	from, err := parseSince(since, s.now())
	if err != nil {
		return nil, err
	}
	if s.events == nil {
		return nil, warden.Errorf(warden.EUnavailable, "this server cannot read its audit log")
	}
	rep := &apitype.SuggestReport{Agent: agent, Since: from, Grants: []apitype.SuggestedGrant{}, Unused: []apitype.UnusedGrant{}}
	used := map[string]bool{}
	var calls []suggestCall
	f := warden.AuditFilter{Agent: agent, Type: warden.EventToolCall, Effect: warden.EffectAllow, Since: from, Limit: replayPage}
	for !rep.Truncated {
		evs, err := s.events.AuditEvents(ctx, f)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			// The filter matches an actor's id or name; an agent is named by its name alone.
			if ev.Actor.Kind != warden.ActorAgent || ev.Actor.Name != agent || ev.Decision.Effect != warden.EffectAllow {
				continue
			}
			if len(calls) == apitype.MaxSuggestEvents {
				rep.Truncated = true
				break
			}
			for _, p := range ev.Decision.Policies {
				used[p] = true
			}
			calls = append(calls, suggestCall{tool: ev.Target.Tool, action: ev.Target.Action, resource: ev.Target.Resource,
				approved: ev.Decision.Reason == warden.ReasonApproved, waived: ev.Decision.Reason == warden.ReasonApprovalWaived})
		}
		f.AfterSeq = evs[len(evs)-1].Seq
	}
	rep.Calls = len(calls)
	rep.Grants, rep.Skipped = suggestGrants(agent, calls)
	if rep.YAML, rep.Cedar, err = renderSuggestion(agent, rep.Grants); err != nil {
		return nil, err
	}

	engine, err := s.engineFor(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, p := range engine.PermitsOf(agent) {
		if !used[p.ID] {
			rep.Unused = append(rep.Unused, apitype.UnusedGrant{Policy: p.ID, File: p.File, Line: p.Line})
		}
	}
	return rep, nil
}

// suggestCall is what one recorded call tells a suggestion.
type suggestCall struct {
	tool, action, resource string
	approved               bool // it went ahead after a person approved it
	waived                 bool // a permit waived the approval its tool's risk asks for
}

// suggestGrants proposes the smallest grants that cover the calls: for each tool, the actions
// used, grouped by the resources they were used on, those resources generalised by
// respattern.Cover; an action any of whose calls a person approved is in a grant that asks
// for approval, so that a suggestion never lets through without a person what needed one, and
// otherwise one any of whose calls went ahead under a waiver keeps the waiver (a high-risk
// tool's calls would else wait for a person where they did not). A
// tool none of whose calls named a resource gets grants without a condition. It returns the
// grants ordered by tool and first action, and how many calls no grant can name.
func suggestGrants(agent string, calls []suggestCall) ([]apitype.SuggestedGrant, int) {
	type actionUse struct {
		resources map[string]bool
		approved  bool
		waived    bool
		calls     int
	}
	byTool := map[string]map[string]*actionUse{}
	named := map[string]bool{} // tools some call of which named a resource
	skipped := 0
	for _, c := range calls {
		if warden.ValidateName("tool", c.tool) != nil || warden.ValidateAction(c.action) != nil || strings.Contains(c.action, ":") {
			skipped++
			continue
		}
		acts := byTool[c.tool]
		if acts == nil {
			acts = map[string]*actionUse{}
			byTool[c.tool] = acts
		}
		u := acts[c.action]
		if u == nil {
			u = &actionUse{resources: map[string]bool{}}
			acts[c.action] = u
		}
		u.resources[c.resource] = true
		u.approved = u.approved || c.approved
		u.waived = u.waived || c.waived
		u.calls++
		named[c.tool] = named[c.tool] || c.resource != ""
	}
	grants := []apitype.SuggestedGrant{}
	for _, tool := range slices.Sorted(maps.Keys(byTool)) {
		var order []string
		groups := map[string]*apitype.SuggestedGrant{}
		acts := byTool[tool]
		for _, action := range slices.Sorted(maps.Keys(acts)) {
			u := acts[action]
			var patterns []string
			if named[tool] {
				patterns = respattern.Cover(slices.Collect(maps.Keys(u.resources)))
			}
			var approval apitype.GrantApproval
			switch {
			case u.approved:
				approval = apitype.ApprovalRequired
			case u.waived:
				approval = apitype.ApprovalWaived
			}
			key := string(approval) + "\x00" + strings.Join(patterns, "\x00")
			g := groups[key]
			if g == nil {
				g = &apitype.SuggestedGrant{GrantDecl: apitype.GrantDecl{Agent: agent, Tool: tool, When: resourceCondition(patterns)}, Resources: patterns}
				g.Approval = approval
				groups[key] = g
				order = append(order, key)
			}
			g.Actions = append(g.Actions, action)
			g.Calls += u.calls
		}
		for _, k := range order {
			grants = append(grants, *groups[k])
		}
	}
	return grants, skipped
}

// resourceCondition is the Cedar condition that holds for exactly the given names and patterns
// (a name ending in "*" after respattern.Cover is a pattern), "" when there are none.
func resourceCondition(patterns []string) string {
	terms := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasSuffix(prefix, "/") {
			terms = append(terms, "context.resource like "+cedarString(prefix, true)+`*"`)
			continue
		}
		terms = append(terms, "context.resource == "+cedarString(p, false)+`"`)
	}
	return strings.Join(terms, " || ")
}

// cedarString writes s as the inside of a Cedar string literal, opening quote included and the
// closing one left to the caller (a pattern ends with its own "*" first). In a like pattern a
// literal "*" is escaped as well.
func cedarString(s string, pattern bool) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case pattern && r == '*':
			b.WriteString(`\*`)
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u{%x}`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// renderSuggestion writes the grants as a warden.yaml `grants:` fragment and as a Cedar policy
// file. The Cedar policies carry the ids "suggested:<agent>:<tool>:<n>", so that they can be
// applied beside the grants of warden.yaml without taking their ids.
func renderSuggestion(agent string, grants []apitype.SuggestedGrant) (string, string, error) {
	type yamlGrant struct {
		Agent    string   `yaml:"agent"`
		Tool     string   `yaml:"tool"`
		Actions  []string `yaml:"actions,flow"`
		When     string   `yaml:"when,omitempty"`
		Approval string   `yaml:"approval,omitempty"`
	}
	doc := struct {
		Grants []yamlGrant `yaml:"grants"`
	}{Grants: []yamlGrant{}}
	var cedarText strings.Builder
	fmt.Fprintf(&cedarText, "// Suggested by `warden policy suggest --agent %s`: the smallest grants that cover what it did.\n", agent)
	perTool := map[string]int{}
	for _, g := range grants {
		doc.Grants = append(doc.Grants, yamlGrant{Agent: g.Agent, Tool: g.Tool, Actions: g.Actions, When: g.When, Approval: string(g.Approval)})
		text, err := cedar.Grant(cedar.GrantSpec{Agent: g.Agent, Tool: g.Tool, Actions: g.Actions, When: g.When,
			Approval: g.Approval == apitype.ApprovalRequired, WaiveApproval: g.Approval == apitype.ApprovalWaived, Index: perTool[g.Tool]})
		if err != nil {
			return "", "", err
		}
		perTool[g.Tool]++
		cedarText.WriteString("\n" + strings.Replace(text, `@id("grant:`, `@id("suggested:`, 1))
	}
	y, err := yaml.Marshal(doc)
	if err != nil {
		return "", "", err
	}
	return string(y), cedarText.String(), nil
}
