package taint

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Index is the values that appeared in one session's untrusted output, by normalised value.
// Not safe for concurrent use: Sessions holds it under its lock.
type Index struct {
	max    int
	size   int
	values map[string]Source
	kinds  map[string]string
}

// NewIndex returns an empty index that keeps at most maxBytes of values.
func NewIndex(maxBytes int) *Index {
	return &Index{max: maxBytes, values: map[string]Source{}, kinds: map[string]string{}}
}

var emailRE = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// Add indexes the values of content as coming from src.
func (x *Index) Add(src Source, content any) {
	walk(content, func(s string) {
		for _, m := range emailRE.FindAllString(s, -1) {
			v := strings.ToLower(m)
			if _, ok := x.values[v]; !ok && x.size+len(v) <= x.max {
				x.values[v], x.kinds[v] = src, "email"
				x.size += len(v)
			}
		}
	})
}

// Match returns the arguments whose values appeared in the index, sorted by argument.
func (x *Index) Match(args map[string]any) []warden.TaintedArg {
	var out []warden.TaintedArg
	for name, v := range args {
		done := false
		walk(v, func(s string) {
			if done {
				return
			}
			for _, m := range emailRE.FindAllString(s, -1) {
				if src, ok := x.values[strings.ToLower(m)]; ok {
					out = append(out, warden.TaintedArg{Arg: name, Kind: x.kinds[strings.ToLower(m)], SourceTool: src.Tool, SourceAction: src.Action, SourceDecision: src.Decision})
					done = true
					return
				}
			}
		})
	}
	slices.SortFunc(out, func(a, b warden.TaintedArg) int { return strings.Compare(a.Arg, b.Arg) })
	return out
}

func walk(v any, f func(string)) {
	switch v := v.(type) {
	case string:
		f(v)
	case []any:
		for _, e := range v {
			walk(e, f)
		}
	case map[string]any:
		for _, e := range v {
			walk(e, f)
		}
	case nil, bool:
	default:
		f(fmt.Sprint(v))
	}
}

func sortStrings(s []string) { slices.Sort(s) }
