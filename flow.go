package warden

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Flow labels say what a tool action's output and effect are, so that policy can follow
// untrusted text from what an agent reads to what it does (docs/flow.md). An admin sets them
// for a whole tool (Tool.Labels, the keys LabelOutput, LabelData and LabelEffect) or for one
// action (Tool.ActionLabels); an MCP tool's annotations give defaults that an admin's labels
// always override.
const (
	LabelOutput = "output" // OutputUntrusted or OutputTrusted
	LabelData   = "data"   // DataPrivate or DataPublic
	LabelEffect = "effect" // EffectNone, EffectInternal or EffectExternal
)

// Values of the flow labels.
const (
	OutputUntrusted = "untrusted" // the output carries text from outside: mail, web pages, comments
	OutputTrusted   = "trusted"
	DataPrivate     = "private" // the action reads confidential data
	DataPublic      = "public"
	EffectNone      = "none"     // the action changes nothing
	EffectInternal  = "internal" // it changes the organisation's own systems
	EffectExternal  = "external" // it changes the world or sends data out of the organisation
)

// Where a flow label came from (FlowLabel.Source).
const (
	LabelFromAction     = "action"     // an admin's label for this action
	LabelFromTool       = "tool"       // an admin's label for the whole tool
	LabelFromAnnotation = "annotation" // the MCP tool's own annotation (the upstream's claim)
	LabelFromDefault    = "default"    // nothing said: the default (docs/flow.md)
)

// flowLabelValues are the values each flow label may take.
var flowLabelValues = map[string][]string{
	LabelOutput: {OutputUntrusted, OutputTrusted},
	LabelData:   {DataPrivate, DataPublic},
	LabelEffect: {EffectNone, EffectInternal, EffectExternal},
}

// IsFlowLabel reports whether key is one of the flow labels (output, data, effect).
func IsFlowLabel(key string) bool { _, ok := flowLabelValues[key]; return ok }

// ValidateFlowLabel checks a flow label's value.
func ValidateFlowLabel(key, value string) error {
	values, ok := flowLabelValues[key]
	if !ok {
		return Errorf(EInvalid, "unknown flow label %q: use output, data or effect", key)
	}
	if !slices.Contains(values, value) {
		return Errorf(EInvalid, "label %s=%q: use %s", key, value, strings.Join(values, " or "))
	}
	return nil
}

// mostDangerous is each flow label's value that contains the least: what a label that cannot be
// read is taken as.
var mostDangerous = map[string]string{LabelOutput: OutputUntrusted, LabelData: DataPrivate, LabelEffect: EffectExternal}

// checkedLabel is an admin's label as resolution takes it. A value that is not one of the label's
// — a free-form label named output, data or effect set before they were flow labels — is taken at
// its most dangerous, never as what it might have meant.
func checkedLabel(key, value, source string) FlowLabel {
	if ValidateFlowLabel(key, value) != nil {
		return FlowLabel{Value: mostDangerous[key], Source: source, Detail: "invalid value " + strconv.Quote(value) + " taken at its most dangerous"}
	}
	return FlowLabel{Value: value, Source: source}
}

// FlowLabel is one resolved flow label of an action and where it came from.
type FlowLabel struct {
	Value  string `json:"value"`
	Source string `json:"source"`           // LabelFromAction, LabelFromTool, LabelFromAnnotation or LabelFromDefault
	Detail string `json:"detail,omitempty"` // e.g. the annotation that decided it: "openWorldHint=true"
}

// FlowLabels are the resolved flow labels of one action of a tool.
type FlowLabels struct {
	Output FlowLabel `json:"output"`
	Data   FlowLabel `json:"data"`
	Effect FlowLabel `json:"effect"`
}

// Untrusted reports whether the action's output carries untrusted text.
func (l FlowLabels) Untrusted() bool { return l.Output.Value == OutputUntrusted }

// Private reports whether the action reads private data.
func (l FlowLabels) Private() bool { return l.Data.Value == DataPrivate }

// ToolAnnotations are the MCP tool annotations flow labels default from; nil pointers are
// annotations the tool does not set (the MCP specification's defaults apply).
type ToolAnnotations struct {
	ReadOnlyHint    *bool `json:"readOnlyHint,omitempty"`
	DestructiveHint *bool `json:"destructiveHint,omitempty"`
	OpenWorldHint   *bool `json:"openWorldHint,omitempty"`
}

// AnnotationsOf reads the annotations of a canonical MCP tool manifest (ToolManifest.Manifest);
// nil when it has none or cannot be read.
func AnnotationsOf(manifest json.RawMessage) *ToolAnnotations {
	if len(manifest) == 0 {
		return nil
	}
	var m struct {
		Annotations *ToolAnnotations `json:"annotations"`
	}
	if json.Unmarshal(manifest, &m) != nil {
		return nil
	}
	return m.Annotations
}

// ResolveFlowLabels resolves the flow labels of one action of a tool: the admin's label for the
// action, else for the tool, else (an MCP tool) its annotations, else the default. ann are the
// action's MCP annotations (nil: none known); method is an HTTP route's method ("" otherwise).
//
// The defaults follow the MCP specification's annotation defaults, so that a tool nobody
// labelled is taken at its most dangerous: output untrusted (openWorldHint defaults to true),
// effect external (readOnlyHint defaults to false and destructiveHint to true), data public
// (no annotation says whether a tool reads confidential data: label it). An HTTP route that
// only reads (GET, HEAD, OPTIONS) and an MCP server's resources/read, prompts/get and the like
// have effect none by default; the egress tool's connections are external.
func ResolveFlowLabels(t *Tool, action, method string, ann *ToolAnnotations) FlowLabels {
	var l FlowLabels
	set := func(dst *FlowLabel, key string, def FlowLabel) {
		if t != nil {
			if v, ok := t.ActionLabels[action][key]; ok {
				*dst = checkedLabel(key, v, LabelFromAction)
				return
			}
			if v, ok := t.Labels[key]; ok {
				*dst = checkedLabel(key, v, LabelFromTool)
				return
			}
		}
		*dst = def
	}
	isMCP := t != nil && (t.Kind == ToolMCP || t.Kind == ToolMCPCommand)
	outDef := FlowLabel{Value: OutputUntrusted, Source: LabelFromDefault}
	effDef := FlowLabel{Value: EffectExternal, Source: LabelFromDefault}
	switch {
	case isMCP && ann != nil:
		if ann.OpenWorldHint != nil {
			outDef = FlowLabel{Value: OutputUntrusted, Source: LabelFromAnnotation, Detail: "openWorldHint=true"}
			if !*ann.OpenWorldHint {
				outDef = FlowLabel{Value: OutputTrusted, Source: LabelFromAnnotation, Detail: "openWorldHint=false"}
			}
		}
		switch {
		case ann.ReadOnlyHint != nil && *ann.ReadOnlyHint:
			effDef = FlowLabel{Value: EffectNone, Source: LabelFromAnnotation, Detail: "readOnlyHint=true"}
		case ann.DestructiveHint != nil && !*ann.DestructiveHint:
			effDef = FlowLabel{Value: EffectInternal, Source: LabelFromAnnotation, Detail: "destructiveHint=false"}
		case ann.DestructiveHint != nil:
			effDef = FlowLabel{Value: EffectExternal, Source: LabelFromAnnotation, Detail: "destructiveHint=true"}
		}
	case isMCP && mcpReadMethods[action]:
		// Not a tool: the MCP methods that read a server's resources and prompts change nothing.
		effDef = FlowLabel{Value: EffectNone, Source: LabelFromDefault, Detail: action}
	case t != nil && t.Kind == ToolHTTP:
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			effDef = FlowLabel{Value: EffectNone, Source: LabelFromDefault, Detail: method}
		}
	}
	set(&l.Output, LabelOutput, outDef)
	set(&l.Data, LabelData, FlowLabel{Value: DataPublic, Source: LabelFromDefault})
	set(&l.Effect, LabelEffect, effDef)
	return l
}

// mcpReadMethods are the MCP methods other than tools/call that warden relays as actions of an
// MCP tool; they read, and their output (a resource's text, a prompt) is untrusted by default.
var mcpReadMethods = map[string]bool{"resources/read": true, "resources/subscribe": true, "prompts/get": true, "completion/complete": true}

// FlowFacts are what the session of a call had read when it was decided, and which of its
// arguments carry values that came from untrusted output: what policy sees as context.labels,
// context.session and context.taint, and what the call's audit event records (AuditEvent.Flow).
type FlowFacts struct {
	// Session is the session the facts are of: the MCP session, the Warden-Session header, the
	// decision API's session or the token's sid.
	Session string     `json:"session,omitempty"`
	Labels  FlowLabels `json:"labels"`
	// UntrustedRead: an earlier call of the session returned untrusted output; UntrustedSources
	// names those calls' tools, each as "TOOL" and as "TOOL:ACTION", sorted.
	UntrustedRead    bool     `json:"untrusted_read"`
	UntrustedSources []string `json:"untrusted_sources,omitempty"`
	PrivateRead      bool     `json:"private_read"`
	// Tainted are the arguments whose value, or a significant part of it, appeared in untrusted
	// output of the session, sorted by argument.
	Tainted []TaintedArg `json:"tainted,omitempty"`
	// Evicted: the session's state was dropped to stay within memory bounds, so warden cannot
	// tell which arguments are tainted: every argument counts as tainted (fail closed).
	Evicted bool `json:"evicted,omitempty"`
}

// TaintedArg is an argument that carries a value from untrusted output, and where that came
// from. The value itself is never recorded.
type TaintedArg struct {
	Arg  string `json:"arg"`
	Kind string `json:"kind"` // what kind of value matched: email, url, host, iban, account, number, phrase, identifier
	// SourceTool and SourceAction are the call whose output held the value; SourceDecision is
	// its decision id (the audit log's decision.id of its tool.call and tool.result events).
	SourceTool     string `json:"source_tool"`
	SourceAction   string `json:"source_action"`
	SourceDecision string `json:"source_decision,omitempty"`
}

// TaintedArgs returns the names of the tainted arguments, sorted and without repeats.
func (f *FlowFacts) TaintedArgs() []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, t := range f.Tainted {
		if len(out) == 0 || out[len(out)-1] != t.Arg {
			out = append(out, t.Arg)
		}
	}
	return out
}

// FlowObservation is one output a session observed, kept in the store so that every replica of a
// fleet decides the session's calls with it: a replica that decides a call of a session first
// reads the observations it has not seen. Values are the untrusted output's values as
// internal/taint encodes them — keyed digests, never the text.
type FlowObservation struct {
	ID        int64  `json:"id"` // assigned by the store, increasing
	AgentID   string `json:"agent_id"`
	Session   string `json:"session"`
	Tool      string `json:"tool"`
	Action    string `json:"action"`
	Decision  string `json:"decision"`
	Untrusted bool   `json:"untrusted"`
	Private   bool   `json:"private"`
	Values    []byte `json:"values,omitempty"`
	// Bytes is how much untrusted output the values were taken from (the session's memory bound
	// counts it).
	Bytes int `json:"bytes"`
	// Partial: the values are of only part of the output (it was cut), so what the session
	// read is not all known: a replica applying it decides the session as evicted.
	Partial   bool      `json:"partial,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// MaxFlowValues bounds the encoded values of one observation.
const MaxFlowValues = 8 << 20

// FlowStore keeps sessions' observations for a fleet of replicas.
type FlowStore interface {
	// AppendFlowObservation stores an observation and sets its ID.
	AppendFlowObservation(ctx context.Context, o *FlowObservation) error
	// FlowObservations returns a session's observations with an ID over after, oldest first, at
	// most limit of them.
	FlowObservations(ctx context.Context, agentID, session string, after int64, limit int) ([]*FlowObservation, error)
	// DeleteFlowSession forgets a session's observations (it ended).
	DeleteFlowSession(ctx context.Context, agentID, session string) error
	// PruneFlowObservations deletes the observations of every session not observed since
	// before, and returns how many.
	PruneFlowObservations(ctx context.Context, before time.Time) (int64, error)
}
