package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/skill"
)

// skillGrantKind is the Change.Kind of a skill grant in a plan; its Name is "AGENT SKILL".
const skillGrantKind = "skill grant"

// planSkillGrants plans the skill grants of `warden apply`: an agent whose `skills` the document
// gives gets exactly those (a Cedar skill.load permit each); an agent without `skills` keeps the
// grants it has (made with 'warden skill grant'); an agent the apply removes loses them all. The
// document's skills are taken out of the agent specs, which create agents without them.
func (s *Service) planSkillGrants(ctx context.Context, plan *Plan, d *desired, agents []*warden.Agent) error {
	var declared []string
	for name, a := range d.agents {
		if a.Skills == nil {
			continue
		}
		for _, sk := range a.Skills {
			if err := skill.ValidateName(sk); err != nil {
				return fmt.Errorf("agent %s: %w", name, err)
			}
		}
		declared = append(declared, name)
	}
	var removed []string
	for _, a := range agents {
		if _, ok := d.agents[a.Name]; !ok && managed(a.Labels) {
			removed = append(removed, a.Name)
		}
	}
	if len(declared) == 0 && len(removed) == 0 {
		return nil
	}
	store, ok := s.store.(warden.SkillStore)
	if !ok {
		return warden.Errorf(warden.EInternal, "this store keeps no skill grants")
	}
	current, err := store.SkillGrants(ctx)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(slices.Values(declared)) {
		a := d.agents[name]
		want := map[string]bool{}
		for _, sk := range a.Skills {
			want[sk] = true
		}
		for _, sk := range slices.Sorted(maps.Keys(want)) {
			op := "create"
			if slices.Contains(current[name], sk) {
				op = "unchanged"
			}
			planAdd(plan, skillGrantKind, name+" "+sk, op, "")
		}
		for _, sk := range current[name] {
			if !want[sk] {
				planAdd(plan, skillGrantKind, name+" "+sk, "remove", "")
			}
		}
		a.Skills = nil
		d.agents[name] = a
	}
	for _, name := range slices.Sorted(slices.Values(removed)) {
		for _, sk := range current[name] {
			planAdd(plan, skillGrantKind, name+" "+sk, "remove", "agent removed")
		}
	}
	return nil
}

// carryOutSkillGrants makes the planned skill grants, after the agents exist.
func (s *Service) carryOutSkillGrants(ctx context.Context, p *warden.Principal, plan *Plan) error {
	for _, c := range plan.Changes {
		if c.Kind != skillGrantKind || c.Op == "unchanged" {
			continue
		}
		store, ok := s.store.(warden.SkillStore)
		if !ok {
			return warden.Errorf(warden.EInternal, "this store keeps no skill grants")
		}
		agent, sk, _ := strings.Cut(c.Name, " ")
		event, err := warden.EventSkillGrant, error(nil)
		if c.Op == "create" {
			err = store.GrantSkill(ctx, agent, sk)
		} else {
			event, err = warden.EventSkillRevoke, store.RevokeSkill(ctx, agent, sk)
		}
		if err != nil {
			return fmt.Errorf("skill grant %s: %w", c.Name, err)
		}
		if err := s.event(ctx, p, event, "skill:"+sk, "agent "+agent+" (warden apply)"); err != nil {
			return err
		}
	}
	return nil
}
