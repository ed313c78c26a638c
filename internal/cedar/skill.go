package cedar

import (
	"fmt"
	"maps"
	"slices"

	cedar "github.com/cedar-policy/cedar-go"
	cedarast "github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// ActionSkillLoad is the Cedar action of loading a skill: Action::"skill.load" on resource
// Skill::"<name>".
const ActionSkillLoad = "skill.load"

const typeSkill = types.EntityType("Skill")

// SkillPolicies decides which agent may load which skill. Each grant is one permit with the id
// "skill:<agent>:<skill>":
//
//	@id("skill:triage-bot:pdf-tools")
//	permit (principal == Agent::"triage-bot", action == Action::"skill.load", resource == Skill::"pdf-tools");
//
// They are a policy set of their own, beside the tools' policies, since they name no tool: the
// tools' validator and index know nothing of skills, and a skill grant cannot widen a tool's.
type SkillPolicies struct {
	set  *cedar.PolicySet
	text string
}

// CompileSkillGrants compiles grants (agent → skill names) to permits.
func CompileSkillGrants(grants map[string][]string) (*SkillPolicies, error) {
	sp := &SkillPolicies{set: cedar.NewPolicySet()}
	for _, agent := range slices.Sorted(maps.Keys(grants)) {
		if err := warden.ValidateName("agent", agent); err != nil {
			return nil, err
		}
		for _, skill := range slices.Sorted(slices.Values(grants[agent])) {
			if skill == "" {
				return nil, warden.Errorf(warden.EInvalid, "a skill grant of %s names no skill", agent)
			}
			id := fmt.Sprintf("skill:%s:%s", agent, skill)
			p := cedarast.Annotation(annotationID, types.String(id)).Permit().
				PrincipalEq(types.NewEntityUID(typeAgent, types.String(agent))).
				ActionEq(types.NewEntityUID(typeAction, ActionSkillLoad)).
				ResourceEq(types.NewEntityUID(typeSkill, types.String(skill)))
			policy := cedar.NewPolicyFromAST(p)
			sp.set.Add(cedar.PolicyID(id), policy)
			sp.text += string(policy.MarshalCedar()) + "\n"
		}
	}
	return sp, nil
}

// Text is the permits as Cedar, for people.
func (sp *SkillPolicies) Text() string { return sp.text }

// DecideSkill decides whether agent may load skill: allow with ReasonPolicyAllow and the
// permit's id, or the default deny. Nil policies deny.
func (sp *SkillPolicies) DecideSkill(agent, skill string) warden.Decision {
	deny := warden.Decision{Effect: warden.EffectDeny, Reason: warden.ReasonNoMatchingPolicy,
		Message: fmt.Sprintf("no policy lets agent %s load skill %s", agent, skill)}
	if sp == nil {
		return deny
	}
	d, diag := cedar.Authorize(sp.set, types.EntityMap{}, cedar.Request{
		Principal: types.NewEntityUID(typeAgent, types.String(agent)),
		Action:    types.NewEntityUID(typeAction, ActionSkillLoad),
		Resource:  types.NewEntityUID(typeSkill, types.String(skill)),
		Context:   types.NewRecord(nil),
	})
	if d != cedar.Allow || len(diag.Errors) > 0 {
		return deny
	}
	var ids []string
	for _, r := range diag.Reasons {
		ids = append(ids, string(r.PolicyID))
	}
	return warden.Decision{Effect: warden.EffectAllow, Reason: warden.ReasonPolicyAllow, Message: "granted", Policies: ids}
}
