package gateway

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestObservedText(t *testing.T) {
	tests := []struct {
		in   string
		want []string // every form observed
	}{
		{"plain text, no escapes", []string{"plain text, no escapes"}},
		{`write to mallory\u0040evil.example`, []string{`write to mallory\u0040evil.example`, "write to mallory@evil.example"}},
		{`{"to":"a\"b\/c"}`, []string{`{"to":"a\"b\/c"}`, `{"to":"a"b/c"}`}},
		{"pay DE89&nbsp;3704&#32;0044 to x&#64;y.example", []string{"pay DE89&nbsp;3704&#32;0044 to x&#64;y.example", "pay DE89\u00a03704 0044 to x@y.example"}},
		{`bad \uZZZZ and trailing \`, []string{`bad \uZZZZ and trailing \`}},
		{`line\nbreak`, []string{`line\nbreak`, "line break"}},
	}
	for _, tt := range tests {
		got := observedText(tt.in)
		var forms []string
		switch g := got.(type) {
		case string:
			forms = []string{g}
		case []any:
			for _, f := range g {
				forms = append(forms, f.(string))
			}
		}
		if strings.Join(forms, "|") != strings.Join(tt.want, "|") {
			t.Errorf("observedText(%q) = %q, want %q", tt.in, forms, tt.want)
		}
	}
}

func FuzzJSONUnescape(f *testing.F) {
	for _, s := range []string{`a\u0040b`, `\`, `\u12`, `\"\\\/`, "&#64;\\u00e9", `\uD83D\uDE00`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := jsonUnescape(s)
		if len(u) > 3*len(s) {
			t.Fatalf("%q grew to %d bytes", s, len(u))
		}
		if !strings.Contains(s, `\`) && u != s {
			t.Fatalf("%q without escapes changed to %q", s, u)
		}
		if utf8.ValidString(s) && !strings.Contains(s, `\u`) && !utf8.ValidString(u) {
			t.Fatalf("%q unescaped to invalid UTF-8 %q", s, u)
		}
		_ = observedText(s)
	})
}
