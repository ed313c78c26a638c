// Package respattern generalises a call's resource to a pattern: the one rule that policy
// suggestion (grants of the fewest patterns) and detection (what resources an agent touches) share.
package respattern

import (
	"slices"
	"strings"
)

// Cover turns the resources an action was used on into the fewest names and patterns that
// cover them, by one rule: two or more distinct resources that differ only after their last
// "/" (repo:acme/web, repo:acme/api) become that prefix and "*" (repo:acme/*). A resource
// without a "/", or alone under its prefix, stays exact; "" (no resource) stays "". Only the
// last segment is generalised, so a pattern never reaches a level the agent did not use two
// resources of.
func Cover(resources []string) []string {
	byPrefix := map[string][]string{}
	var out []string
	for _, r := range slices.Compact(slices.Sorted(slices.Values(resources))) {
		prefix, ok := lastSegment(r)
		if !ok {
			out = append(out, r)
			continue
		}
		byPrefix[prefix] = append(byPrefix[prefix], r)
	}
	for prefix, rs := range byPrefix {
		if len(rs) >= 2 {
			out = append(out, prefix+"*")
		} else {
			out = append(out, rs[0])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// lastSegment returns r up to and including its last "/", when something follows it.
func lastSegment(r string) (prefix string, ok bool) {
	i := strings.LastIndexByte(r, '/')
	if i < 0 || i == len(r)-1 {
		return "", false
	}
	return r[:i+1], true
}

// Of returns the pattern of one resource, as detection learns it: every segment (between "/")
// that is an identifier — a number, a UUID, a hex id, an e-mail address — becomes "*"
// (/v1/users/123/orders → /v1/users/*/orders); a named resource (kind:name, not a path) has its
// last segment generalised as Cover does for two of them (repo:acme/widgets → repo:acme/*), and
// an identifier as its whole name too (user:42 → user:*). A query (?…) becomes "?*". A path
// keeps its other segments: /v1/orders and /v1/invoices are two endpoints, not two instances.
func Of(r string) string {
	if r == "" {
		return ""
	}
	r, _, hasQuery := strings.Cut(r, "?")
	kind, rest := "", r
	if i := strings.IndexByte(r, ':'); i > 0 && !strings.ContainsAny(r[:i], "/@") {
		kind, rest = r[:i+1], r[i+1:]
	}
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		if isID(s) {
			segs[i] = "*"
		}
	}
	// A named resource: its last segment is one instance of the kind (repo:acme/widgets).
	if kind != "" && !strings.HasPrefix(rest, "/") && len(segs) > 1 && segs[len(segs)-1] != "" {
		segs[len(segs)-1] = "*"
	}
	out := kind + strings.Join(segs, "/")
	if hasQuery {
		out += "?*"
	}
	return out
}

// isID reports whether a segment names one instance rather than a kind of thing: a number, a
// UUID, a hex string of 8 or more digits with at least one digit, an e-mail address.
func isID(s string) bool {
	if s == "" {
		return false
	}
	if strings.IndexByte(s, '@') > 0 && strings.IndexByte(s, '@') < len(s)-1 {
		return true
	}
	digits, hex := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			hex++
		case c == '-' && len(s) == 36 && (i == 8 || i == 13 || i == 18 || i == 23):
		default:
			return false
		}
	}
	switch {
	case digits == len(s): // a number
		return true
	case len(s) == 36 && hex == 32: // a UUID: 32 hex digits and the four dashes checked above
		return true
	default:
		return hex == len(s) && len(s) >= 8 && digits > 0
	}
}
