// Package route parses the routes of HTTP tools, "POST /repos/{owner}/{repo}/issues -> issues.create
// repo:{owner}/{repo}", and matches request paths against them, vetted and normalised first.
package route

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Limits on what a route or a request path may hold. They bound the work a hostile input can cause
// and keep audit events readable; no real API comes near them.
const (
	maxRouteLen    = 8192
	maxPathLen     = 4096
	maxSegments    = 128
	maxMethodLen   = 32
	maxResourceLen = 1024
)

// Route is one parsed route of an HTTP tool. A Route returned by [Parse] or held by a [Table] is
// shared and must not be modified.
type Route struct {
	Method   string // an uppercase HTTP method, or "*" for any method
	Pattern  string // the path pattern: "/repos/{owner}/{repo}/issues"
	Action   string // the tool-local action the route maps to
	Resource string // the resource pattern: "repo:{owner}/{repo}"; "" means the tool itself

	segments []segment
	trailing bool           // the pattern ends in "/"
	resource []resourcePart // Resource, split into literals and variable references
	vars     int            // the number of variables, to size Match.Params
}

type segmentKind uint8

// The order of the kinds is their precedence: a lower kind is more specific.
const (
	literalSegment segmentKind = iota
	variableSegment
	wildcardSegment
)

type segment struct {
	kind  segmentKind
	value string // the literal text, or the variable's name
}

// resourcePart is a literal piece of a resource pattern, or a reference to a variable.
type resourcePart struct {
	text     string
	variable bool
}

// Parse parses one route:
//
//	METHOD /path/with/{var}/segments -> action [resource-pattern]
//
// METHOD is an uppercase HTTP method, or "*" for any method. The path starts with "/" and is made
// of literal segments and whole-segment variables {name}, each name once; a last segment {name...}
// matches the rest of the path, one or more segments. Literal segments are written unescaped, with
// letters, digits and - . _ ~ ! $ & ' ( ) * + , = : @ only, and are never "." or hold "..". A
// trailing "/" is part of the pattern. The action is 1 to 128 characters from A-Z a-z 0-9 . _ / -.
// The optional resource pattern refers to variables of the path as {name}, the wildcard included.
// Words are separated by spaces or tabs.
//
// A route that is not exactly right is an EInvalid error that says what is wrong and where.
func Parse(s string) (*Route, error) {
	if len(s) > maxRouteLen {
		return nil, warden.Errorf(warden.EInvalid, "route is %d bytes long; the limit is %d", len(s), maxRouteLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
			return nil, warden.Errorf(warden.EInvalid, "route %q: byte %d (%q) is not allowed: a route is printable ASCII", s, i, c)
		}
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
	if len(words) == 0 {
		return nil, warden.Errorf(warden.EInvalid, `route is empty: want "METHOD /path -> action [resource]"`)
	}
	invalid := func(format string, args ...any) error {
		return warden.Errorf(warden.EInvalid, "route %q: "+format, append([]any{s}, args...)...)
	}
	arrow := slices.Index(words, "->")
	switch {
	case arrow < 0 && strings.Contains(s, "->"):
		return nil, invalid(`put spaces around "->"`)
	case arrow < 0:
		return nil, invalid(`missing "->" between the path and the action: want "METHOD /path -> action [resource]"`)
	case arrow < 2:
		return nil, invalid(`want a method and a path before "->"`)
	case arrow > 2:
		return nil, invalid(`want only a method and a path before "->", got %d words (a path has no spaces)`, arrow)
	case arrow == len(words)-1:
		return nil, invalid(`missing the action after "->"`)
	case slices.Contains(words[arrow+1:], "->"):
		return nil, invalid(`more than one "->"`)
	case arrow+3 < len(words):
		return nil, invalid("unexpected %q after the resource (a resource has no spaces)", words[arrow+3])
	}
	r := &Route{Method: words[0], Pattern: words[1], Action: words[3]}
	if len(words) == 5 {
		r.Resource = words[4]
	}
	if !validMethod(r.Method) {
		return nil, invalid("method %q: want an uppercase HTTP method such as GET, or * for any method", r.Method)
	}
	var err error
	if r.segments, r.trailing, err = parsePattern(r.Pattern); err != nil {
		return nil, invalid("%v", err)
	}
	for _, seg := range r.segments {
		if seg.kind != literalSegment {
			r.vars++
		}
	}
	if warden.ValidateAction(r.Action) != nil {
		return nil, invalid("action %q: want 1 to %d characters from A-Z a-z 0-9 . _ / -", r.Action, warden.MaxActionLen)
	}
	if r.Resource != "" {
		if r.resource, err = parseResource(r.Resource, r.segments); err != nil {
			return nil, invalid("%v", err)
		}
	}
	return r, nil
}

// String returns the route in canonical form, which Parse reads back to the same route.
func (r *Route) String() string {
	s := r.Method + " " + r.Pattern + " -> " + r.Action
	if r.Resource != "" {
		s += " " + r.Resource
	}
	return s
}

// validMethod allows the upper-case letters of every registered HTTP method (with '-' and '_' for
// WebDAV's VERSION-CONTROL and friends). Upper case only, because methods are case-sensitive and a
// route for "get" would never match what clients send.
func validMethod(m string) bool {
	if m == "*" {
		return true
	}
	if m == "" || len(m) > maxMethodLen || m[0] < 'A' || m[0] > 'Z' {
		return false
	}
	for i := 1; i < len(m); i++ {
		if c := m[i]; (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validVarName reports whether name is [A-Za-z_][A-Za-z0-9_]*.
func validVarName(name string) bool {
	if name == "" || '0' <= name[0] && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// parsePattern parses a path pattern into its segments and whether it ends in "/". Literal
// segments obey the rules of request paths (see parseRequestPath), so that every route can match,
// and are written without percent-encoding, so that a pattern has one spelling and reads as what it
// matches.
func parsePattern(p string) ([]segment, bool, error) {
	if len(p) > maxPathLen {
		return nil, false, fmt.Errorf("path is %d bytes long; the limit is %d", len(p), maxPathLen)
	}
	if p == "" || p[0] != '/' {
		return nil, false, fmt.Errorf("path %q must start with \"/\"", p)
	}
	if p == "/" {
		return nil, false, nil
	}
	parts := strings.Split(p[1:], "/")
	trailing := parts[len(parts)-1] == ""
	if trailing {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > maxSegments {
		return nil, false, fmt.Errorf("path has %d segments; the limit is %d", len(parts), maxSegments)
	}
	segs := make([]segment, 0, len(parts))
	seen := make(map[string]bool)
	escaped := len(p) // the length of the shortest path the pattern matches, once escaped
	for i, part := range parts {
		invalid := func(format string, args ...any) error {
			return fmt.Errorf("path segment %d %q: "+format, append([]any{i + 1, part}, args...)...)
		}
		if part == "" {
			return nil, false, fmt.Errorf("path %q: segment %d is empty (doubled \"/\")", p, i+1)
		}
		if !strings.ContainsAny(part, "{}") {
			for j := 0; j < len(part); j++ {
				if c := part[j]; !patternLiteralByte(c) {
					return nil, false, invalid("character %q is not allowed: "+
						"literal segments are written unescaped, without %% ; \\ { } or spaces", c)
				}
			}
			if part == "." || strings.Contains(part, "..") {
				return nil, false, invalid(`"." and ".." are not allowed in a path`)
			}
			segs = append(segs, segment{kind: literalSegment, value: part})
			escaped += escapedLen(part) - len(part)
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(part, "{"), "}")
		if len(name) != len(part)-2 || strings.ContainsAny(name, "{}") {
			return nil, false, invalid("a variable must be a whole segment, like {name}")
		}
		kind := variableSegment
		if base, ok := strings.CutSuffix(name, "..."); ok {
			kind, name = wildcardSegment, base
		}
		if !validVarName(name) {
			return nil, false, invalid("variable name %q: want a letter or _ followed by letters, digits or _", name)
		}
		if seen[name] {
			return nil, false, invalid("variable {%s} is declared twice", name)
		}
		seen[name] = true
		if kind == wildcardSegment && (i != len(parts)-1 || trailing) {
			return nil, false, invalid("the wildcard {%s...} must be the last segment, with no \"/\" after it", name)
		}
		segs = append(segs, segment{kind: kind, value: name})
		escaped -= len(part) - 1
	}
	if escaped > maxPathLen {
		// Such a route could never match: Match refuses paths that are too long once escaped.
		return nil, false, fmt.Errorf("path is %d bytes long once escaped; the limit is %d", escaped, maxPathLen)
	}
	return segs, trailing, nil
}

// patternLiteralByte reports whether c may appear in a literal segment of a pattern: RFC 3986's
// pchar without percent-encoding and without ';', which some servers read as the start of path
// parameters ("/admin;x=1").
func patternLiteralByte(c byte) bool {
	if isAlnum(c) {
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}

// parseResource splits a resource pattern into literal text and references to the variables of
// segs.
func parseResource(res string, segs []segment) ([]resourcePart, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("resource %q: "+format, append([]any{res}, args...)...)
	}
	if len(res) > maxResourceLen {
		return nil, invalid("%d bytes long; the limit is %d", len(res), maxResourceLen)
	}
	var parts []resourcePart
	for rest := res; rest != ""; {
		open := strings.IndexByte(rest, '{')
		lit := rest
		if open >= 0 {
			lit = rest[:open]
		}
		if strings.IndexByte(lit, '}') >= 0 {
			return nil, invalid(`unmatched "}"`)
		}
		if lit != "" {
			parts = append(parts, resourcePart{text: lit})
		}
		if open < 0 {
			break
		}
		rest = rest[open+1:]
		end := strings.IndexByte(rest, '}')
		if end < 0 || strings.IndexByte(rest[:end], '{') >= 0 {
			return nil, invalid(`unmatched "{"`)
		}
		name := rest[:end]
		rest = rest[end+1:]
		if base, ok := strings.CutSuffix(name, "..."); ok {
			return nil, invalid("refer to the wildcard as {%s}, without \"...\"", base)
		}
		if !slices.ContainsFunc(segs, func(s segment) bool { return s.kind != literalSegment && s.value == name }) {
			return nil, invalid("{%s} is not a variable of the path", name)
		}
		parts = append(parts, resourcePart{text: name, variable: true})
	}
	return parts, nil
}
