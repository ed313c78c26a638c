package warden

import (
	"encoding/json"
	"testing"
)

func TestResolveFlowLabels(t *testing.T) {
	yes, no := true, false
	mcp := &Tool{Name: "mail", Kind: ToolMCP}
	labelled := &Tool{Name: "mail", Kind: ToolMCP, Labels: map[string]string{LabelOutput: OutputUntrusted, LabelData: DataPrivate, "team": "x"},
		ActionLabels: map[string]map[string]string{"send": {LabelOutput: OutputTrusted, LabelEffect: EffectInternal}}}
	api := &Tool{Name: "api", Kind: ToolHTTP}
	type want struct{ output, outSrc, data, dataSrc, effect, effSrc, effDetail string }
	tests := []struct {
		name   string
		tool   *Tool
		action string
		method string
		ann    *ToolAnnotations
		want   want
	}{
		{"unlabelled MCP tool without annotations: most dangerous", mcp, "x", "", nil,
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectExternal, LabelFromDefault, ""}},
		{"read-only, closed world", mcp, "x", "", &ToolAnnotations{ReadOnlyHint: &yes, OpenWorldHint: &no},
			want{OutputTrusted, LabelFromAnnotation, DataPublic, LabelFromDefault, EffectNone, LabelFromAnnotation, "readOnlyHint=true"}},
		{"not destructive", mcp, "x", "", &ToolAnnotations{DestructiveHint: &no, OpenWorldHint: &yes},
			want{OutputUntrusted, LabelFromAnnotation, DataPublic, LabelFromDefault, EffectInternal, LabelFromAnnotation, "destructiveHint=false"}},
		{"destructive", mcp, "x", "", &ToolAnnotations{DestructiveHint: &yes},
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectExternal, LabelFromAnnotation, "destructiveHint=true"}},
		{"the admin's action labels beat the tool's and the annotations", labelled, "send", "", &ToolAnnotations{ReadOnlyHint: &yes, OpenWorldHint: &yes},
			want{OutputTrusted, LabelFromAction, DataPrivate, LabelFromTool, EffectInternal, LabelFromAction, ""}},
		{"the admin's tool labels beat the annotations", labelled, "other", "", &ToolAnnotations{OpenWorldHint: &no},
			want{OutputUntrusted, LabelFromTool, DataPrivate, LabelFromTool, EffectExternal, LabelFromDefault, ""}},
		{"an MCP read method changes nothing", mcp, "resources/read", "", nil,
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectNone, LabelFromDefault, "resources/read"}},
		{"an HTTP read", api, "items.get", "GET", nil,
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectNone, LabelFromDefault, "GET"}},
		{"an HTTP write", api, "items.create", "POST", nil,
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectExternal, LabelFromDefault, ""}},
		{"annotations do not apply to HTTP", api, "items.create", "POST", &ToolAnnotations{ReadOnlyHint: &yes},
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectExternal, LabelFromDefault, ""}},
		{"labels stored before they were flow labels, with other values", &Tool{Name: "old", Kind: ToolMCP,
			Labels: map[string]string{LabelOutput: "json", LabelData: "pii", LabelEffect: "writes"}}, "x", "", &ToolAnnotations{ReadOnlyHint: &yes, OpenWorldHint: &no},
			want{OutputUntrusted, LabelFromTool, DataPrivate, LabelFromTool, EffectExternal, LabelFromTool, `invalid value "writes" taken at its most dangerous`}},
		{"egress", EgressTool, EgressConnect, "", nil,
			want{OutputUntrusted, LabelFromDefault, DataPublic, LabelFromDefault, EffectExternal, LabelFromDefault, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ResolveFlowLabels(tt.tool, tt.action, tt.method, tt.ann)
			got := want{l.Output.Value, l.Output.Source, l.Data.Value, l.Data.Source, l.Effect.Value, l.Effect.Source, l.Effect.Detail}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestAnnotationsOf(t *testing.T) {
	a := AnnotationsOf(json.RawMessage(`{"name":"x","annotations":{"readOnlyHint":true,"openWorldHint":false}}`))
	if a == nil || a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.OpenWorldHint == nil || *a.OpenWorldHint || a.DestructiveHint != nil {
		t.Fatalf("%+v", a)
	}
	for _, m := range []string{``, `{"name":"x"}`, `not json`} {
		if a := AnnotationsOf(json.RawMessage(m)); a != nil {
			t.Errorf("%q: %+v", m, a)
		}
	}
}

func TestValidateFlowLabel(t *testing.T) {
	for _, ok := range [][2]string{{"output", "untrusted"}, {"data", "private"}, {"effect", "none"}} {
		if err := ValidateFlowLabel(ok[0], ok[1]); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	for _, bad := range [][2]string{{"output", "Untrusted"}, {"effect", "everything"}, {"colour", "red"}, {"data", ""}} {
		if err := ValidateFlowLabel(bad[0], bad[1]); ErrorCode(err) != EInvalid {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
