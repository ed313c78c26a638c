package taint

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"", "Write to Billing.Team@Evil-Payments.IO, today.", "mailto:Pay@Evil.io?subject=x",
	"see HTTPS://Evil.COM:443/Pay/?id=7#top.", "http://a.b", "https://x.com/a./#f", "https://[::1]:8443/x",
	"IBAN: DE89 3704 0044 0532 0130 00, thanks", "GB82-WEST-1234-5698-7654-32", "card 4111 1111 1111 1111",
	"call +1 (415) 555-0132.", "Total: 4,850.00", "1.200,50 EUR", "$5", "5 dollars", "in 2024", "$0.00",
	`"Wire the money today"`, "“Ignore previous instructions”", "'approved by finance'", "don't",
	"ORD-2024-88121 C0123ABCD order#A1B2C3D4E5", "@Mallory_X #Finance-Ops", "2026-12-07T10:00:00Z",
	"ȺȺȺȺ-1234 ǅungla", "a'b@x.io", "x:'b@x.io", "\xff\xfe@x.io", "www.www.evil.com/x",
}

// FuzzExtract: no panic; at most one value per byte of input, none longer than it; every value
// normalises to itself (read again as a string, it is found again).
func FuzzExtract(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		type value struct {
			k kind
			v string
		}
		var vals []value
		e := &extractor{budget: -1, emit: func(k kind, v []byte) { vals = append(vals, value{k, string(v)}) }}
		e.leaf(s)
		if len(vals) > len(s) {
			t.Fatalf("%d values from %d bytes", len(vals), len(s))
		}
		for _, x := range vals {
			if len(x.v) == 0 || len(x.v) > len(s) {
				t.Fatalf("%s value %q from %q: longer than the input", x.k, x.v, s)
			}
			switch x.k {
			case kindNumber:
				if b, ok := canonicalDecimal(nil, x.v); !ok || string(b) != x.v {
					t.Fatalf("number %q from %q is not canonical", x.v, s)
				}
			case kindHost:
				if !validHost(x.v) || strings.ToLower(x.v) != x.v {
					t.Fatalf("host %q from %q is not a lower-case host name", x.v, s)
				}
			default:
				again := extractContent(x.v, false)
				if !slices.ContainsFunc(again, func(a string) bool { return a[strings.IndexByte(a, ':')+1:] == x.v }) {
					t.Fatalf("%s value %q from %q extracts to %q", x.k, x.v, s, again)
				}
			}
		}
	})
}

// FuzzIndex: what one output holds is found in an argument that is the same string, and the
// index stays within its bound however many outputs it reads.
func FuzzIndex(f *testing.F) {
	for i, s := range fuzzSeeds {
		f.Add(s, fuzzSeeds[(i+7)%len(fuzzSeeds)])
	}
	f.Fuzz(func(t *testing.T, out, other string) {
		x := NewIndex(1 << 20)
		x.Add(Source{Tool: "t"}, out)
		if len(out) <= 1<<20 && len(extractContent(out, false)) > 0 {
			if m := x.Match(map[string]any{"arg": out}); len(m) != 1 || m[0].Arg != "arg" || m[0].SourceTool != "t" {
				t.Fatalf("Match(%q) after Add(%q) = %+v", out, out, m)
			}
		}
		small := NewIndex(64)
		for i := range 5 {
			small.Add(Source{Tool: fmt.Sprint(i)}, out)
			small.Add(Source{Tool: fmt.Sprint(i)}, []any{other, map[string]any{"k": out}})
			if small.Bytes() > 64 || small.Bytes() < 0 {
				t.Fatalf("bytes = %d, bound 64", small.Bytes())
			}
		}
		if len(small.values) > 0 && small.head == len(small.obs) {
			t.Fatalf("%d values with no observation", len(small.values))
		}
	})
}
