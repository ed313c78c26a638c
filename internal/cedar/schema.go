package cedar

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Entity type names of warden's Cedar vocabulary.
const (
	typeAgent    = "Agent"
	typeTool     = "Tool"
	typeResource = "Resource"
	typeAction   = "Action"
)

// Context attribute names. contextAttrs lists them for validation and for messages.
const (
	ctxArgs = "args"
	// ctxNum is every number of context.args as a decimal, at the same path (numRecord).
	ctxNum = "num"
	// ctxNorm is the normalised companion of every string argument whose input schema declares
	// a format warden normalises, at the same path (InputSchema.normRecord).
	ctxNorm       = "norm"
	ctxRisk       = "risk"
	ctxRiskLevel  = "risk_level"
	ctxTool       = "tool"
	ctxSession    = "session"
	ctxOnBehalfOf = "on_behalf_of"
	// ctxResource is the resource's name as a string ("" when the call names none), so that a
	// policy can match a family of resources: context.resource like "repo:acme/*".
	ctxResource = "resource"
	ctxNow      = "now"
	ctxDatetime = "datetime"
	// ctxBodyInspected is false when part of the call went upstream unparsed (an HTTP body that
	// is not JSON), so that a policy can refuse what warden did not see.
	ctxBodyInspected = "body_inspected"
	// ctxLabels, ctxSession and ctxTaint carry the call's flow facts (warden.FlowFacts): the
	// called action's labels, what its session had read, and which arguments came from
	// untrusted output.
	ctxLabels = "labels"
	ctxTaint  = "taint"
)

var contextAttrs = []string{ctxArgs, ctxBodyInspected, ctxDatetime, ctxLabels, ctxNorm, ctxNow, ctxNum, ctxOnBehalfOf, ctxResource, ctxRisk, ctxRiskLevel, ctxSession, ctxTaint, ctxTool}

// Attributes of the records context.labels, context.session and context.taint.
const (
	attrID               = "id"
	attrUntrustedRead    = "untrusted_read"
	attrUntrustedSources = "untrusted_sources"
	attrPrivateRead      = "private_read"
	attrArgs             = "args"
	attrAny              = "any"
)

// contextRecords are the attributes of each record of the context that is not the arguments.
var contextRecords = map[string][]string{
	ctxLabels:  {warden.LabelData, warden.LabelEffect, warden.LabelOutput},
	ctxSession: {attrID, attrPrivateRead, attrUntrustedRead, attrUntrustedSources},
	ctxTaint:   {attrAny, attrArgs},
}

// Agent attribute names; labels are tags, not attributes.
const (
	attrOwner   = "owner"
	attrPurpose = "purpose"
)

var agentAttrs = []string{attrOwner, attrPurpose}

// actionNameRE bounds what a tool-local action may be called where warden, not an upstream, names
// it: HTTP route actions and grant actions. Keeping it free of quotes, spaces and ':' means an action
// can be pasted into Cedar text and split back from its tool without ambiguity.
var actionNameRE = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,128}$`)

func validateActionName(action string) error {
	if !actionNameRE.MatchString(action) {
		return warden.Errorf(warden.EInvalid, "invalid action %q: use 1-128 letters, digits, '.', '_', '-' or '/'", action)
	}
	return nil
}

// vocabulary is what policies may name, derived from the registered tools. It is the schema in the
// form validation needs.
type vocabulary struct {
	tools map[string]*toolVocabulary
	names []string // sorted tool names, for messages
}

type toolVocabulary struct {
	name string
	kind warden.ToolKind
	// actions are the tool-local actions an http tool's routes declare, or a decision-only
	// tool's, sorted. An MCP tool's actions are whatever its upstream lists at run time, so open
	// is set and actions is empty.
	actions []string
	open    bool
	// closed: a call may name no other action than actions (a decision-only tool); schemas
	// are its actions' input schemas.
	closed  bool
	schemas map[string]*InputSchema
}

func newVocabulary(tools []*warden.Tool) (*vocabulary, error) {
	v := &vocabulary{tools: make(map[string]*toolVocabulary, len(tools))}
	for _, t := range tools {
		if t == nil {
			return nil, warden.Errorf(warden.EInvalid, "tool list holds a nil tool")
		}
		if err := warden.ValidateName("tool", t.Name); err != nil {
			return nil, err
		}
		if _, dup := v.tools[t.Name]; dup {
			return nil, warden.Errorf(warden.EInvalid, "tool %q is registered twice", t.Name)
		}
		tv, err := toolVocabularyOf(t)
		if err != nil {
			return nil, err
		}
		v.tools[t.Name] = tv
		v.names = append(v.names, t.Name)
	}
	slices.Sort(v.names)
	return v, nil
}

// toolVocabularyOf describes one tool: its kind and what actions policies may name.
func toolVocabularyOf(t *warden.Tool) (*toolVocabulary, error) {
	tv := &toolVocabulary{name: t.Name, kind: t.Kind}
	switch t.Kind {
	case warden.ToolMCP, warden.ToolMCPCommand:
		tv.open = true
	case warden.ToolEgress:
		tv.actions = []string{warden.EgressConnect}
	case warden.ToolHTTP:
		for _, route := range t.Routes {
			action, err := routeAction(route)
			if err != nil {
				return nil, warden.Errorf(warden.EInvalid, "tool %q: %s", t.Name, warden.ErrorMessage(err))
			}
			if !slices.Contains(tv.actions, action) {
				tv.actions = append(tv.actions, action)
			}
		}
		slices.Sort(tv.actions)
	case warden.ToolDecisionOnly:
		tv.closed = true
		for _, a := range t.Actions {
			if err := validateActionName(a.Name); err != nil {
				return nil, warden.Errorf(warden.EInvalid, "tool %q: %s", t.Name, warden.ErrorMessage(err))
			}
			if slices.Contains(tv.actions, a.Name) {
				return nil, warden.Errorf(warden.EInvalid, "tool %q declares the action %q twice", t.Name, a.Name)
			}
			tv.actions = append(tv.actions, a.Name)
			if len(a.InputSchema) > 0 {
				schema, err := CompileInputSchema(a.InputSchema)
				if err != nil {
					return nil, warden.Errorf(warden.EInvalid, "tool %q, action %q: input_schema: %s", t.Name, a.Name, warden.ErrorMessage(err))
				}
				if tv.schemas == nil {
					tv.schemas = map[string]*InputSchema{}
				}
				tv.schemas[a.Name] = schema
			}
		}
		slices.Sort(tv.actions)
	default:
		return nil, warden.Errorf(warden.EInvalid, "tool %q has unknown kind %q: use mcp, mcp_command, http or decision_only", t.Name, t.Kind)
	}
	return tv, nil
}

// routeAction returns the action a route maps to. Route syntax:
// "METHOD /path/{var} -> action [resourcepattern]". The gateway owns matching requests to routes;
// policy only needs the action names, so this checks the shape and no more.
func routeAction(route string) (string, error) {
	lhs, rhs, ok := strings.Cut(route, "->")
	lf, rf := strings.Fields(lhs), strings.Fields(rhs)
	if !ok || len(lf) != 2 || len(rf) < 1 || len(rf) > 2 {
		return "", warden.Errorf(warden.EInvalid, "route %q: want \"METHOD /path -> action [resource]\"", route)
	}
	if err := validateActionName(rf[0]); err != nil {
		return "", warden.Errorf(warden.EInvalid, "route %q: %s", route, warden.ErrorMessage(err))
	}
	return rf[0], nil
}

// actionProblem says why a policy may not name Action::"id", or returns "" if it may. The ids a
// policy may name are the group actions "<tool>" and the actions "<tool>:<action>".
func (v *vocabulary) actionProblem(id string) string {
	toolName, action, hasAction := strings.Cut(id, ":")
	tv, ok := v.tools[toolName]
	if !ok {
		return fmt.Sprintf("unknown action Action::%q: no tool %q is registered (%s)", id, toolName, v.toolList())
	}
	switch {
	case !hasAction:
		return ""
	case action == "":
		return fmt.Sprintf("action Action::%q names no action: use Action::%q for every action of the tool, or Action::\"%s:<action>\"", id, toolName, toolName)
	case tv.open:
		return ""
	case slices.Contains(tv.actions, action):
		return ""
	}
	return fmt.Sprintf("unknown action Action::%q: tool %q (%s) has %s", id, toolName, tv.kind, listOf("actions", tv.actions))
}

func (v *vocabulary) toolList() string { return listOf("registered tools", v.names) }

// listOf renders a list for a message, short enough to read: "actions a, b, c" or "no actions".
func listOf(what string, items []string) string {
	const most = 12
	switch {
	case len(items) == 0:
		return "no " + what
	case len(items) > most:
		return fmt.Sprintf("%s %s and %d more", what, strings.Join(items[:most], ", "), len(items)-most)
	}
	return what + " " + strings.Join(items, ", ")
}

// Schema returns the Cedar schema, in Cedar's human-readable schema syntax, of the policies that
// may be written over the given tools. It is the same vocabulary Compile validates against.
//
// Two things Cedar schemas cannot say are written as comments: an MCP tool accepts any action
// "<tool>:<name>" (its upstream names them at run time), and context.args has a shape that depends
// on the tool and action (Cedar has no open record type).
func Schema(tools []*warden.Tool) (string, error) {
	v, err := newVocabulary(tools)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`// Cedar schema of warden's policies, derived from the registered tools.

// An agent: principal of every request. Its labels are tags: principal.getTag("team").
entity Agent {
  owner: String,
  purpose: String,
} tags String;

// A registered tool. It is the resource of a call that names no resource.
entity Tool;

// A resource a call names, such as "repo:acme/web"; it is in the tool that reaches it.
entity Resource in [Tool];

// A named value set (warden set apply NAME FILE): Set::"payees".values.contains(context.args.to).
entity Set {
  values: Set<String>,
};

// context.args, the call's arguments, is left out: its shape depends on the tool and action and
// Cedar schemas have no open record type. Objects are records, arrays sets, integers Long,
// fractions decimal. So is context.num: every number of context.args as a decimal, at the same
// path (context.num.amount.lessThan(decimal("100.0")) holds for 4, 4.0 and 98.7 alike). So is
// context.norm: the normalised form of every string argument whose input schema declares the
// format email or hostname (a String) or uri/url (a record {scheme, host, port, path, url}).
type Context = {
  body_inspected: Bool,
  datetime: __cedar::datetime,
  // The called action's flow labels: output "untrusted" or "trusted", data "private" or
  // "public", effect "none", "internal" or "external".
  labels: {data: String, effect: String, output: String},
  now: Long,
  on_behalf_of: String,
  // The resource's name ("repo:acme/web"), "" when the call names none: context.resource like "repo:acme/*".
  resource: String,
  risk: String,
  risk_level: Long,
  // What the call's session had read before it: untrusted output (and from which tools, each as
  // "TOOL" and "TOOL:ACTION"), private data.
  session: {id: String, private_read: Bool, untrusted_read: Bool, untrusted_sources: Set<String>},
  // The names of the arguments whose value, or a significant part of it, appeared in untrusted
  // output of the session; any: at least one.
  taint: {any: Bool, args: Set<String>},
  tool: String,
};
`)
	for _, name := range v.names {
		tv := v.tools[name]
		b.WriteString("\n")
		switch {
		case tv.open:
			fmt.Fprintf(&b, "// Tool %q (%s): any action \"%s:<name>\"; its upstream names them at run time.\n", name, tv.kind, name)
		case tv.closed:
			fmt.Fprintf(&b, "// Tool %q (%s): its declared actions; decided on POST /v1/authorize, never reached.\n", name, tv.kind)
		default:
			fmt.Fprintf(&b, "// Tool %q (%s): the actions its routes name.\n", name, tv.kind)
		}
		fmt.Fprintf(&b, "action %q;\n", name)
		for _, a := range tv.actions {
			fmt.Fprintf(&b, "action %q in [%q] appliesTo {\n  principal: [Agent],\n  resource: [Tool, Resource],\n  context: Context\n};\n", name+":"+a, name)
		}
	}
	return b.String(), nil
}
