package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

func TestFlowLabelValidation(t *testing.T) {
	bank := ToolSpec{Name: "bank", HTTP: "https://bank.example.com", Routes: []string{"POST /transfers -> transfer", "GET /balance -> balance"}}
	mail := ToolSpec{Name: "mail", MCP: "https://mail.example.com/mcp"}
	with := func(spec ToolSpec, labels map[string]string, actions map[string]map[string]string) ToolSpec {
		spec.Labels, spec.ActionLabels = labels, actions
		return spec
	}
	many := map[string]map[string]string{}
	for i := range maxActionLabels + 1 {
		many[fmt.Sprintf("tool_%d", i)] = map[string]string{"output": "trusted"}
	}
	tests := []struct {
		name string
		spec ToolSpec
		err  string // "" when valid
	}{
		{"none", bank, ""},
		{"whole tool", with(bank, map[string]string{"output": "untrusted", "data": "private", "effect": "internal", "team": "payments"}, nil), ""},
		{"free-form labels keep any value", with(bank, map[string]string{"team": "whatever"}, nil), ""},
		{"bad output", with(bank, map[string]string{"output": "maybe"}, nil), `tool bank: label output="maybe": use untrusted or trusted`},
		{"bad data", with(bank, map[string]string{"data": "secret"}, nil), `label data="secret": use private or public`},
		{"bad effect", with(bank, map[string]string{"effect": "External"}, nil), `label effect="External": use none or internal or external`},
		{"route actions", with(bank, nil, map[string]map[string]string{"transfer": {"effect": "external"}, "balance": {"data": "private", "output": "trusted"}}), ""},
		{"not a route's action", with(bank, nil, map[string]map[string]string{"tranfser": {"effect": "external"}}), `tool bank: action_labels name "tranfser", which no route of the tool has (transfer, balance)`},
		{"http: malformed action", with(bank, nil, map[string]map[string]string{"a b": {"effect": "none"}}), `tool bank: action_labels: invalid action "a b"`},
		{"action: unknown key", with(bank, nil, map[string]map[string]string{"transfer": {"team": "x"}}), `tool bank, action transfer: unknown flow label "team"`},
		{"action: bad value", with(bank, nil, map[string]map[string]string{"transfer": {"effect": "big"}}), `tool bank, action transfer: label effect="big"`},
		{"action: no labels", with(bank, nil, map[string]map[string]string{"transfer": {}}), "tool bank, action transfer: no flow labels"},
		{"mcp: any tool name", with(mail, nil, map[string]map[string]string{"send_email": {"effect": "external"}, "Read.Inbox-2": {"output": "untrusted"}}), ""},
		{"mcp: a method", with(mail, nil, map[string]map[string]string{"resources/read": {"output": "untrusted"}}), ""},
		{"mcp: not a tool name", with(mail, nil, map[string]map[string]string{"send email": {"effect": "external"}}), `tool mail: action_labels: invalid MCP tool name "send email"`},
		{"mcp: NUL", with(mail, nil, map[string]map[string]string{"send\x00": {"effect": "external"}}), "invalid MCP tool name"},
		{"mcp command", with(ToolSpec{Name: "fs", MCPCommand: "fs-server"}, map[string]string{"data": "private"}, map[string]map[string]string{"write_file": {"effect": "internal"}}), ""},
		{"too many actions", with(mail, nil, many), fmt.Sprintf("tool mail: flow labels for %d actions; at most %d", maxActionLabels+1, maxActionLabels)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tool, err := ToolOf(tt.spec)
			if tt.err != "" {
				if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), tt.err) {
					t.Fatalf("ToolOf = %v; want EInvalid with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.EqualFunc(tool.ActionLabels, tt.spec.ActionLabels, maps.Equal) || !maps.Equal(tool.Labels, tt.spec.Labels) {
				t.Fatalf("tool labels %v %v; want %v %v", tool.Labels, tool.ActionLabels, tt.spec.Labels, tt.spec.ActionLabels)
			}
		})
	}
}

// TestSetToolLabels changes the flow labels of a tool and of its actions against a real store:
// each change is stored, announced to the fleet as a tool change and recorded with the labels
// before and after; a change that changes nothing is neither; a bad one changes nothing.
func TestSetToolLabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, audit := newPinService(t, nil)
	f := s.fleet.(*recordingFleet)
	p := &warden.Principal{Name: "ops", Role: warden.RoleOperator}
	if _, err := s.AddTool(ctx, p, ToolSpec{Name: "bank", HTTP: "http://127.0.0.1:1", Routes: []string{"POST /transfers -> transfer", "GET /balance -> balance"},
		Labels: map[string]string{"team": "payments"}}); err != nil {
		t.Fatal(err)
	}
	f.take()
	audit.evs = nil

	steps := []struct {
		name    string
		req     ToolLabelsRequest
		err     string   // the error, or "" when the change is made
		message string   // the event's message; "" when nothing is recorded
		labels  string   // the tool's labels after
		actions string   // its action labels after
		flow    []string // the resolved labels of transfer and balance after
	}{
		{"whole tool", ToolLabelsRequest{Set: map[string]string{"data": "private", "output": "untrusted"}},
			"", "tool: (none) -> output=untrusted data=private", "map[data:private output:untrusted team:payments]", "map[]",
			[]string{"transfer output=untrusted/tool data=private/tool effect=external/default", "balance output=untrusted/tool data=private/tool effect=none/default (GET)"}},
		{"one action", ToolLabelsRequest{Action: "balance", Set: map[string]string{"output": "trusted", "effect": "none"}},
			"", "action balance: (none) -> output=trusted effect=none", "map[data:private output:untrusted team:payments]", "map[balance:map[effect:none output:trusted]]",
			[]string{"transfer output=untrusted/tool data=private/tool effect=external/default", "balance output=trusted/action data=private/tool effect=none/action"}},
		{"the same again", ToolLabelsRequest{Action: "balance", Set: map[string]string{"output": "trusted"}},
			"", "", "map[data:private output:untrusted team:payments]", "map[balance:map[effect:none output:trusted]]", nil},
		{"unset on the tool keeps other labels", ToolLabelsRequest{Unset: []string{"output"}},
			"", "tool: output=untrusted data=private -> data=private", "map[data:private team:payments]", "map[balance:map[effect:none output:trusted]]", nil},
		{"set and unset on an action", ToolLabelsRequest{Action: "balance", Set: map[string]string{"data": "public"}, Unset: []string{"effect"}},
			"", "action balance: output=trusted effect=none -> output=trusted data=public", "map[data:private team:payments]", "map[balance:map[data:public output:trusted]]", nil},
		{"unsetting the last label drops the action", ToolLabelsRequest{Action: "balance", Unset: []string{"output", "data"}},
			"", "action balance: output=trusted data=public -> (none)", "map[data:private team:payments]", "map[]", nil},
		{"an action no route has", ToolLabelsRequest{Action: "withdraw", Set: map[string]string{"effect": "external"}},
			"which no route of the tool has", "", "map[data:private team:payments]", "map[]", nil},
		{"an action no route has, unset", ToolLabelsRequest{Action: "withdraw", Unset: []string{"effect"}},
			"which no route of the tool has", "", "map[data:private team:payments]", "map[]", nil},
		{"a free-form key", ToolLabelsRequest{Set: map[string]string{"team": "x"}}, `unknown flow label "team"`, "", "map[data:private team:payments]", "map[]", nil},
		{"unset a free-form key", ToolLabelsRequest{Unset: []string{"team"}}, `unknown flow label "team"`, "", "map[data:private team:payments]", "map[]", nil},
		{"a bad value", ToolLabelsRequest{Set: map[string]string{"effect": "huge"}}, `label effect="huge"`, "", "map[data:private team:payments]", "map[]", nil},
		{"set and unset one key", ToolLabelsRequest{Set: map[string]string{"data": "public"}, Unset: []string{"data"}}, "both set and unset", "", "map[data:private team:payments]", "map[]", nil},
		{"nothing", ToolLabelsRequest{}, "give the labels to set", "", "map[data:private team:payments]", "map[]", nil},
	}
	for _, st := range steps {
		view, err := s.SetToolLabels(ctx, p, "bank", st.req)
		if st.err != "" {
			if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), st.err) {
				t.Fatalf("%s: %v; want EInvalid with %q", st.name, err, st.err)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		tool, err := s.store.Tool(ctx, "bank")
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(tool.Labels); got != st.labels {
			t.Errorf("%s: labels %s; want %s", st.name, got, st.labels)
		}
		if got := fmt.Sprint(tool.ActionLabels); got != st.actions {
			t.Errorf("%s: action labels %s; want %s", st.name, got, st.actions)
		}
		announced, evs := f.take(), audit.evs
		audit.evs = nil
		if st.message == "" {
			if len(announced) != 0 || len(evs) != 0 {
				t.Errorf("%s: announced %q and recorded %d events for no change", st.name, announced, len(evs))
			}
			continue
		}
		if !slices.Equal(announced, []string{"tool bank"}) {
			t.Errorf("%s: announced %q; want the tool", st.name, announced)
		}
		if len(evs) != 1 || evs[0].Type != warden.EventToolLabels || evs[0].Decision.Message != st.message ||
			evs[0].Target.Tool != "bank" || evs[0].Target.Action != st.req.Action || evs[0].Actor.Name != "ops" {
			t.Errorf("%s: events %+v; want one %s with %q", st.name, evs, warden.EventToolLabels, st.message)
		}
		if st.flow != nil {
			if got := flowRows(view.Flow); !slices.Equal(got, st.flow) {
				t.Errorf("%s: view\n got %q\nwant %q", st.name, got, st.flow)
			}
		}
	}

	t.Run("the egress tool", func(t *testing.T) {
		_, err := s.SetToolLabels(ctx, p, "egress", ToolLabelsRequest{Set: map[string]string{"effect": "none"}})
		if warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), "built-in egress tool") {
			t.Fatalf("egress: %v", err)
		}
	})
	t.Run("a tool that does not exist", func(t *testing.T) {
		_, err := s.SetToolLabels(ctx, p, "nosuch", ToolLabelsRequest{Set: map[string]string{"effect": "none"}})
		if warden.ErrorCode(err) != warden.ENotFound {
			t.Fatalf("nosuch: %v", err)
		}
	})
}

// flowRows writes resolved labels as "ACTION output=V/SOURCE data=V/SOURCE effect=V/SOURCE".
func flowRows(flow []apitype.ActionFlow) []string {
	var out []string
	for _, r := range flow {
		name := r.Action
		if r.Other {
			name = "*"
		}
		l := r.Labels
		row := fmt.Sprintf("%s output=%s/%s data=%s/%s effect=%s/%s", name, l.Output.Value, l.Output.Source, l.Data.Value, l.Data.Source, l.Effect.Value, l.Effect.Source)
		if l.Effect.Detail != "" {
			row += " (" + l.Effect.Detail + ")"
		}
		out = append(out, row)
	}
	return out
}

// TestToolViewResolvesFlowLabels: the view of an MCP server has a row for each pinned tool,
// decided by its annotations unless an admin labelled it, one for each labelled action not
// listed, and one for any other action; an HTTP tool has one per route action.
func TestToolViewResolvesFlowLabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newPinService(t, nil)
	p := &warden.Principal{Name: "ops", Role: warden.RoleAdmin}
	if _, err := s.AddTool(ctx, p, ToolSpec{Name: "mail", MCP: "http://127.0.0.1:1", Labels: map[string]string{"data": "private"},
		ActionLabels: map[string]map[string]string{"send_email": {"output": "trusted"}, "archive": {"effect": "internal"}}}); err != nil {
		t.Fatal(err)
	}
	manifest := func(name string, ann map[string]bool) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"name": name, "inputSchema": map[string]any{"type": "object"}, "annotations": ann})
		return b
	}
	if err := s.ObserveManifests(ctx, "mail", []json.RawMessage{
		manifest("send_email", map[string]bool{"destructiveHint": true}),
		manifest("read_inbox", map[string]bool{"readOnlyHint": true, "openWorldHint": true}),
		manifest("list_folders", map[string]bool{"readOnlyHint": true, "openWorldHint": false}),
		manifest("move", map[string]bool{"destructiveHint": false}),
	}); err != nil {
		t.Fatal(err)
	}
	view, err := s.ToolView(ctx, "mail")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"archive output=untrusted/default data=private/tool effect=internal/action",
		"list_folders output=trusted/annotation data=private/tool effect=none/annotation (readOnlyHint=true)",
		"move output=untrusted/default data=private/tool effect=internal/annotation (destructiveHint=false)",
		"read_inbox output=untrusted/annotation data=private/tool effect=none/annotation (readOnlyHint=true)",
		"send_email output=trusted/action data=private/tool effect=external/annotation (destructiveHint=true)",
		"* output=untrusted/default data=private/tool effect=external/default",
	}
	if got := flowRows(view.Flow); !slices.Equal(got, want) {
		t.Fatalf("mail:\n got %q\nwant %q", got, want)
	}
	for _, r := range view.Flow {
		if wantState := map[bool]string{true: warden.ManifestPinned, false: ""}[r.Action != "archive" && !r.Other]; r.Manifest != wantState {
			t.Errorf("row %q: manifest %q; want %q", r.Action, r.Manifest, wantState)
		}
	}

	if _, err := s.AddTool(ctx, p, ToolSpec{Name: "wiki", HTTP: "http://127.0.0.1:1",
		Routes: []string{"GET /pages/{p} -> read", "HEAD /pages/{p} -> read", "GET /pages/{p}/raw -> read", "PUT /pages/{p} -> write", "* /admin -> admin",
			"GET /sync -> sync", "POST /sync -> sync"}}); err != nil {
		t.Fatal(err)
	}
	view, err = s.ToolView(ctx, "wiki")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"read output=untrusted/default data=public/default effect=none/default (GET)",
		"write output=untrusted/default data=public/default effect=external/default",
		"admin output=untrusted/default data=public/default effect=external/default",
		// The gateway labels an action, not a route: one that also writes is taken as writing.
		"sync output=untrusted/default data=public/default effect=external/default",
	}
	if got := flowRows(view.Flow); !slices.Equal(got, want) {
		t.Fatalf("wiki:\n got %q\nwant %q", got, want)
	}
}

// TestApplyFlowLabels: warden apply stores the flow labels a document declares, sees a change
// of either kind as an update, and a tool whose labels a person set and unset again as
// unchanged.
func TestApplyFlowLabels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newPinService(t, nil)
	p := &warden.Principal{Name: "ops", Role: warden.RoleAdmin}
	doc := func(labels map[string]string, actions map[string]map[string]string) Document {
		return Document{Tools: []ToolSpec{{Name: "bank", HTTP: "http://127.0.0.1:1", Routes: []string{"POST /transfers -> transfer", "GET /balance -> balance"},
			Labels: labels, ActionLabels: actions}}}
	}
	apply := func(d Document) string {
		t.Helper()
		plan, err := s.Apply(ctx, p, d, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Changes) != 1 {
			t.Fatalf("plan %+v", plan)
		}
		return plan.Changes[0].Op
	}
	first := doc(map[string]string{"data": "private"}, map[string]map[string]string{"transfer": {"effect": "external"}})
	if op := apply(first); op != "create" {
		t.Fatalf("first apply: %s", op)
	}
	tool, err := s.store.Tool(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	if tool.Labels["data"] != "private" || tool.ActionLabels["transfer"]["effect"] != "external" {
		t.Fatalf("stored %v %v", tool.Labels, tool.ActionLabels)
	}
	steps := []struct {
		name string
		doc  Document
		want string
	}{
		{"the same", first, "unchanged"},
		{"an action's label", doc(map[string]string{"data": "private"}, map[string]map[string]string{"transfer": {"effect": "internal"}}), "update"},
		{"a tool's label", doc(map[string]string{"data": "public"}, map[string]map[string]string{"transfer": {"effect": "internal"}}), "update"},
		{"no action labels", doc(map[string]string{"data": "public"}, nil), "update"},
		{"an empty map is none", doc(map[string]string{"data": "public"}, map[string]map[string]string{}), "unchanged"},
	}
	for _, st := range steps {
		if op := apply(st.doc); op != st.want {
			t.Errorf("%s: %s; want %s", st.name, op, st.want)
		}
	}
	if _, err := s.SetToolLabels(ctx, p, "bank", ToolLabelsRequest{Action: "balance", Set: map[string]string{"output": "trusted"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetToolLabels(ctx, p, "bank", ToolLabelsRequest{Action: "balance", Unset: []string{"output"}}); err != nil {
		t.Fatal(err)
	}
	if op := apply(doc(map[string]string{"data": "public"}, nil)); op != "unchanged" {
		t.Errorf("after a label set and unset: %s; want unchanged", op)
	}
	bad := doc(nil, map[string]map[string]string{"withdraw": {"effect": "external"}})
	if _, err := s.Apply(ctx, p, bad, false); err == nil || !strings.Contains(warden.ErrorMessage(err), `action_labels name "withdraw"`) {
		t.Fatalf("a label on an action no route has: %v", err)
	}
}

// FuzzFlowLabels: whatever action, key and value a document or a request names, ToolOf either
// refuses it as invalid input or returns a tool whose every flow label would resolve to a valid
// value, and never panics.
func FuzzFlowLabels(f *testing.F) {
	f.Add(true, "transfer", "effect", "external")
	f.Add(false, "send_email", "output", "trusted")
	f.Add(false, "resources/read", "data", "private")
	f.Add(true, "a b", "effect", "none")
	f.Add(false, "x\x00", "colour", "red")
	f.Fuzz(func(t *testing.T, http bool, action, key, value string) {
		spec := ToolSpec{Name: "t", MCP: "https://mcp.example.com/mcp"}
		if http {
			spec = ToolSpec{Name: "t", HTTP: "https://api.example.com", Routes: []string{"POST /transfers -> transfer"}}
		}
		spec.Labels = map[string]string{key: value}
		spec.ActionLabels = map[string]map[string]string{action: {key: value}}
		tool, err := ToolOf(spec)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("ToolOf: %v is not invalid input", err)
			}
			return
		}
		for _, flow := range ResolveToolFlow(tool, nil) {
			for k, l := range map[string]warden.FlowLabel{"output": flow.Labels.Output, "data": flow.Labels.Data, "effect": flow.Labels.Effect} {
				if warden.ValidateFlowLabel(k, l.Value) != nil {
					t.Fatalf("action %q resolves %s=%q", flow.Action, k, l.Value)
				}
			}
		}
	})
}
