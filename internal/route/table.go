package route

import (
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// ErrNoRoute is what [Table.Match] returns for a well-formed request that no route matches. Routes
// are the allow-list of an HTTP tool, so the request is denied (default deny).
var ErrNoRoute = warden.Errorf(warden.EForbidden, "no route of the tool matches the request")

// Table is the compiled routes of one HTTP tool. It is immutable and safe for concurrent use.
type Table struct {
	// byMethod holds, for each method some route names, that method's routes and the "*" routes,
	// most specific first, so that Match takes the first route that matches. anyMethod holds the
	// "*" routes alone, for every other method.
	byMethod  map[string][]*Route
	anyMethod []*Route
}

// Match is a request matched to a route.
type Match struct {
	Route    *Route
	Action   string
	Resource string            // the route's resource pattern filled in with decoded values; "" if it has none
	Params   map[string]string // decoded variable values; a wildcard's segments are joined by "/"; nil if none
	// Path is the normalised, canonically escaped request path. The gateway must forward this and
	// not the path it received, so that the upstream sees exactly what was matched and judged.
	Path string
}

// Compile parses routes into a Table, in which the most specific route matching a request wins.
// Paths are compared segment by segment from the left; at the first segment where two routes
// differ, a literal beats a variable and a variable beats the wildcard. So
// "/repos/{o}/{r}/issues" beats "/repos/{o}/{r}/{x}", and "/admin/{x}" beats "/{org}/{repo}". Only
// between routes of the same path shape does an explicit method beat "*". HEAD does not match a GET
// route: a method is allowed only where a route names it or "*".
//
// An error names the index of the offending route. Two routes with the same method and the same
// path shape ("/a/{x}" and "/a/{y}") are an error, because neither would be more specific.
func Compile(routes []string) (*Table, error) {
	parsed := make([]*Route, 0, len(routes))
	shapes := make(map[string]int, len(routes))
	t := &Table{byMethod: make(map[string][]*Route)}
	for i, s := range routes {
		r, err := Parse(s)
		if err != nil {
			return nil, warden.Errorf(warden.EInvalid, "routes[%d]: %s", i, warden.ErrorMessage(err))
		}
		key := r.Method + " " + r.shape()
		if j, ok := shapes[key]; ok {
			return nil, warden.Errorf(warden.EInvalid, "routes[%d] %q is ambiguous with routes[%d] %q: same method and path shape",
				i, s, j, routes[j])
		}
		shapes[key] = i
		parsed = append(parsed, r)
		if r.Method != "*" {
			t.byMethod[r.Method] = nil
		}
	}
	// Routes that compareSpecificity finds equal have different explicit methods and so never
	// share a list; the sort is stable all the same, to keep Compile deterministic.
	slices.SortStableFunc(parsed, compareSpecificity)
	for _, r := range parsed {
		if r.Method != "*" {
			t.byMethod[r.Method] = append(t.byMethod[r.Method], r)
			continue
		}
		t.anyMethod = append(t.anyMethod, r)
		for m := range t.byMethod {
			t.byMethod[m] = append(t.byMethod[m], r)
		}
	}
	return t, nil
}

// Match finds the most specific route for a request. rawPath is the request's escaped path below
// the tool's prefix (URL.EscapedPath() with "/http/<tool>" cut off).
//
// A path an upstream could read differently from warden is an EInvalid error, never repaired: an
// empty segment ("//"); a "." or ".." segment or ".." anywhere in a segment, raw or encoded; an
// encoded "/" or "\" or a raw "\"; ";" raw or encoded; a control or invisible formatting
// character, raw or encoded; invalid percent-encoding; decoded bytes that are not UTF-8; double
// percent-encoding; a character that Unicode normalisation or a Windows code page turns into "/",
// "\" or "."; a raw '?', '#' or other byte that must be escaped; over 4096 bytes, as received or
// once escaped, or over 128 segments.
// Literal segments match the decoded segment exactly, case and all. A trailing "/" is significant:
// "/user/" does not match "/user", and a wildcard never takes one. A well-formed request that no
// route matches is [ErrNoRoute]. A nil Table matches nothing.
func (t *Table) Match(method, rawPath string) (*Match, error) {
	var buf [16]string // enough for nearly every API path; longer ones grow on the heap
	p, err := parseRequestPath(rawPath, buf[:0])
	if err != nil {
		return nil, err
	}
	if !validRequestMethod(method) {
		if len(method) > maxMethodLen {
			method = method[:maxMethodLen] + "…"
		}
		return nil, warden.Errorf(warden.EInvalid, "request method %q is not an HTTP method", method)
	}
	if t == nil {
		return nil, ErrNoRoute
	}
	routes, ok := t.byMethod[method]
	if !ok {
		routes = t.anyMethod
	}
	for _, r := range routes {
		if r.matches(p) {
			return r.bind(p, rawPath), nil
		}
	}
	return nil, ErrNoRoute
}

// shape is the route's path with variable names left out: two routes of one method and one shape
// match exactly the same requests.
func (r *Route) shape() string {
	var b strings.Builder
	for _, s := range r.segments {
		b.WriteByte('/')
		switch s.kind {
		case literalSegment:
			b.WriteString(s.value)
		case variableSegment:
			b.WriteString("{}")
		case wildcardSegment:
			b.WriteString("{...}")
		}
	}
	if r.trailing || len(r.segments) == 0 {
		b.WriteByte('/')
	}
	return b.String()
}

// compareSpecificity orders routes most specific first. Of two routes that match the same request,
// the segments before the first segment where their kinds differ are equal, so comparing kinds
// (and literal text, which only separates routes that never match the same request) left to right
// puts first the route with a literal where the other has a variable, or a variable where the
// other has the wildcard. Only then does an explicit method come before "*".
func compareSpecificity(a, b *Route) int {
	for i := range min(len(a.segments), len(b.segments)) {
		sa, sb := a.segments[i], b.segments[i]
		if sa.kind != sb.kind {
			return int(sa.kind) - int(sb.kind)
		}
		if sa.kind == literalSegment {
			if c := strings.Compare(sa.value, sb.value); c != 0 {
				return c
			}
		}
	}
	if len(a.segments) != len(b.segments) {
		return len(a.segments) - len(b.segments)
	}
	if a.trailing != b.trailing {
		return boolInt(a.trailing) - boolInt(b.trailing)
	}
	return boolInt(a.Method == "*") - boolInt(b.Method == "*")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// matches reports whether p matches the route. A wildcard takes one or more segments and, like
// every route, a trailing "/" only if the pattern has one, which a wildcard pattern cannot.
func (r *Route) matches(p requestPath) bool {
	n := len(r.segments)
	if n > 0 && r.segments[n-1].kind == wildcardSegment {
		if p.trailing || len(p.segments) < n {
			return false
		}
	} else if p.trailing != r.trailing || len(p.segments) != n {
		return false
	}
	for i, s := range r.segments {
		if s.kind == literalSegment && s.value != p.segments[i] {
			return false
		}
	}
	return true
}

// bind builds the Match of p, parsed from raw, which matches r.
func (r *Route) bind(p requestPath, raw string) *Match {
	m := &Match{Route: r, Action: r.Action, Path: p.escape(raw)}
	if r.vars > 0 {
		m.Params = make(map[string]string, r.vars)
		for i, s := range r.segments {
			switch s.kind {
			case variableSegment:
				m.Params[s.value] = p.segments[i]
			case wildcardSegment:
				m.Params[s.value] = strings.Join(p.segments[i:], "/")
			}
		}
	}
	if len(r.resource) > 0 {
		var b strings.Builder
		n := 0
		for _, part := range r.resource {
			if part.variable {
				n += len(m.Params[part.text])
			} else {
				n += len(part.text)
			}
		}
		b.Grow(n)
		for _, part := range r.resource {
			if part.variable {
				b.WriteString(m.Params[part.text])
			} else {
				b.WriteString(part.text)
			}
		}
		m.Resource = b.String()
	}
	return m
}

// validRequestMethod reports whether m is an HTTP method token (RFC 9110 tchar). Any token may
// match a "*" route, but a request method is never lower-cased or otherwise repaired.
func validRequestMethod(m string) bool {
	if m == "" || len(m) > maxMethodLen {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
