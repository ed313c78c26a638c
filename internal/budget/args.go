package budget

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// maxArgDepth bounds the recursion of a path lookup; a path of at most 128 characters has at most
// 64 steps anyway.
const maxArgDepth = 64

// argAmount finds the number a sum adds: the argument the dotted path names in the call's decoded
// JSON arguments. problem is empty when it is a finite non-negative number, and otherwise says, for
// the agent, what is wrong with it.
//
// A path may be read more than one way when argument names themselves contain dots:
// "payment.amount" is {"payment": {"amount": 5}} or {"payment.amount": 5}. If the arguments hold
// more than one reading the call is refused, since warden can't know which one the tool will use,
// and counting a decoy would let the real amount through uncounted.
func argAmount(args map[string]any, path string) (amount float64, problem string) {
	var v any
	n := 0
	if strings.IndexByte(path, '.') < 0 {
		var ok bool
		if v, ok = args[path]; ok {
			n = 1
		}
	} else {
		findArg(args, path, &v, &n, 0)
	}
	switch {
	case n == 0:
		return 0, "it is missing"
	case n > 1:
		return 0, "it is ambiguous: the arguments hold it both nested and as a name with dots"
	}
	return numberOf(v)
}

// findArg counts the readings of path in m, keeping the last in v. Each key it tries is a prefix of
// path ending at a dot, so it never allocates; and it descends only into maps that are there, so the
// work is bounded by the size of the arguments.
func findArg(m map[string]any, path string, v *any, n *int, depth int) {
	if depth > maxArgDepth {
		return
	}
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '.' {
			continue
		}
		child, ok := m[path[:i]]
		if !ok {
			continue
		}
		if i == len(path) {
			*v = child
			*n++
			continue
		}
		if sub, ok := child.(map[string]any); ok {
			findArg(sub, path[i+1:], v, n, depth+1)
		}
	}
}

// numberOf accepts what JSON decoding makes of a number: float64, or json.Number when the decoder
// was told to keep them; and Go's integer types, which callers building arguments by hand use.
//
// A string is refused even when it reads as a number. Policy sees arguments the same way (a string
// is a Cedar String), and a tool may read "500" and "500.00 EUR" and "5e2" differently from
// warden; a tool whose API carries amounts as strings can't have a sum budget — every call would be
// denied, which is the safe way to find out.
func numberOf(v any) (float64, string) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case json.Number:
		if !isJSONNumber(string(v)) {
			return 0, "it is not a JSON number"
		}
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil && !math.IsInf(f, 0) {
			return 0, "it is not a JSON number"
		}
	case float32:
		f = float64(v)
	case int:
		f = float64(v)
	case int8:
		f = float64(v)
	case int16:
		f = float64(v)
	case int32:
		f = float64(v)
	case int64:
		f = float64(v)
	case uint:
		f = float64(v)
	case uint8:
		f = float64(v)
	case uint16:
		f = float64(v)
	case uint32:
		f = float64(v)
	case uint64:
		f = float64(v)
	case string:
		return 0, "it is a string, not a number"
	case nil:
		return 0, "it is null"
	case bool:
		return 0, "it is a boolean, not a number"
	default:
		return 0, "it is not a number"
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, "it is not a finite number"
	case f < 0:
		return 0, "it is negative"
	}
	return f, ""
}

// isJSONNumber reports whether s follows JSON's number grammar. A json.Number from a decoder always
// does; one built by hand might say "0x1p3" or "Inf", which ParseFloat would accept.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
