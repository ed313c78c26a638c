package warden_test

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

// The MCP specification's tool-name rule (2025-11-25): 1-128 ASCII letters, digits, '_', '-'
// and '.'. Each refused name below is one an upstream could read as an allowed tool.
func TestValidateMCPToolName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"transfer", true},
		{"Transfer", true}, // case-sensitive: a name of its own, not refused for its case
		{"get_user.v2-beta", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"transfer ", false},
		{" transfer", false},
		{"transfer\n", false},
		{"transfer\u200b", false},
		{"transfer\x00", false},
		{"transfer\ufffd", false},
		{"tränsfer", false},
		{"files/read", false},
		{"a:b", false},
	} {
		err := warden.ValidateMCPToolName(c.name)
		if (err == nil) != c.ok {
			t.Errorf("ValidateMCPToolName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("ValidateMCPToolName(%q): code %q, want invalid", c.name, warden.ErrorCode(err))
		}
	}
}
