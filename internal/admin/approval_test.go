package admin

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
)

func TestToolApproval(t *testing.T) {
	http := ToolSpec{Name: "bank", HTTP: "https://bank.example.com", Routes: []string{"POST /transfers -> transfer", "GET /balance -> balance"}}
	tests := []struct {
		name     string
		spec     ToolSpec
		approval []string
		want     []string
		err      string
	}{
		{"none", http, nil, nil, ""},
		{"routes' actions", http, []string{"transfer", "transfer"}, []string{"transfer"}, ""},
		{"every action", http, []string{"*"}, []string{"*"}, ""},
		{"star and more", http, []string{"*", "transfer"}, nil, "either"},
		{"not a route's action", http, []string{"tranfser"}, nil, "no route of the tool has"},
		{"empty", http, []string{""}, nil, "invalid action"},
		{"mcp: any tool name", ToolSpec{Name: "fs", MCP: "https://fs.example.com/mcp"}, []string{"write_file"}, []string{"write_file"}, ""},
		{"mcp: a method", ToolSpec{Name: "fs", MCP: "https://fs.example.com/mcp"}, []string{"resources/read", "Write.File-2"}, []string{"resources/read", "Write.File-2"}, ""},
		// The MCP specification's tool-name rule: a name an upstream could read as another.
		{"mcp: zero-width space", ToolSpec{Name: "fs", MCP: "https://fs.example.com/mcp"}, []string{"write_file\u200b"}, nil, "neither an MCP tool name"},
		{"mcp: NUL", ToolSpec{Name: "fs", MCPCommand: "fs-server"}, []string{"write_file\x00"}, nil, "neither an MCP tool name"},
		{"mcp: not ASCII", ToolSpec{Name: "fs", MCP: "https://fs.example.com/mcp"}, []string{"wrïte"}, nil, "neither an MCP tool name"},
		{"mcp: a path", ToolSpec{Name: "fs", MCP: "https://fs.example.com/mcp"}, []string{"files/write"}, nil, "neither an MCP tool name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Approval = tt.approval
			tool, err := ToolOf(spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(warden.ErrorMessage(err), tt.err) {
					t.Fatalf("error %v; want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tool.Approval, tt.want) {
				t.Fatalf("Approval = %q; want %q", tool.Approval, tt.want)
			}
		})
	}
}

func TestGrantApproval(t *testing.T) {
	for _, tt := range []struct {
		yaml, json string
		want       GrantApproval
		err        bool
	}{
		{"true", "true", ApprovalRequired, false},
		{"false", "false", "", false},
		{"required", `"required"`, ApprovalRequired, false},
		{"waived", `"waived"`, ApprovalWaived, false},
		{"maybe", `"maybe"`, "", true},
		{"1", "1", "", true},
	} {
		var y, j GrantApproval
		yerr := yaml.Unmarshal([]byte("approval: "+tt.yaml), &struct {
			A *GrantApproval `yaml:"approval"`
		}{&y})
		jerr := json.Unmarshal([]byte(tt.json), &j)
		if (yerr != nil) != tt.err || (jerr != nil) != tt.err || y != tt.want || j != tt.want {
			t.Errorf("%s: yaml %q %v, json %q %v; want %q, error %v", tt.yaml, y, yerr, j, jerr, tt.want, tt.err)
		}
	}
	// A grant compiles to the annotation it says.
	doc := Document{Grants: []GrantDecl{
		{Agent: "a", Tool: "bank", Actions: []string{"balance"}, Approval: ApprovalWaived},
		{Agent: "a", Tool: "bank", Actions: []string{"transfer"}, Approval: ApprovalRequired},
	}}
	d, err := validateDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := d.grantsText()
	if !strings.Contains(text, `@approval("waived")`) || !strings.Contains(text, `@approval("required")`) {
		t.Fatalf("grants:\n%s", text)
	}
}
