package oauthas

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// TestParseAuthorizeScope: a scope is space-separated tokens of printable ASCII without '"' and
// '\' (RFC 6749 §3.3); any other is invalid_scope, sent back to the client's redirect URI.
func TestParseAuthorizeScope(t *testing.T) {
	base := "client_id=cli_1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code&code_challenge=" +
		strings.Repeat("a", 43) + "&code_challenge_method=S256&scope="
	for scope, valid := range map[string]bool{
		"":                              true,
		"mcp":                           true,
		"mcp read write:repo/x":         true,
		`mcp "read"`:                    false,
		`mcp\read`:                      false,
		"mcp  read":                     false,
		" mcp":                          false,
		"mcp\tread":                     false,
		"mcp rëad":                      false,
		strings.Repeat("s", maxScope+1): false,
	} {
		q, err := url.ParseQuery(base + url.QueryEscape(scope))
		if err != nil {
			t.Fatal(err)
		}
		req, _, err := parseAuthorize(q, fuzzLookup, fuzzResource, fuzzIssuer+"/mcp")
		var re *redirectError
		switch {
		case valid && err != nil:
			t.Errorf("scope %q refused: %v", scope, err)
		case valid && req.Scope != scope:
			t.Errorf("scope %q kept as %q", scope, req.Scope)
		case !valid && (!errors.As(err, &re) || re.code != "invalid_scope"):
			t.Errorf("scope %q: want invalid_scope, got %v", scope, err)
		}
	}
}
