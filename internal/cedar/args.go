package cedar

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// maxArgDepth bounds how deeply arguments may nest. Real tool arguments are shallow; the bound
// keeps a hostile payload from costing unbounded stack.
const maxArgDepth = 32

// argError is an argument that has no Cedar value. It records the path on the way out of the
// recursion, so that converting valid arguments never builds path strings.
type argError struct {
	path []string // innermost last once complete
	msg  string
}

func (e *argError) Error() string {
	var b strings.Builder
	b.WriteString("argument ")
	for i := len(e.path) - 1; i >= 0; i-- {
		b.WriteString(e.path[i])
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func (e *argError) within(step string) *argError {
	e.path = append(e.path, step)
	return e
}

// argsRecord converts decoded JSON arguments to the Cedar record context.args.
//
// The rule, documented in MODEL.md: objects are records, arrays sets, strings String, booleans
// Boolean. A number is a Long when it is an integer in the 64-bit range, otherwise a decimal when
// it has at most 4 digits after the point and lies within decimal's range; any other number is
// refused, as is anything that is not JSON. An object member whose value is null is left out
// (Cedar has no null); a null inside an array is refused, since dropping it would change the set.
func argsRecord(args map[string]any) (types.Record, error) {
	if len(args) == 0 {
		return types.Record{}, nil
	}
	rec, err := objectValue(args, 0)
	if err != nil {
		return types.Record{}, err
	}
	return rec, nil
}

func objectValue[V any](m map[string]V, depth int) (types.Record, *argError) {
	if depth > maxArgDepth {
		return types.Record{}, &argError{msg: fmt.Sprintf("nested more than %d deep", maxArgDepth)}
	}
	rm := make(types.RecordMap, len(m))
	for k, v := range m {
		if isNull(v) {
			continue
		}
		cv, err := argValue(v, depth+1)
		if err != nil {
			return types.Record{}, err.within(memberStep(k))
		}
		rm[types.String(k)] = cv
	}
	return types.NewRecord(rm), nil
}

func arrayValue[V any](s []V, depth int) (types.Set, *argError) {
	if depth > maxArgDepth {
		return types.Set{}, &argError{msg: fmt.Sprintf("nested more than %d deep", maxArgDepth)}
	}
	vs := make([]types.Value, len(s))
	for i, v := range s {
		step := "[" + strconv.Itoa(i) + "]"
		if isNull(v) {
			return types.Set{}, (&argError{msg: "null inside an array has no Cedar value"}).within(step)
		}
		cv, err := argValue(v, depth+1)
		if err != nil {
			return types.Set{}, err.within(step)
		}
		vs[i] = cv
	}
	return types.NewSet(vs...), nil
}

func isNull(v any) bool { return v == nil }

// memberStep renders an object member for a path: .name when it reads as an identifier, ["name"]
// otherwise.
func memberStep(k string) string {
	ident := k != ""
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ident = false
			break
		}
	}
	if ident {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

func argValue(v any, depth int) (types.Value, *argError) {
	switch v := v.(type) {
	case string:
		return types.String(v), nil
	case bool:
		return types.Boolean(v), nil
	case json.Number:
		return numberValue(string(v))
	case float64:
		return floatValue(v, 64)
	case float32:
		return floatValue(float64(v), 32)
	case int:
		return types.Long(v), nil
	case int8:
		return types.Long(v), nil
	case int16:
		return types.Long(v), nil
	case int32:
		return types.Long(v), nil
	case int64:
		return types.Long(v), nil
	case uint:
		return uintValue(uint64(v))
	case uint8:
		return types.Long(v), nil
	case uint16:
		return types.Long(v), nil
	case uint32:
		return types.Long(v), nil
	case uint64:
		return uintValue(v)
	case map[string]any:
		return objectValue(v, depth)
	case []any:
		return arrayValue(v, depth)
	case map[string]string:
		return objectValue(v, depth)
	case []string:
		return arrayValue(v, depth)
	}
	// Anything else did not come from JSON; guessing its meaning could let a call slip past a
	// policy, so it is refused.
	return nil, &argError{msg: fmt.Sprintf("a Go %T is not a JSON value", v)}
}

func uintValue(u uint64) (types.Value, *argError) {
	if u > math.MaxInt64 {
		return nil, &argError{msg: fmt.Sprintf("%d is out of range for Cedar (Long is a 64-bit signed integer)", u)}
	}
	return types.Long(u), nil
}

// floatValue converts a number that JSON decoding left as a float. The shortest decimal text that
// reads back as the same float is what the JSON said (0.1 stays 0.1), so that is what is converted.
func floatValue(f float64, bits int) (types.Value, *argError) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &argError{msg: fmt.Sprintf("%v is not a JSON number", f)}
	}
	return numberValue(strconv.FormatFloat(f, 'g', -1, bits))
}

// numberValue converts the decimal text of a JSON number: a Long when it is an integer within 64
// bits, a decimal when it has at most 4 fractional digits within decimal's range, otherwise an
// error. It works on the digits, never on a float, so the rule is exact, and it never materialises
// the number a large exponent describes.
func numberValue(s string) (types.Value, *argError) {
	neg := strings.HasPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.TrimPrefix(s, "-"), "e")
	if !hasExp {
		mant, expText, hasExp = strings.Cut(mant, "E")
	}
	intPart, frac, hasPoint := strings.Cut(mant, ".")
	if !warden.AllDigits(intPart) || hasPoint && !warden.AllDigits(frac) || hasExp && !isExponent(expText) {
		return nil, &argError{msg: fmt.Sprintf("%q is not a JSON number", s)}
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(strings.TrimPrefix(expText, "+"))
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return nil, &argError{msg: outOfRange(s)}
		}
		exp = e
	}
	// value = digits × 10^exp, with digits free of leading and trailing zeros.
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	if digits == "" {
		return types.Long(0), nil
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	digits = trimmed
	sign := ""
	if neg {
		sign = "-"
	}
	if exp >= 0 {
		if len(digits)+exp > 19 {
			return nil, &argError{msg: outOfRange(s)}
		}
		n, err := strconv.ParseInt(sign+digits+strings.Repeat("0", exp), 10, 64)
		if err != nil {
			// Beyond int64 is beyond decimal too: decimal's range is 10^4 times smaller.
			return nil, &argError{msg: outOfRange(s)}
		}
		return types.Long(n), nil
	}
	if -exp > 4 {
		return nil, &argError{msg: fmt.Sprintf("%s has more than 4 digits after the decimal point, the most a Cedar decimal holds", s)}
	}
	if len(digits) > 19 {
		return nil, &argError{msg: outOfRange(s)}
	}
	if len(digits) <= -exp {
		digits = strings.Repeat("0", -exp-len(digits)+1) + digits
	}
	point := len(digits) + exp
	d, err := types.ParseDecimal(sign + digits[:point] + "." + digits[point:])
	if err != nil {
		return nil, &argError{msg: outOfRange(s)}
	}
	return d, nil
}

func outOfRange(s string) string {
	return fmt.Sprintf("%s is out of range for Cedar (Long: a 64-bit integer; decimal: ±922337203685477.5807 with 4 decimal places)", s)
}

func isExponent(s string) bool {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		s = s[1:]
	}
	return warden.AllDigits(s)
}

// emptyRecord is context.num of a call whose arguments hold no number, and context.norm of one
// with nothing to normalise (or whenever no policy reads them).
var emptyRecord = types.NewRecord(nil)

// numRecord builds context.num from context.args: every number of the arguments as a Cedar
// decimal, at the same path, so that one comparison (.lessThan(decimal("100.0"))) holds for 4,
// 4.0 and 98.7 alike. Cedar's < works on Longs only and .lessThan on decimals only, and a model
// chooses freely between 100 and 100.0; context.args keeps Cedar's own reading of JSON (integers
// are Longs), which policies written for Cedar elsewhere expect.
//
// A record is kept when it holds a number somewhere, a set when all its members are numbers. An
// integer beyond decimal's range (±922337203685477) has no decimal and is left out: a policy
// that reads it from context.num then fails to evaluate, which a forbid turns into a denial.
func numRecord(args types.Record) types.Record {
	rec, ok := numbersOf(args)
	if !ok {
		return emptyRecord
	}
	return rec
}

func numbersOf(r types.Record) (types.Record, bool) {
	var rm types.RecordMap
	for k, v := range r.All() {
		if nv, ok := numberOf(v); ok {
			if rm == nil {
				rm = types.RecordMap{}
			}
			rm[k] = nv
		}
	}
	if rm == nil {
		return types.Record{}, false
	}
	return types.NewRecord(rm), true
}

func numberOf(v types.Value) (types.Value, bool) {
	switch v := v.(type) {
	case types.Decimal:
		return v, true
	case types.Long:
		d, err := types.NewDecimalFromInt(int64(v))
		return d, err == nil
	case types.Record:
		return numbersOf(v)
	case types.Set:
		if v.Len() == 0 {
			return nil, false
		}
		vs := make([]types.Value, 0, v.Len())
		for m := range v.All() {
			switch m.(type) {
			case types.Decimal, types.Long:
			default:
				return nil, false
			}
			d, ok := numberOf(m)
			if !ok {
				return nil, false
			}
			vs = append(vs, d)
		}
		return types.NewSet(vs...), true
	}
	return nil, false
}
