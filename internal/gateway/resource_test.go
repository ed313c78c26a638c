package gateway

import "testing"

// TestResourceAllows: a token bound to an MCP endpoint is good there only — also when warden's
// public URL has a path, behind a proxy (fails when only a path of exactly /mcp counts as bound:
// such a token was then good everywhere).
func TestResourceAllows(t *testing.T) {
	for _, tc := range []struct {
		aud  []string
		path string
		want bool
	}{
		{[]string{"https://w.example.com"}, "/http/mail/x", true},
		{[]string{"https://w.example.com/mcp"}, "/mcp", true},
		{[]string{"https://w.example.com/mcp"}, "/mcp/notes", false},
		{[]string{"https://w.example.com/mcp"}, "/http/notes/x", false},
		{[]string{"https://w.example.com/mcp"}, "/v1/authorize", false},
		{[]string{"https://w.example.com/mcp/notes"}, "/mcp/notes", true},
		{[]string{"https://w.example.com/mcp/notes"}, "/mcp", false},
		{[]string{"https://w.example.com/mcp/mcpx"}, "/mcp/mcpx", true},
		{[]string{"https://w.example.com/warden/mcp"}, "/mcp", true},
		{[]string{"https://w.example.com/warden/mcp"}, "/http/notes/x", false},
		{[]string{"https://w.example.com/warden/mcp"}, "/v1/authorize", false},
		{[]string{"https://w.example.com/warden/mcp/notes"}, "/mcp/other", false},
		{[]string{"https://w.example.com/warden/mcp/notes"}, "/mcp/notes", true},
	} {
		if got := resourceAllows(tc.aud, tc.path); got != tc.want {
			t.Errorf("resourceAllows(%v, %q) = %v, want %v", tc.aud, tc.path, got, tc.want)
		}
	}
}
