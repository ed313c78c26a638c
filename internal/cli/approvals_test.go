package cli

import (
	"strings"
	"testing"
)

// An approver is told when the body of the call it approves was not inspected, and which bytes
// an approval covers; a JSON body, or no body, says nothing.
func TestUninspectedBody(t *testing.T) {
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	cases := []struct {
		args string
		want string // a substring, or "" for no line
	}{
		{`{"body_sha256":"` + sum + `"}`, "NOT INSPECTED"},
		{`{"query":{"a":"1"},"body_sha256":"` + sum + `"}`, sum},
		{`{"body":{"to":"bob"},"body_sha256":"` + sum + `"}`, ""},
		{`{"body":null,"body_sha256":"` + sum + `"}`, ""},
		{`{"to":"bob"}`, ""},
		{`not json`, ""},
		{``, ""},
	}
	for _, c := range cases {
		got := uninspectedBody([]byte(c.args))
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("uninspectedBody(%s) = %q, want %q", c.args, got, c.want)
		}
	}
}
