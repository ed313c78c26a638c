package cedar

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

func TestSkillPolicies(t *testing.T) {
	sp, err := CompileSkillGrants(map[string][]string{
		"bot":   {"pdf-tools", "notes"},
		"other": {`x"); permit(principal, action, resource`},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		agent, skill string
		allow        bool
	}{
		{"bot", "pdf-tools", true},
		{"bot", "notes", true},
		{"bot", "weather", false},
		{"other", "pdf-tools", false}, // a name that looks like Cedar is a name, not a policy
		{"other", `x"); permit(principal, action, resource`, true},
		{"stranger", "pdf-tools", false},
	}
	for _, c := range cases {
		d := sp.DecideSkill(c.agent, c.skill)
		if got := d.Effect == warden.EffectAllow; got != c.allow {
			t.Errorf("DecideSkill(%s, %s) = %+v; want allow %v", c.agent, c.skill, d, c.allow)
		}
		if c.allow && (len(d.Policies) != 1 || d.Policies[0] != "skill:"+c.agent+":"+c.skill) {
			t.Errorf("DecideSkill(%s, %s) names %v", c.agent, c.skill, d.Policies)
		}
		if !c.allow && d.Reason != warden.ReasonNoMatchingPolicy {
			t.Errorf("DecideSkill(%s, %s) reason %q", c.agent, c.skill, d.Reason)
		}
	}
	if !strings.Contains(sp.Text(), `permit (
    principal == Agent::"bot",
    action == Action::"skill.load",
    resource == Skill::"pdf-tools"
);`) {
		t.Errorf("Text =\n%s", sp.Text())
	}
	var none *SkillPolicies
	if none.DecideSkill("bot", "pdf-tools").Effect != warden.EffectDeny {
		t.Error("nil policies allowed")
	}
	if _, err := CompileSkillGrants(map[string][]string{"bad agent!": {"x"}}); err == nil {
		t.Error("a bad agent name compiled")
	}
	if _, err := CompileSkillGrants(map[string][]string{"bot": {""}}); err == nil {
		t.Error("an empty skill compiled")
	}
}
