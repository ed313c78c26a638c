package route

import (
	"errors"
	"maps"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

// FuzzParse checks that Parse never panics, refuses only with EInvalid, that what it accepts
// round-trips through String, and that every accepted route can be matched by some request.
func FuzzParse(f *testing.F) {
	for _, tt := range goodRoutes {
		f.Add(tt.in)
	}
	for _, tt := range badRoutes {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if code := warden.ErrorCode(err); code != warden.EInvalid {
				t.Fatalf("Parse(%q): code %s, want %s", s, code, warden.EInvalid)
			}
			return
		}
		canon := r.String()
		r2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", s, canon, err)
		}
		if r2.String() != canon || r2.Method != r.Method || r2.Pattern != r.Pattern || r2.Action != r.Action || r2.Resource != r.Resource {
			t.Fatalf("Parse(%q) = %q, which parses to %q", s, canon, r2)
		}

		// A request for the pattern with every variable filled in matches the route.
		tab, err := Compile([]string{s})
		if err != nil {
			t.Fatalf("Compile(%q): %v", s, err)
		}
		var req, fwd strings.Builder
		for _, seg := range r.segments {
			req.WriteByte('/')
			fwd.WriteByte('/')
			if seg.kind == literalSegment {
				req.WriteString(seg.value)
				fwd.WriteString(url.PathEscape(seg.value))
			} else {
				req.WriteString("v")
				fwd.WriteString("v")
			}
		}
		if r.trailing || len(r.segments) == 0 {
			req.WriteByte('/')
			fwd.WriteByte('/')
		}
		method := r.Method
		if method == "*" {
			method = "GET"
		}
		m, err := tab.Match(method, req.String())
		if err != nil {
			t.Fatalf("route %q does not match %s %s: %v", canon, method, req.String(), err)
		}
		if m.Route.String() != canon || m.Path != fwd.String() {
			t.Fatalf("route %q: %s matched %q and forwarded as %s", canon, req.String(), m.Route, m.Path)
		}
	})
}

// fuzzRoutes is a table with every kind of segment, trailing slashes, "*" and overlapping routes.
var fuzzRoutes = []string{
	"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}",
	"POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}",
	"GET /repos/{owner}/{repo}/{what} -> repo.what repo:{owner}/{repo}/{what}",
	"GET /public/{file} -> public.read file:{file}",
	"GET /admin/{x...} -> admin admin:{x}",
	"GET /files/{path...} -> files.read file:{path}",
	"* /files/README -> files.readme",
	"GET /dirs/{d}/ -> dirs.read dir:{d}",
	"GET /user -> user.read",
	"GET / -> root",
	"* /x/{a}/{b}/{c...} -> x {a}|{b}|{c}",
}

// FuzzMatch checks that Match never panics, refuses only with EInvalid or ErrNoRoute, and that a
// path it accepts is forwarded in a canonical form that is free of traversal and separator tricks
// and that matches again to the same route and values.
func FuzzMatch(f *testing.F) {
	for _, p := range trickPaths {
		f.Add("GET", p)
	}
	for _, p := range []string{"/repos/o/r/issues", "/public/a%20b", "/files/a/b/c", "/dirs/d/", "/", "/x/1/2/3/4", "/public/r%C3%A9sum%C3%A9", "/public/[a]!"} {
		for _, m := range []string{"GET", "HEAD", "POST", "get", "PROPFIND"} {
			f.Add(m, p)
		}
	}
	tab, err := Compile(fuzzRoutes)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, raw string) {
		m, err := tab.Match(method, raw)
		if err != nil {
			if code := warden.ErrorCode(err); code != warden.EInvalid && !errors.Is(err, ErrNoRoute) {
				t.Fatalf("Match(%q, %q): %v, code %s; want %s or ErrNoRoute", method, raw, err, code, warden.EInvalid)
			}
			return
		}
		p := m.Path
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "//") ||
			strings.Contains(strings.ToLower(p), "%2f") || strings.Contains(strings.ToLower(p), "%5c") {
			t.Fatalf("Match(%q, %q) forwards %q", method, raw, p)
		}
		for i := 0; i < len(p); i++ {
			if c := p[i]; c <= 0x20 || c >= 0x7f || c == '\\' || c == ';' || c == '?' || c == '#' {
				t.Fatalf("Match(%q, %q) forwards %q, with byte %q", method, raw, p, c)
			}
		}
		if p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/") {
			t.Fatalf("Match(%q, %q) forwards %q, which path.Clean changes", method, raw, p)
		}
		// An upstream that decodes before routing sees the same segments, clean; one that decodes
		// twice sees nothing more.
		dec, err := url.PathUnescape(p)
		if err != nil {
			t.Fatalf("Match(%q, %q) forwards %q, which does not decode: %v", method, raw, p, err)
		}
		if strings.Count(dec, "/") != strings.Count(p, "/") || dec != "/" && path.Clean(dec) != strings.TrimSuffix(dec, "/") {
			t.Fatalf("Match(%q, %q) forwards %q, which decodes to %q", method, raw, p, dec)
		}
		if dec2, err := url.PathUnescape(dec); err == nil && dec2 != dec {
			t.Fatalf("Match(%q, %q) forwards %q, which decodes to %q and then to %q", method, raw, p, dec, dec2)
		}
		again, err := tab.Match(method, p)
		if err != nil {
			t.Fatalf("Match(%q, %q) forwards %q, which does not match: %v", method, raw, p, err)
		}
		if again.Route != m.Route || again.Path != p || again.Resource != m.Resource || !maps.Equal(again.Params, m.Params) {
			t.Fatalf("Match(%q, %q) = %s %v %q, but its path %q matches %s %v %q",
				method, raw, m.Route, m.Params, m.Resource, p, again.Route, again.Params, again.Path)
		}
	})
}
