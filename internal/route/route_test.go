package route

import (
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

// goodRoutes are routes Parse accepts, with their canonical form ("" if the same). They also seed
// FuzzParse.
var goodRoutes = []struct {
	in, want string
}{
	{"POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}", ""},
	{"GET /repos/{owner}/{repo}/issues -> issues.list repo:{owner}/{repo}", ""},
	{"GET /user -> user.read", ""},
	{"GET /files/{path...} -> files.read file:{path}", ""},
	{"* /anything -> any", ""},
	{"GET / -> root", ""},
	{"GET /dirs/ -> dirs.list", ""},
	{"GET /dirs/{d}/ -> dirs.read dir:{d}", ""},
	{"VERSION-CONTROL /x -> vc", ""},
	{"GET /{_a1}/{B_2} -> a {_a1}{B_2}{_a1}", ""},
	{"GET /.well-known/openid-configuration -> discovery", ""},
	{"GET /v1/models:list/a@b/~c/$d&e+f,g=h!'()* -> a/b_c-d.e", ""},
	{"GET /x -> a literal:only", ""},
	{"  GET\t/user   ->\tuser.read  ", "GET /user -> user.read"},
	{"GET /x -> act x->y", ""},
	{"GET /" + strings.Repeat("!", 1364) + "/{x} -> a", ""}, // 4095 bytes once escaped
}

func TestParse(t *testing.T) {
	for _, tt := range goodRoutes {
		r, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		want := tt.want
		if want == "" {
			want = tt.in
		}
		if got := r.String(); got != want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, want)
		}
	}

	r, err := Parse("POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}")
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "POST" || r.Pattern != "/repos/{owner}/{repo}/issues" || r.Action != "issues.create" || r.Resource != "repo:{owner}/{repo}" {
		t.Errorf("fields: %+v", r)
	}
}

// badRoutes are routes Parse refuses, with a fragment of the error. They also seed FuzzParse.
var badRoutes = []struct{ in, want string }{
	{"", "route is empty"},
	{"   ", "route is empty"},
	{"GET /user", `missing "->"`},
	{"GET /user->user.read", `put spaces around "->"`},
	{"GET -> user.read", "want a method and a path"},
	{"-> user.read", "want a method and a path"},
	{"GET /a b -> x", "got 3 words (a path has no spaces)"},
	{"GET /user ->", "missing the action"},
	{"GET /user -> a b c", `unexpected "c" after the resource`},
	{"GET /user -> a -> b", `more than one "->"`},
	{"GET /user -> a ->", `more than one "->"`},
	{"get /user -> a", `method "get": want an uppercase HTTP method`},
	{"G3T /user -> a", `method "G3T"`},
	{"-GET /user -> a", `method "-GET"`},
	{"** /user -> a", `method "**"`},
	{strings.Repeat("A", 33) + " /user -> a", "want an uppercase HTTP method"},
	{"GET user -> a", `path "user" must start with "/"`},
	{"GET //user -> a", `segment 1 is empty (doubled "/")`},
	{"GET /a//b -> a", `segment 2 is empty`},
	{"GET /a/./b -> a", `segment 2 ".": "." and ".." are not allowed`},
	{"GET /a/../b -> a", `segment 2 "..": "." and ".." are not allowed`},
	{"GET /a/b..c -> a", `segment 2 "b..c"`},
	{"GET /a/%2e -> a", `character '%' is not allowed`},
	{"GET /a;x=1 -> a", `character ';' is not allowed`},
	{`GET /a\b -> a`, `character '\\' is not allowed`},
	{"GET /a/b?c -> a", `character '?' is not allowed`},
	{"GET /a/{x}y -> a", "a variable must be a whole segment"},
	{"GET /a/x{y} -> a", "a variable must be a whole segment"},
	{"GET /a/{x -> a", "a variable must be a whole segment"},
	{"GET /a/x} -> a", "a variable must be a whole segment"},
	{"GET /a/{{x}} -> a", "a variable must be a whole segment"},
	{"GET /a/{} -> a", `variable name ""`},
	{"GET /a/{1x} -> a", `variable name "1x"`},
	{"GET /a/{x-y} -> a", `variable name "x-y"`},
	{"GET /a/{...} -> a", `variable name ""`},
	{"GET /a/{x}/{x} -> a", "variable {x} is declared twice"},
	{"GET /a/{x}/{x...} -> a", "variable {x} is declared twice"},
	{"GET /a/{p...}/b -> a", "the wildcard {p...} must be the last segment"},
	{"GET /a/{p...}/ -> a", "the wildcard {p...} must be the last segment"},
	{"GET /" + strings.Repeat("a/", 129) + " -> a", "path has 129 segments; the limit is 128"},
	{"GET /" + strings.Repeat("a", 4096) + " -> a", "path is 4097 bytes long"},
	{"GET /" + strings.Repeat("!", 1400) + "/{x} -> a", "path is 4203 bytes long once escaped; the limit is 4096"},
	{"GET /user -> user:read", `action "user:read"`},
	{"GET /user -> " + strings.Repeat("a", 129), "want 1 to 128 characters"},
	{"GET /a/{x} -> a r:{y}", "{y} is not a variable of the path"},
	{"GET /a/b -> a r:{b}", "{b} is not a variable of the path"},
	{"GET /a/{p...} -> a r:{p...}", `refer to the wildcard as {p}, without "..."`},
	{"GET /a/{x} -> a r:{x", `unmatched "{"`},
	{"GET /a/{x} -> a r:{{x}}", `unmatched "{"`},
	{"GET /a/{x} -> a r:x}", `unmatched "}"`},
	{"GET /a/{x} -> a r:{}", "{} is not a variable of the path"},
	{"GET /a/{x} -> a " + strings.Repeat("r", 1025), "1025 bytes long; the limit is 1024"},
	{"GET /user -> a\x00", `byte 14 ('\x00') is not allowed`},
	{"GET /usér -> a", "is not allowed: a route is printable ASCII"},
	{"GET /user -> a\n", "is not allowed"},
	{strings.Repeat("a", 8193), "route is 8193 bytes long"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range badRoutes {
		r, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%.60q) = %q, want an error containing %q", tt.in, r, tt.want)
			continue
		}
		if code := warden.ErrorCode(err); code != warden.EInvalid {
			t.Errorf("Parse(%.60q): code %q, want %q", tt.in, code, warden.EInvalid)
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%.60q) = %q, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		routes []string
		want   string
	}{
		{[]string{"GET /a -> a", "GET /b ->"}, "routes[1]: route \"GET /b ->\": missing the action"},
		{[]string{"GET /a/{x} -> a", "GET /a/{y} -> b"}, `routes[1] "GET /a/{y} -> b" is ambiguous with routes[0] "GET /a/{x} -> a"`},
		{[]string{"GET /a -> a", "GET /a -> a"}, "routes[1]"},
		{[]string{"* /f/{p...} -> a", "GET /x -> x", "* /f/{q...} -> b"}, "routes[2]"},
		{[]string{"GET / -> a", "GET / -> b"}, "ambiguous"},
		{[]string{"GET /a/ -> a", "GET /a/ -> b"}, "ambiguous"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.routes)
		if err == nil || !strings.Contains(err.Error(), tt.want) || warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("Compile(%q) = %v, want an %s error containing %q", tt.routes, err, warden.EInvalid, tt.want)
		}
	}

	// The same shape is fine under different methods, with and without a trailing "/", and
	// once for an explicit method and once for "*".
	if _, err := Compile([]string{"GET /a/{x} -> a", "POST /a/{y} -> b", "* /a/{z} -> c", "GET /a/{x}/ -> d", "GET /a/b -> e"}); err != nil {
		t.Error(err)
	}
}
