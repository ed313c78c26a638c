package cedar

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	cedarast "github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/wardenhq/warden"
)

// GrantSpec is a grant from warden.yaml: an agent may use a tool, perhaps only some of its
// actions, perhaps only when a condition holds, perhaps only with a person's approval.
type GrantSpec struct {
	Agent   string
	Tool    string
	Actions []string // tool-local actions ("issues.list"); empty means every action of the tool
	When    string   // optional: one Cedar expression, such as `resource == Resource::"repo:acme/web"`
	// Approval makes every call the grant allows wait for a person's approval.
	Approval bool
	// WaiveApproval lifts the approval a high or critical tool would otherwise need for what the
	// grant allows (@approval("waived")). It cannot go with Approval.
	WaiveApproval bool
	// Index tells apart several grants of one agent on one tool; the config loader passes the
	// grant's position in its list, so that the id is stable while the file is.
	Index int
}

// Grant compiles a grant to a Cedar permit with the id "grant:<agent>:<tool>:<index>":
//
//	@id("grant:triage-bot:github:0")
//	permit (
//	    principal == Agent::"triage-bot",
//	    action in [Action::"github:issues.list", Action::"github:issues.comment"],
//	    resource in Tool::"github"
//	)
//	when { resource == Resource::"repo:acme/web" };
//
// The text is generated from a syntax tree, never by pasting: names and actions are validated,
// and When is parsed on its own and must be exactly one expression, so a grant cannot smuggle in
// a second condition or a second policy. Whether the tool and actions exist is checked when the
// result is compiled with the registered tools.
func Grant(g GrantSpec) (string, error) {
	if err := warden.ValidateName("agent", g.Agent); err != nil {
		return "", err
	}
	if err := warden.ValidateName("tool", g.Tool); err != nil {
		return "", err
	}
	if g.Approval && g.WaiveApproval {
		return "", warden.Errorf(warden.EInvalid, "grant of %q on %q: approval cannot be both required and waived", g.Agent, g.Tool)
	}
	if g.Index < 0 {
		return "", warden.Errorf(warden.EInvalid, "grant of %q on %q: index %d is negative", g.Agent, g.Tool, g.Index)
	}
	var actions []types.EntityUID
	for _, a := range g.Actions {
		if err := validateActionName(a); err != nil {
			return "", warden.Errorf(warden.EInvalid, "grant of %q on %q: %s", g.Agent, g.Tool, warden.ErrorMessage(err))
		}
		uid := types.NewEntityUID(typeAction, types.String(g.Tool+":"+a))
		if !slices.Contains(actions, uid) {
			actions = append(actions, uid)
		}
	}

	id := fmt.Sprintf("grant:%s:%s:%d", g.Agent, g.Tool, g.Index)
	p := xast.Annotation(annotationID, types.String(id))
	switch {
	case g.Approval:
		p.Annotation(annotationApproval, approvalRequired)
	case g.WaiveApproval:
		p.Annotation(annotationApproval, approvalWaived)
	}
	policy := p.Permit().
		PrincipalEq(types.NewEntityUID(typeAgent, types.String(g.Agent))).
		ResourceIn(types.NewEntityUID(typeTool, types.String(g.Tool)))
	switch len(actions) {
	case 0:
		policy.ActionIn(types.NewEntityUID(typeAction, types.String(g.Tool)))
	case 1:
		policy.ActionEq(actions[0])
	default:
		policy.ActionInSet(actions...)
	}
	if strings.TrimSpace(g.When) != "" {
		cond, err := parseCondition(g.When)
		if err != nil {
			return "", warden.Errorf(warden.EInvalid, "grant %s: when: %v", id, err)
		}
		policy.Conditions = []xast.ConditionType{cond}
	}
	text := string(cedar.NewPolicyFromAST((*cedarast.Policy)(policy)).MarshalCedar())

	// The text came from a tree, so it is one policy; reading it back proves that the printer
	// agrees, which is cheap next to letting a grant mean something other than it says.
	back, err := cedar.NewPolicyListFromBytes("grant", []byte(text))
	if err != nil || len(back) != 1 || back[0].Annotations()[annotationID] != types.String(id) {
		return "", warden.WrapError(warden.EInvalid, fmt.Sprintf("grant %s does not compile to a single policy", id), err)
	}
	return text + "\n", nil
}

var errNotOneExpression = errors.New("must be one Cedar expression, but it closes the condition and goes on with more")

// parseCondition parses a when expression by itself. cedar-go parses only whole policies, so the
// expression is placed, on lines of its own, in a policy that has nothing else to say; then
// the result must be that one policy with that one condition. Anything that closes the condition
// early — `true } unless { false`, or `true }; permit(...) when { true` — fails that test.
//
// Its errors describe the caller's own text and are safe to show.
func parseCondition(expr string) (xast.ConditionType, error) {
	probe := "permit(principal, action, resource) when {\n" + expr + "\n};"
	list, err := cedar.NewPolicyListFromBytes("when", []byte(probe))
	if err != nil {
		// Line 1 of the probe is the wrapper, so the expression's own lines start at 2; an error
		// on the line after them is an expression that ended too soon.
		p := parseProblem("when", err)
		where := fmt.Sprintf("line %d, column %d", p.Line-1, p.Column)
		if p.Line < 2 || p.Line-1 > strings.Count(expr, "\n")+1 {
			where = "at its end"
		}
		return xast.ConditionType{}, fmt.Errorf("not a Cedar expression (%s): %s", where, strings.TrimPrefix(p.Message, "syntax error: "))
	}
	if len(list) != 1 {
		return xast.ConditionType{}, errNotOneExpression
	}
	p := astOf(list[0])
	if len(p.Annotations) != 0 || len(p.Conditions) != 1 || p.Conditions[0].Condition != xast.ConditionWhen {
		return xast.ConditionType{}, errNotOneExpression
	}
	return p.Conditions[0], nil
}
