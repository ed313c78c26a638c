package cedar

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

const mailSchema = `{
  "type": "object",
  "properties": {
    "to": {"type": "string"},
    "participants": {"type": "array", "items": {"type": "string"}, "description": "ignored", "minItems": 1},
    "count": {"type": "integer"},
    "amount": {"type": "number"},
    "urgent": {"type": ["boolean", "null"]},
    "kind": {"enum": ["memo", "invite", 3]},
    "meta": {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}, "required": ["tags"]}
  },
  "required": ["to"]
}`

// TestInputSchemaCheck: a value that does not fit its schema is refused with the argument's
// path and the expected type; what fits passes; keywords outside the subset change nothing.
func TestInputSchemaCheck(t *testing.T) {
	s, err := CompileInputSchema(json.RawMessage(mailSchema))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, args, want string // want "" : fits
	}{
		{"fits", `{"to": "a", "participants": ["a@x", "b@y"], "count": 2, "amount": 9.5, "urgent": null, "kind": "memo"}`, ""},
		{"integral fraction is an integer", `{"to": "a", "count": 4.0}`, ""},
		{"enum number", `{"to": "a", "kind": 3.0}`, ""},
		{"unknown property", `{"to": "a", "extra": {"any": ["thing"]}}`, ""},
		{"one string for a list", `{"to": "a", "participants": "a@x,b@y"}`, "argument .participants: expected an array of strings, got a string"},
		{"a member of the wrong type", `{"to": "a", "participants": ["a@x", 7]}`, "argument .participants[1]: expected a string, got an integer"},
		{"fraction for an integer", `{"to": "a", "count": 2.5}`, "argument .count: expected an integer, got a number"},
		{"string for a number", `{"to": "a", "amount": "100"}`, "argument .amount: expected a number, got a string"},
		{"missing required", `{"participants": []}`, "argument .to: required, and missing"},
		{"nested required", `{"to": "a", "meta": {}}`, "argument .meta.tags: required, and missing"},
		{"type list", `{"to": "a", "urgent": "yes"}`, "argument .urgent: expected a boolean or null, got a string"},
		{"not in enum", `{"to": "a", "kind": "spam"}`, "argument .kind: not one of the values the schema's enum allows"},
		{"null for a string", `{"to": null}`, "argument .to: expected a string, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := json.NewDecoder(strings.NewReader(tt.args))
			d.UseNumber()
			var args map[string]any
			if err := d.Decode(&args); err != nil {
				t.Fatal(err)
			}
			err := s.Check(args)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestInputSchemaRefused: a schema warden cannot read as the subset says, or too large or
// deep to check on every call, is refused when the tool declares it.
func TestInputSchemaRefused(t *testing.T) {
	deep := strings.Repeat(`{"type":"object","properties":{"a":`, 20) + `{}` + strings.Repeat(`}}`, 20)
	var b strings.Builder
	b.WriteString(`{"properties":{`)
	for i := range 2100 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"p` + strconv.Itoa(i) + `":{}`)
	}
	b.WriteString(`}}`)
	tests := []struct{ name, schema, want string }{
		{"unknown type", `{"type": "list"}`, `unknown type "list"`},
		{"type not a name", `{"type": 5}`, "type is a JSON type's name"},
		{"properties not an object", `{"properties": ["a"]}`, "properties is an object of schemas"},
		{"required not names", `{"required": [1]}`, "required is a list of property names"},
		{"empty enum", `{"enum": []}`, "enum is a list of 1 to 1000 values"},
		{"a subschema not an object", `{"properties": {"a": 5}}`, ".a: a schema is a JSON object"},
		{"too deep", deep, "nested more than 16 deep"},
		{"too many subschemas", b.String(), "more than 2000 subschemas"},
		{"too large", `{"description": "` + strings.Repeat("x", 70<<10) + `"}`, "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileInputSchema(json.RawMessage(tt.schema))
			if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want EInvalid with %q", err, tt.want)
			}
		})
	}
}

// TestDecideInputSchema: the engine refuses a decision-only action's arguments that do not fit
// its schema as invalid_arguments, before any policy — a permit that would allow anything does
// not — and an action the tool does not declare as unknown_action.
func TestDecideInputSchema(t *testing.T) {
	tools := append(testTools(), &warden.Tool{Name: "cal", Kind: warden.ToolDecisionOnly, Risk: warden.RiskLow, Actions: []warden.ToolAction{
		{Name: "invite", InputSchema: json.RawMessage(mailSchema)},
		{Name: "list"},
	}})
	e, err := Compile(map[string]string{"p.cedar": `permit(principal, action in Action::"cal", resource);`}, tools, 1)
	if err != nil {
		t.Fatal(err)
	}
	decide := func(action string, args map[string]any) warden.Decision {
		return e.Decide(&warden.Request{Agent: testAgent("bot"), Tool: tools[len(tools)-1], Action: action, Arguments: args, Time: testNow})
	}
	if d := decide("invite", map[string]any{"to": "a", "participants": []any{"a@x", "b@y"}}); d.Effect != warden.EffectAllow {
		t.Fatalf("fitting arguments: %+v", d)
	}
	d := decide("invite", map[string]any{"to": "a", "participants": "a@x,b@y"})
	if d.Effect != warden.EffectDeny || d.Reason != warden.ReasonInvalidArguments || d.Message != "argument .participants: expected an array of strings, got a string" {
		t.Fatalf("one string for a list: %+v", d)
	}
	if d := decide("list", map[string]any{"anything": "goes"}); d.Effect != warden.EffectAllow {
		t.Fatalf("an action without a schema: %+v", d)
	}
	if d := decide("delete", nil); d.Effect != warden.EffectDeny || d.Reason != warden.ReasonUnknownAction {
		t.Fatalf("an undeclared action: %+v", d)
	}
}

// TestManifestSchemas: an MCP tool's pinned inputSchema types its calls — a member of the wrong
// type is invalid_arguments, a missing one is the server's to refuse — while a held manifest's
// and a schema warden cannot read are not used, the latter named; MayPermit (listings) asks
// with no arguments and is not refused by a schema.
func TestManifestSchemas(t *testing.T) {
	pinned := func(name, schema, state string) *warden.ToolManifest {
		return &warden.ToolManifest{Tool: "everything", Name: name, State: state,
			Manifest: json.RawMessage(`{"inputSchema":` + schema + `,"name":"` + name + `"}`)}
	}
	list := `{"type":"object","properties":{"to":{"type":"array","items":{"type":"string"}}},"required":["to"]}`
	schemas, skipped := ManifestSchemas([]*warden.ToolManifest{
		pinned("invite", list, warden.ManifestPinned),
		pinned("held", list, warden.ManifestHeld),
		pinned("odd", `{"type":"money"}`, warden.ManifestPinned),
	})
	if len(schemas["everything"]) != 1 || schemas["everything"]["invite"] == nil {
		t.Fatalf("schemas: %v", schemas)
	}
	if len(skipped) != 1 || !strings.Contains(skipped[0], "everything.odd: ") {
		t.Fatalf("skipped: %q", skipped)
	}
	e := mustCompile(t, map[string]string{"p.cedar": `permit(principal, action in Action::"everything", resource);`}).WithInputSchemas(schemas)
	decide := func(action string, args map[string]any) warden.Decision {
		r := req("bot", "everything:"+action)
		r.Arguments = args
		return e.Decide(r)
	}
	if d := decide("invite", map[string]any{"to": "a@x,b@y"}); d.Reason != warden.ReasonInvalidArguments {
		t.Fatalf("one string for a list: %+v", d)
	}
	for _, args := range []map[string]any{{"to": []any{"a@x"}}, {}} {
		if d := decide("invite", args); d.Effect != warden.EffectAllow {
			t.Fatalf("%v: %+v", args, d)
		}
	}
	if d := decide("held", map[string]any{"to": "a@x,b@y"}); d.Effect != warden.EffectAllow {
		t.Fatalf("a held manifest's schema was used: %+v", d)
	}
	strict := mustCompile(t, map[string]string{"p.cedar": `permit(principal, action in Action::"everything", resource);`})
	s, _ := CompileInputSchema(json.RawMessage(list))
	strict = strict.WithInputSchemas(map[string]map[string]*InputSchema{"everything": {"invite": s}})
	if !strict.MayPermit(testAgent("bot"), testTool("everything"), "invite") {
		t.Fatal("a listing is refused by the schema's required members")
	}
}
