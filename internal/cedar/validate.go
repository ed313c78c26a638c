package cedar

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/wardenhq/warden"
)

// Problem is one thing wrong with a policy set, placed so that a person can find and fix it.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Policy  string `json:"policy,omitempty"` // the policy's id, when the problem is in one policy
	Message string `json:"message"`
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
	if p.Policy != "" {
		return fmt.Sprintf("%s: policy %q: %s", loc, p.Policy, p.Message)
	}
	return loc + ": " + p.Message
}

// Problems is every problem Compile found. It is the cause inside the *warden.Error that Compile
// returns, so an API can list them one by one: errors.As(err, &problems).
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// policyIDRE keeps policy ids printable and free of spaces and quotes: they appear in audit
// events, CLI tables and log lines.
var policyIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/#@+=-]{0,127}$`)

// Annotations warden gives meaning to.
const (
	annotationID       = "id"
	annotationApproval = "approval"
	approvalRequired   = "required"
	approvalWaived     = "waived"
)

// checker validates parsed policies against the vocabulary derived from the tools.
//
// cedar-go's schema validator (x/exp/schema/validate) cannot be used as is: context.args has a
// shape that depends on the tool and action, and Cedar schemas have no open record type, so every
// condition on args would fail to type-check; nor can a Cedar schema accept "any action of this
// MCP tool". So the checker walks the policy and rejects what can only be a mistake: an entity
// type warden does not have, a tool or http action that is not registered, an agent name that can
// never match, an attribute the principal, resource, action or context does not have, and a scope
// whose variable can never hold the named type. It does not type-check expressions; a condition
// that fails at evaluation denies (see Engine.Decide).
type checker struct {
	vocab    *vocabulary
	problems []string
	// records counts, per record of the context whose attributes warden fixes (labels, session,
	// taint), the times a condition names it and the times it reads one of its attributes.
	records map[string]*[2]int
	// readsNum is set once any policy reads context.num, readsNorm context.norm.
	readsNum  bool
	readsNorm bool
	// sets are the policy set's named sets; setsRead the ones the current policy names.
	sets     map[types.EntityUID]types.Entity
	setsRead []string
}

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *checker) policy(p *xast.Policy) []string {
	c.problems = nil
	c.setsRead = nil
	c.annotations(p)
	c.principalScope(p.Principal)
	c.actionScope(p.Action)
	c.resourceScope(p.Resource)
	for _, cond := range p.Conditions {
		xast.Inspect(xast.NewNode(cond.Body), c.node)
	}
	c.wholeRecords()
	return c.problems
}

func (c *checker) annotations(p *xast.Policy) {
	for _, a := range p.Annotations {
		switch a.Key {
		case annotationID:
			if !policyIDRE.MatchString(string(a.Value)) {
				c.addf("@id(%q) is not a usable id: use 1-128 letters, digits and . _ : / # @ + = -, starting with a letter or digit", a.Value)
			}
		case annotationApproval:
			if a.Value != approvalRequired && a.Value != approvalWaived {
				c.addf("@approval(%q) is not understood: write @approval(%q) or @approval(%q)", a.Value, approvalRequired, approvalWaived)
			}
			if p.Effect == xast.EffectForbid {
				c.addf("@approval belongs on a permit: a forbid denies whether or not a person approves")
			}
		}
	}
}

func (c *checker) principalScope(s xast.IsPrincipalScopeNode) {
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		c.scopeEntity("principal", s.Entity, typeAgent)
	case xast.ScopeTypeIn:
		c.scopeEntity("principal", s.Entity, typeAgent)
	case xast.ScopeTypeIs:
		c.scopeType("principal", s.Type, typeAgent)
	case xast.ScopeTypeIsIn:
		c.scopeType("principal", s.Type, typeAgent)
		c.scopeEntity("principal", s.Entity, typeAgent)
	}
}

func (c *checker) actionScope(s xast.IsActionScopeNode) {
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		c.scopeEntity("action", s.Entity, typeAction)
	case xast.ScopeTypeIn:
		c.scopeEntity("action", s.Entity, typeAction)
	case xast.ScopeTypeInSet:
		if len(s.Entities) == 0 {
			c.addf("`action in []` matches no action")
		}
		for _, e := range s.Entities {
			c.scopeEntity("action", e, typeAction)
		}
	}
}

func (c *checker) resourceScope(s xast.IsResourceScopeNode) {
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		c.scopeEntity("resource", s.Entity, typeTool, typeResource)
	case xast.ScopeTypeIn:
		c.scopeEntity("resource", s.Entity, typeTool, typeResource)
	case xast.ScopeTypeIs:
		c.scopeType("resource", s.Type, typeTool, typeResource)
	case xast.ScopeTypeIsIn:
		c.scopeType("resource", s.Type, typeTool, typeResource)
		c.scopeEntity("resource", s.Entity, typeTool, typeResource)
	}
}

func (c *checker) scopeEntity(variable string, uid types.EntityUID, want ...types.EntityType) {
	if !c.entity(uid) {
		return
	}
	c.scopeType(variable, uid.Type, want...)
}

func (c *checker) scopeType(variable string, t types.EntityType, want ...types.EntityType) {
	if !c.entityType(t) || slices.Contains(want, t) {
		return
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = string(w)
	}
	c.addf("%s is always %s, never %s", variable, strings.Join(names, " or "), t)
}

// entityType reports whether t is a type of warden's vocabulary, noting a problem if not.
func (c *checker) entityType(t types.EntityType) bool {
	switch t {
	case typeAgent, typeTool, typeResource, typeAction, typeSet:
		return true
	}
	c.addf("unknown entity type %s: warden's policies name Agent, Tool, Resource, Action and Set", t)
	return false
}

// entity reports whether uid may appear in a policy, noting a problem if not.
func (c *checker) entity(uid types.EntityUID) bool {
	if !c.entityType(uid.Type) {
		return false
	}
	id := string(uid.ID)
	switch uid.Type {
	case typeAgent:
		// Agents may be created after the policy that names them, so an unknown name is fine;
		// a name no agent can have is a typo.
		if warden.ValidateName("agent", id) != nil {
			c.addf("%s can never match: agent names are 1-63 lowercase letters, digits and '-'", uid)
			return false
		}
	case typeTool:
		if _, ok := c.vocab.tools[id]; !ok {
			c.addf("unknown tool %s (%s)", uid, c.vocab.toolList())
			return false
		}
	case typeResource:
		if id == "" {
			c.addf(`Resource::"" can never match: a request without a resource has its Tool as resource`)
			return false
		}
	case typeAction:
		if msg := c.vocab.actionProblem(id); msg != "" {
			c.addf("%s", msg)
			return false
		}
	case typeSet:
		if _, ok := c.sets[uid]; !ok {
			c.addf("unknown set %s: apply it first (warden set apply %s FILE)", uid, id)
			return false
		}
		if !slices.Contains(c.setsRead, id) {
			c.setsRead = append(c.setsRead, id)
		}
	}
	return true
}

// node checks one node of a condition; it is called for every node by xast.Inspect.
func (c *checker) node(n xast.IsNode) bool {
	switch n := n.(type) {
	case xast.NodeValue:
		c.value(n.Value)
	case xast.NodeTypeIs:
		c.entityType(n.EntityType)
	case xast.NodeTypeIsIn:
		c.entityType(n.EntityType)
	case xast.NodeTypeAccess:
		c.attribute(n.Arg, n.Value)
		c.countRecord(n, n.Arg)
	case xast.NodeTypeHas:
		c.attribute(n.Arg, n.Value)
		c.countRecord(nil, n.Arg)
	case xast.NodeTypeGetTag:
		c.tags(n.Left)
	case xast.NodeTypeHasTag:
		c.tags(n.Left)
	case xast.NodeTypeExtensionCall:
		c.decimalLiteral(n)
	}
	return true
}

// decimalLiteral checks decimal("...") of a literal, which Cedar parses only at evaluation:
// decimal("100") — no point — would fail on every call, as a limit that denies everything.
func (c *checker) decimalLiteral(n xast.NodeTypeExtensionCall) {
	if n.Name != "decimal" || len(n.Args) != 1 {
		return
	}
	lit, ok := n.Args[0].(xast.NodeValue)
	if !ok {
		return
	}
	if s, ok := lit.Value.(types.String); ok {
		if _, err := types.ParseDecimal(string(s)); err != nil {
			c.addf("decimal(%q) is not a decimal: write a point and 1 to 4 digits after it, as decimal(\"100.0\"), within ±922337203685477.5807", s)
		}
	}
}

func (c *checker) value(v types.Value) {
	switch v := v.(type) {
	case types.EntityUID:
		c.entity(v)
	case types.Set:
		for e := range v.All() {
			c.value(e)
		}
	case types.Record:
		for _, e := range v.All() {
			c.value(e)
		}
	}
}

// attribute checks `x.name` and `x has name` where x is a variable. Reading an attribute that
// does not exist is an evaluation error, which denies; `has` on one is always false. Either way
// the author meant something else.
func (c *checker) attribute(of xast.IsNode, name types.String) {
	if lit, ok := of.(xast.NodeValue); ok {
		if uid, ok := lit.Value.(types.EntityUID); ok && uid.Type == typeSet && name != attrValues {
			c.addf("a Set has one attribute, values: %s.values, not %s.%s", uid, uid, name)
		}
	}
	v, ok := of.(xast.NodeTypeVariable)
	if !ok {
		c.recordAttribute(of, name)
		return
	}
	switch v.Name {
	case "context":
		switch name {
		case ctxNum:
			c.readsNum = true
		case ctxNorm:
			c.readsNorm = true
		}
		if !slices.Contains(contextAttrs, string(name)) {
			c.addf("context has no attribute %q; it has %s", name, strings.Join(contextAttrs, ", "))
		}
	case "principal":
		if !slices.Contains(agentAttrs, string(name)) {
			c.addf("an Agent has no attribute %q; it has %s, and its labels are tags: principal.getTag(%q)", name, strings.Join(agentAttrs, ", "), name)
		}
	case "resource":
		c.addf("resource (a Tool or Resource) has no attributes; %q cannot be read from it", name)
	case "action":
		c.addf("actions have no attributes; %q cannot be read from action", name)
	}
}

// contextRecord returns the name of the record of the context n is, such as "session" for
// context.session; "" when n is none of them.
func contextRecord(n xast.IsNode) string {
	acc, ok := n.(xast.NodeTypeAccess)
	if !ok {
		return ""
	}
	if v, ok := acc.Arg.(xast.NodeTypeVariable); !ok || v.Name != "context" {
		return ""
	}
	if _, ok := contextRecords[string(acc.Value)]; !ok {
		return ""
	}
	return string(acc.Value)
}

// countRecord counts a condition's naming of a context record (node) and its reading of one of
// a record's attributes (arg, the record read from).
func (c *checker) countRecord(node, arg xast.IsNode) {
	if c.records == nil {
		c.records = map[string]*[2]int{}
	}
	count := func(name string, i int) {
		if c.records[name] == nil {
			c.records[name] = &[2]int{}
		}
		c.records[name][i]++
	}
	if node != nil {
		if name := contextRecord(node); name != "" {
			count(name, 0)
		}
	}
	if name := contextRecord(arg); name != "" {
		count(name, 1)
	}
}

// wholeRecords notes a context record used whole rather than through its attributes. Comparing
// one is legal Cedar but never what was meant — and context.session was a String (the session
// id) before flow facts made it a record: a policy written then, context.session == "s-1",
// would now be silently false.
func (c *checker) wholeRecords() {
	for _, name := range slices.Sorted(maps.Keys(c.records)) {
		if n := c.records[name]; n[0] > n[1] {
			hint := ""
			if name == ctxSession {
				hint = " (context.session was the session id before flow facts: it is context.session.id now)"
			}
			c.addf("context.%s is a record: use its attributes (%s)%s", name, strings.Join(contextRecords[name], ", "), hint)
		}
	}
	c.records = nil
}

// recordAttribute checks `context.R.name` and `context.R has name` for the records of the
// context whose attributes warden fixes (labels, session, taint): a misspelt fact would
// otherwise be an evaluation error, which denies, or a `has` that is always false.
func (c *checker) recordAttribute(of xast.IsNode, name types.String) {
	acc, ok := of.(xast.NodeTypeAccess)
	if !ok {
		return
	}
	if v, ok := acc.Arg.(xast.NodeTypeVariable); !ok || v.Name != "context" {
		return
	}
	attrs, ok := contextRecords[string(acc.Value)]
	if ok && !slices.Contains(attrs, string(name)) {
		c.addf("context.%s has no attribute %q; it has %s", acc.Value, name, strings.Join(attrs, ", "))
	}
}

func (c *checker) tags(of xast.IsNode) {
	v, ok := of.(xast.NodeTypeVariable)
	if !ok {
		return
	}
	switch v.Name {
	case "resource", "action":
		c.addf("%s has no tags; only the principal (an Agent) carries its labels as tags", v.Name)
	case "context":
		c.addf("context is a record, not an entity, and has no tags")
	}
}
