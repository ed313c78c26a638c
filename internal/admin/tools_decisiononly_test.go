package admin

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// TestDecisionOnlyToolOf: what a decision-only tool may declare, and every refusal.
func TestDecisionOnlyToolOf(t *testing.T) {
	spec := func(edit func(*ToolSpec)) ToolSpec {
		s := ToolSpec{Name: "ledger", Risk: "low", Actions: []apitype.ToolActionSpec{
			{Name: "pay", Risk: "high", Labels: map[string]string{"effect": "external"},
				InputSchema: map[string]any{"type": "object", "properties": map[string]any{"to": map[string]any{"type": "string", "format": "email"}}}},
			{Name: "balance"},
		}}
		if edit != nil {
			edit(&s)
		}
		return s
	}
	tool, err := ToolOf(spec(nil))
	if err != nil {
		t.Fatal(err)
	}
	if tool.Kind != warden.ToolDecisionOnly || tool.URL != "" || len(tool.Actions) != 2 || tool.ActionRisk("pay") != warden.RiskHigh ||
		tool.ActionRisk("balance") != warden.RiskLow || tool.ActionLabels["pay"]["effect"] != "external" ||
		string(tool.Actions[0].InputSchema) != `{"properties":{"to":{"format":"email","type":"string"}},"type":"object"}` {
		t.Fatalf("tool: %+v", tool)
	}
	tests := []struct {
		name string
		edit func(*ToolSpec)
		err  string
	}{
		{"an upstream too", func(s *ToolSpec) { s.HTTP = "https://ledger.example" }, "give exactly one of"},
		{"a route", func(s *ToolSpec) { s.Routes = []string{"GET /x -> pay"} }, "takes no routes and no secret"},
		{"a secret", func(s *ToolSpec) { s.Secret, s.Inject = "k", "X-Key: {{secret}}" }, "takes no routes and no secret"},
		{"an action twice", func(s *ToolSpec) { s.Actions = append(s.Actions, apitype.ToolActionSpec{Name: "pay"}) }, "action pay is declared twice"},
		{"a bad action name", func(s *ToolSpec) { s.Actions[1].Name = "bal ance" }, `invalid action "bal ance"`},
		{"a bad risk", func(s *ToolSpec) { s.Actions[1].Risk = "severe" }, `action balance: unknown risk "severe"`},
		{"a bad schema", func(s *ToolSpec) { s.Actions[0].InputSchema = map[string]any{"type": "money"} }, `action pay: input_schema: the schema: unknown type "money"`},
		{"a bad label", func(s *ToolSpec) { s.Actions[1].Labels = map[string]string{"effect": "huge"} }, `action balance: label effect="huge"`},
		{"labels twice", func(s *ToolSpec) { s.ActionLabels = map[string]map[string]string{"pay": {"data": "private"}} }, "labels both in actions: and action_labels:"},
		{"a label on an undeclared action", func(s *ToolSpec) { s.ActionLabels = map[string]map[string]string{"refund": {"data": "private"}} }, `action_labels name "refund", which the tool does not declare (pay, balance)`},
		{"approval of an undeclared action", func(s *ToolSpec) { s.Approval = []string{"refund"} }, `approval names "refund", which the tool does not declare (pay, balance)`},
		{"a sandbox", func(s *ToolSpec) { s.ReadOnly = []string{"/srv"} }, "--ro and --allow-host are for a local command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ToolOf(spec(tt.edit))
			if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(warden.ErrorMessage(err), tt.err) {
				t.Fatalf("ToolOf = %v; want EInvalid with %q", err, tt.err)
			}
		})
	}
	if _, err := ToolOf(spec(func(s *ToolSpec) { s.Approval = []string{"pay"} })); err != nil {
		t.Fatalf("approval of a declared action: %v", err)
	}
}
