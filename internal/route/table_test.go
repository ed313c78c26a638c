package route

import (
	"errors"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden"
)

func mustCompile(t testing.TB, routes ...string) *Table {
	t.Helper()
	tab, err := Compile(routes)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestMatchPrecedence(t *testing.T) {
	tab := mustCompile(t,
		"GET /repos/{owner}/{repo}/{what} -> repo.what",
		"GET /repos/{owner}/{repo}/issues -> issues.list",
		"POST /repos/{owner}/{repo}/issues -> issues.create",
		"* /repos/{owner}/{repo}/issues -> issues.any",
		"GET /repos/{owner}/{repo}/{rest...} -> repo.rest",
		"GET /repos/{owner}/settings/{x} -> settings",
		"* /repos/admin/{x}/{y} -> admin.any",
		"GET /files/{path...} -> files.read",
		"GET /files/README -> files.readme",
		"GET /files/{dir}/index -> files.index",
		"* /files/{path...} -> files.any",
		"GET /user -> user.read",
		"GET /user/ -> user.dir",
		"GET / -> root",
		"* /{all...} -> fallback",
	)
	tests := []struct{ method, path, want string }{
		// Literal beats variable beats wildcard.
		{"GET", "/repos/o/r/issues", "issues.list"},
		{"GET", "/repos/o/r/pulls", "repo.what"},
		{"GET", "/repos/o/r/pulls/1", "repo.rest"},
		{"GET", "/files/README", "files.readme"},
		{"GET", "/files/docs/index", "files.index"},
		{"GET", "/files/docs/other", "files.read"},
		{"GET", "/files/a/b/c/d", "files.read"},
		// The leftmost difference decides: settings (literal at segment 3) beats {repo}.
		{"GET", "/repos/o/settings/issues", "settings"},
		// Path specificity before method: a "*" route with a literal beats a GET with a variable.
		{"GET", "/repos/admin/r/issues", "admin.any"},
		// An explicit method beats "*" on the same shape; other methods fall to "*".
		{"POST", "/repos/o/r/issues", "issues.create"},
		{"DELETE", "/repos/o/r/issues", "issues.any"},
		{"PATCH", "/files/a", "files.any"},
		// HEAD does not borrow GET's routes.
		{"HEAD", "/repos/o/r/issues", "issues.any"},
		{"HEAD", "/user", "fallback"},
		{"GET", "/user", "user.read"},
		{"GET", "/user/", "user.dir"},
		{"GET", "/", "root"},
		{"GET", "/elsewhere/x", "fallback"},
		// Any method token reaches "*" routes, and only those.
		{"PROPFIND", "/user", "fallback"},
		{"get", "/user", "fallback"},
	}
	for _, tt := range tests {
		m, err := tab.Match(tt.method, tt.path)
		if err != nil {
			t.Errorf("Match(%s %s): %v, want %s", tt.method, tt.path, err, tt.want)
			continue
		}
		if m.Action != tt.want {
			t.Errorf("Match(%s %s) = %s (%s), want %s", tt.method, tt.path, m.Action, m.Route, tt.want)
		}
	}
}

// TestMatchOrderIndependent checks that the order of routes in a tool does not change the outcome.
func TestMatchOrderIndependent(t *testing.T) {
	routes := []string{
		"GET /a/{x}/c -> 1",
		"GET /a/b/{y} -> 2",
		"GET /{x}/b/c -> 3",
		"* /a/b/c -> 4",
		"GET /a/{rest...} -> 5",
	}
	want := map[string]string{"/a/b/c": "4", "/a/q/c": "1", "/a/b/q": "2", "/q/b/c": "3", "/a/q/q": "5"}
	for i := range routes {
		rotated := append(append([]string{}, routes[i:]...), routes[:i]...)
		tab := mustCompile(t, rotated...)
		for path, action := range want {
			m, err := tab.Match("GET", path)
			if err != nil || m.Action != action {
				t.Errorf("rotation %d: Match(GET %s) = %v, %v; want action %s", i, path, m, err, action)
			}
		}
	}
}

func TestMatchNoRoute(t *testing.T) {
	tab := mustCompile(t,
		"GET /user -> user.read",
		"GET /files/{path...} -> files.read",
		"GET /dirs/{d}/ -> dirs.read",
		"POST /items -> items.create",
	)
	tests := []struct{ method, path string }{
		{"HEAD", "/user"},      // HEAD is not GET
		{"POST", "/user"},      // method not declared
		{"GET", "/user/"},      // a trailing "/" is significant
		{"GET", "/User"},       // literals are case-sensitive
		{"GET", "/user/x"},     // too many segments
		{"GET", "/files"},      // a wildcard takes at least one segment
		{"GET", "/files/"},     // … and not an empty one
		{"GET", "/files/a/b/"}, // … nor a trailing "/"
		{"GET", "/dirs/d"},     // the pattern's trailing "/" is required
		{"GET", "/"},           // no root route
		{"get", "/user"},       // methods are case-sensitive
		{"GET", "/items"},      // POST only
		{"OPTIONS", "/items"},  // no "*" route
		{"GET", "/us%65r/x"},   // decoded, still too many segments
	}
	for _, tt := range tests {
		m, err := tab.Match(tt.method, tt.path)
		if !errors.Is(err, ErrNoRoute) || warden.ErrorCode(err) != warden.EForbidden {
			t.Errorf("Match(%s %s) = %v, %v; want ErrNoRoute (%s)", tt.method, tt.path, m, err, warden.EForbidden)
		}
	}
	var nilTable *Table
	if _, err := nilTable.Match("GET", "/user"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("nil table: %v, want ErrNoRoute", err)
	}
	empty := mustCompile(t)
	if _, err := empty.Match("GET", "/user"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("empty table: %v, want ErrNoRoute", err)
	}
}

func TestMatchBinds(t *testing.T) {
	tab := mustCompile(t,
		"POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}",
		"GET /files/{path...} -> files.read file:{path}",
		"GET /user -> user.read",
		"GET /raw/{name} -> raw.read {name}|{name}",
		"GET /dirs/{d}/ -> dirs.read dir:{d}",
		"GET / -> root",
	)
	tests := []struct {
		method, path          string
		action, resource, fwd string
		params                map[string]string
	}{
		{"POST", "/repos/octo/hello/issues", "issues.create", "repo:octo/hello", "/repos/octo/hello/issues",
			map[string]string{"owner": "octo", "repo": "hello"}},
		{"GET", "/files/a/b/c.txt", "files.read", "file:a/b/c.txt", "/files/a/b/c.txt",
			map[string]string{"path": "a/b/c.txt"}},
		{"GET", "/user", "user.read", "", "/user", nil},
		{"GET", "/", "root", "", "/", nil},
		{"GET", "/dirs/x/", "dirs.read", "dir:x", "/dirs/x/", map[string]string{"d": "x"}},
		{"GET", "/dirs/%78%20y/", "dirs.read", "dir:x y", "/dirs/x%20y/", map[string]string{"d": "x y"}},
		// Variables capture decoded values; the forwarded path is re-escaped canonically.
		{"GET", "/raw/a%20b", "raw.read", "a b|a b", "/raw/a%20b", map[string]string{"name": "a b"}},
		{"GET", "/raw/r%C3%A9sum%c3%a9.pdf", "raw.read", "résumé.pdf|résumé.pdf", "/raw/r%C3%A9sum%C3%A9.pdf",
			map[string]string{"name": "résumé.pdf"}},
		{"GET", "/raw/100%25", "raw.read", "100%|100%", "/raw/100%25", map[string]string{"name": "100%"}},
		{"GET", "/raw/a%3Fb%23c", "raw.read", "a?b#c|a?b#c", "/raw/a%3Fb%23c", map[string]string{"name": "a?b#c"}},
		{"GET", "/raw/" + strings.Repeat("!", 1362), "raw.read", strings.Repeat("!", 1362) + "|" + strings.Repeat("!", 1362),
			"/raw/" + strings.Repeat("%21", 1362), map[string]string{"name": strings.Repeat("!", 1362)}},
		{"GET", "/raw/[x]!", "raw.read", "[x]!|[x]!", "/raw/%5Bx%5D%21", map[string]string{"name": "[x]!"}},
		{"GET", "/raw/a:b@c+d=e", "raw.read", "a:b@c+d=e|a:b@c+d=e", "/raw/a:b@c+d=e", map[string]string{"name": "a:b@c+d=e"}},
		// Literals match the decoded segment, and what is forwarded is the literal.
		{"GET", "/%75ser", "user.read", "", "/user", nil},
		{"GET", "/files/%61/b", "files.read", "file:a/b", "/files/a/b", map[string]string{"path": "a/b"}},
		// '.' is fine inside a name, and a single leading dot too.
		{"GET", "/files/.well-known/a.b.c", "files.read", "file:.well-known/a.b.c", "/files/.well-known/a.b.c",
			map[string]string{"path": ".well-known/a.b.c"}},
	}
	for _, tt := range tests {
		m, err := tab.Match(tt.method, tt.path)
		if err != nil {
			t.Errorf("Match(%s %s): %v", tt.method, tt.path, err)
			continue
		}
		if m.Action != tt.action || m.Resource != tt.resource || m.Path != tt.fwd || !maps.Equal(m.Params, tt.params) {
			t.Errorf("Match(%s %s) = action %q resource %q path %q params %v,\nwant action %q resource %q path %q params %v",
				tt.method, tt.path, m.Action, m.Resource, m.Path, m.Params, tt.action, tt.resource, tt.fwd, tt.params)
		}
		if m.Route.Action != m.Action {
			t.Errorf("Match(%s %s): Route %s does not go with action %s", tt.method, tt.path, m.Route, m.Action)
		}
	}
}

// trickPaths are request paths that try to reach GET /admin/... through a table that allows only
// /repos/{owner}/{repo}/issues and /public/{file}, or otherwise to forward something other than
// what was matched. Each must be refused or match no route. They also seed FuzzMatch.
var trickPaths = []string{
	"/public/../admin/x",
	"/public/..",
	"/public/../admin",
	"/public/%2e%2e/admin",
	"/public/%2E%2e/admin",
	"/public/.%2e/admin",
	"/public/%2e./admin",
	"/public/%2e",
	"/public%2f..%2fadmin",
	"/public%2F..%2Fadmin",
	"/public/..%2Fadmin",
	"/public/..%2fadmin",
	"/public/%2e%2e%2fadmin",
	"/public//admin",
	"//admin/x",
	"//public/x",
	"/./admin",
	"/./public/x",
	"/public/./x",
	"/public/x/.",
	"/public/%252e%252e/admin",
	"/public/%252e%252e%252fadmin",
	"/public/%25%32%65%25%32%65",
	"/public/%%32%65",
	"/admin%00/x",
	"/public/x%00",
	"/public/x%00.txt",
	"/public/x\x00",
	"/public/a%0a",
	"/public/a%0D%0Aset-cookie:x",
	"/public/a%7f",
	"/public/a%c2%85",
	"/public/a\\..\\admin",
	"/public/a%5c..%5cadmin",
	"/public/a%5C..%5Cadmin",
	"/public\\..\\admin\\x",
	"/public/..\\admin",
	"/PUBLIC/x",
	"/Public/x",
	"/public/x/",
	"/admin;x=1/x",
	"/public;x=1/x",
	"/public/x;.css",
	"/public/..;/admin/x",
	"/public/x%3b.css",
	"/public/%zz",
	"/public/%4",
	"/public/%",
	"/public/x%g0",
	"/public/%c0%ae%c0%ae/admin",
	"/public/%c0%af",
	"/public/%e0%80%ae",
	"/public/%ff",
	"/public/%ed%a0%80",
	"/public/%ef%bc%8f",          // FULLWIDTH SOLIDUS
	"/public/%ef%bc%8e%ef%bc%8e", // FULLWIDTH FULL STOP ×2
	"/public/%e2%80%a5",          // TWO DOT LEADER
	"/public/%c2%a5..%c2%a5admin",
	"/public/a%e2%80%aeb", // RIGHT-TO-LEFT OVERRIDE
	"/public/a%e2%80%8bb", // ZERO WIDTH SPACE
	"/public/a%e2%80%a8b", // LINE SEPARATOR
	"/public/...",
	"/public/..%20",
	"/public/.. ",
	"/public/x?y=/admin",
	"/public/x#/admin",
	"/public/x y",
	"/public/é",
	"public/x",
	"",
	" /public/x",
	"/public/x\t",
	"/repos/a/b/issues/../../../../admin/x",
	"/repos/a/b%2fissues/x/issues",
	"/repos/a%2f..%2f..%2fadmin/b/issues",
	"/repos/%2e%2e/%2e%2e/issues",
	"/repos/a/b/issues%00",
	"/repos/a/b/ISSUES",
	"/repos/a/b/issues/",
	"/" + strings.Repeat("public/", 200) + "x",
	"/public/" + strings.Repeat("a", 5000),
}

func TestPathTricks(t *testing.T) {
	tab := mustCompile(t,
		"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}",
		"GET /public/{file} -> public.read file:{file}",
		// The forbidden route: present, so that a trick that reached it would show.
		"GET /admin/{x...} -> admin",
	)
	if m, err := tab.Match("GET", "/admin/x"); err != nil || m.Action != "admin" {
		t.Fatalf("Match(GET /admin/x) = %v, %v; want the admin route, or this test proves nothing", m, err)
	}
	for _, p := range trickPaths {
		m, err := tab.Match("GET", p)
		if err == nil {
			t.Errorf("Match(GET %q) = %s %v, path %q; want an error or no match", p, m.Action, m.Params, m.Path)
			continue
		}
		if code := warden.ErrorCode(err); code != warden.EInvalid && !errors.Is(err, ErrNoRoute) {
			t.Errorf("Match(GET %q): code %s, want %s or ErrNoRoute", p, code, warden.EInvalid)
		}
	}
}

func TestMatchInvalidPathReasons(t *testing.T) {
	tab := mustCompile(t, "GET /public/{file} -> public.read")
	tests := []struct{ path, want string }{
		{"", `must start with "/"`},
		{"public/x", `must start with "/"`},
		{"/public//x", `segment 2 is empty (doubled "/")`},
		{"/public/..", `segment 2 "..": "." and ".." are not allowed`},
		{"/public/%2e", `"." and ".." are not allowed`},
		{"/public/.%2E", `"." and ".." are not allowed`},
		{"/public/a..b", `"." and ".." are not allowed`},
		{"/public%2fx", `segment 1 "public%2fx": encoded slash (%2F)`},
		{"/public/a%5cb", "encoded backslash"},
		{`/public/a\b`, "backslash is not allowed"},
		{"/public/a;b", `";" is not allowed (path parameters`},
		{"/public/a%3Bb", `encoded ";" (%3B)`},
		{"/public/a%00", "control character"},
		{"/public/a\x01", "control character"},
		{"/public/a%c2%9f", "control or invisible formatting character"},
		{"/public/a%e2%80%8f", "control or invisible formatting character"},
		{"/public/%zz", "invalid percent-encoding"},
		{"/public/%4", "invalid percent-encoding"},
		{"/public/%ff", "not valid UTF-8"},
		{"/public/%ef%bf%bd", "not valid UTF-8"},
		{"/public/%252e", "double percent-encoding"},
		{"/public/%ef%bc%8f", `may read as "/", "\" or "."`},
		{"/public/a?b", "query or fragment"},
		{"/public/a b", "must be percent-encoded"},
		{"/public/\xc3\xa9", "must be percent-encoded"},
		{"/" + strings.Repeat("a/", 128) + "a", "129 segments; the limit is 128"},
		{"/" + strings.Repeat("a", 4096), "4097 bytes long; the limit is 4096"},
		// Found by FuzzMatch: re-escaping "!" as %21 made the forwarded path too long to match.
		{"/public/" + strings.Repeat("!", 1400), "4208 bytes long once escaped; the limit is 4096"},
	}
	for _, tt := range tests {
		_, err := tab.Match("GET", tt.path)
		if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Match(GET %.60q) = %v, want an %s error containing %q", tt.path, err, warden.EInvalid, tt.want)
		}
	}

	// The error quotes the segment, so a control character cannot forge a log line, and cuts it
	// short.
	_, err := tab.Match("GET", "/public/"+strings.Repeat("x", 100)+"%00")
	if msg := err.Error(); strings.Contains(msg, strings.Repeat("x", 65)) || !strings.Contains(msg, "…") {
		t.Errorf("long segment: %q, want it cut to 64 bytes", msg)
	}

	for _, method := range []string{"", "GET /", "G\x00T", "GÉT", strings.Repeat("A", 33)} {
		if _, err := tab.Match(method, "/public/x"); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("Match(%q, /public/x) = %v, want %s", method, err, warden.EInvalid)
		}
	}
}

// TestEscapedLen keeps escapedLen in step with url.PathEscape, whose result it predicts.
func TestEscapedLen(t *testing.T) {
	for c := range 256 {
		s := "a" + string([]byte{byte(c)})
		if got, want := escapedLen(s), len(url.PathEscape(s)); got != want {
			t.Errorf("escapedLen(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestMatchConcurrent(t *testing.T) {
	tab := mustCompile(t, "GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}", "* /{p...} -> any")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				m, err := tab.Match("GET", "/repos/o/r"+strings.Repeat("x", (i+j)%3)+"/issues")
				if err != nil || m.Action != "issues.list" {
					t.Errorf("Match: %v %v", m, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
