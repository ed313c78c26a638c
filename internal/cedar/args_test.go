package cedar

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go/types"
)

func TestNumberValue(t *testing.T) {
	long := func(n int64) types.Value { return types.Long(n) }
	dec := func(s string) types.Value {
		d, err := types.ParseDecimal(s)
		if err != nil {
			panic(err)
		}
		return d
	}
	tests := []struct {
		in   string
		want types.Value // nil: refused
		err  string
	}{
		{"0", long(0), ""},
		{"-0", long(0), ""},
		{"42", long(42), ""},
		{"-17", long(-17), ""},
		{"3.0", long(3), ""},
		{"3.000000000", long(3), ""},
		{"1e3", long(1000), ""},
		{"1E+3", long(1000), ""},
		{"12.5e1", long(125), ""},
		{"1000e-3", long(1), ""},
		{"9223372036854775807", long(math.MaxInt64), ""},
		{"-9223372036854775808", long(math.MinInt64), ""},
		{"0.1", dec("0.1"), ""},
		{"-0.5", dec("-0.5"), ""},
		{"99.95", dec("99.95"), ""},
		{"1.2345", dec("1.2345"), ""},
		{"1.23450000", dec("1.2345"), ""},
		{"12345e-4", dec("1.2345"), ""},
		{"0.0001", dec("0.0001"), ""},
		{"922337203685477.5807", dec("922337203685477.5807"), ""},
		{"-922337203685477.5808", dec("-922337203685477.5808"), ""},
		{"1.23456", nil, "more than 4 digits"},
		{"0.00001", nil, "more than 4 digits"},
		{"1e-5", nil, "more than 4 digits"},
		{"9223372036854775808", nil, "out of range"},
		{"-9223372036854775809", nil, "out of range"},
		{"1e19", nil, "out of range"},
		{"1e1000000000", nil, "out of range"},
		{"1e-1000000000", nil, "out of range"},
		{"922337203685477.5808", nil, "out of range"},
		{"10000000000000000.5", nil, "out of range"},
		{"", nil, "not a JSON number"},
		{"-", nil, "not a JSON number"},
		{"1.", nil, "not a JSON number"},
		{".5", nil, "not a JSON number"},
		{"1e", nil, "not a JSON number"},
		{"+1", nil, "not a JSON number"},
		{"0x10", nil, "not a JSON number"},
		{"NaN", nil, "not a JSON number"},
		{"1e+-3", nil, "not a JSON number"},
	}
	for _, tt := range tests {
		got, err := numberValue(tt.in)
		switch {
		case tt.want == nil && err == nil:
			t.Errorf("numberValue(%q) = %v; want refusal", tt.in, got)
		case tt.want == nil && !strings.Contains(err.Error(), tt.err):
			t.Errorf("numberValue(%q) error %q; want it to contain %q", tt.in, err, tt.err)
		case tt.want != nil && err != nil:
			t.Errorf("numberValue(%q) error %v; want %v", tt.in, err, tt.want)
		case tt.want != nil && !tt.want.Equal(got):
			t.Errorf("numberValue(%q) = %v (%T); want %v (%T)", tt.in, got, got, tt.want, tt.want)
		}
	}
}

func TestFloatValue(t *testing.T) {
	for _, tt := range []struct {
		f    float64
		want string // Cedar text, or "" for refused
	}{
		{0.1, `decimal("0.1")`},
		{3, "3"},
		{-2.5, `decimal("-2.5")`},
		{1e15, "1000000000000000"},
		{9007199254740993, "9007199254740992"}, // the float JSON decoding made of it
		{math.Pow(2, 63), ""},
		{1e-7, ""},
		{math.NaN(), ""},
		{math.Inf(1), ""},
	} {
		got, err := floatValue(tt.f, 64)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("floatValue(%v) = %v; want refusal", tt.f, got)
		case tt.want != "" && err != nil:
			t.Errorf("floatValue(%v): %v", tt.f, err)
		case tt.want != "" && string(got.MarshalCedar()) != tt.want:
			t.Errorf("floatValue(%v) = %s; want %s", tt.f, got.MarshalCedar(), tt.want)
		}
	}
	if got, err := floatValue(float64(float32(0.1)), 32); err != nil || !got.Equal(mustDecimal("0.1")) {
		t.Errorf("float32 0.1 = %v, %v; want decimal 0.1", got, err)
	}
}

func mustDecimal(s string) types.Decimal {
	d, err := types.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestArgsRecord(t *testing.T) {
	dec := json.NewDecoder(strings.NewReader(`{"a": 1, "b": [1, "x", true, {"c": 2.5}], "n": null, "weird key": {"": 12345678901234567890}}`))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		t.Fatal(err)
	}
	_, err := argsRecord(args)
	if err == nil || !strings.Contains(err.Error(), `argument ["weird key"][""]: 12345678901234567890 is out of range`) {
		t.Fatalf("argsRecord error = %v; want the path of the out-of-range number", err)
	}
	delete(args, "weird key")
	rec, err := argsRecord(args)
	if err != nil {
		t.Fatal(err)
	}
	want := types.NewRecord(types.RecordMap{
		"a": types.Long(1),
		"b": types.NewSet(types.Long(1), types.String("x"), types.True, types.NewRecord(types.RecordMap{"c": mustDecimal("2.5")})),
	})
	if !rec.Equal(want) {
		t.Errorf("argsRecord = %s; want %s", rec.MarshalCedar(), want.MarshalCedar())
	}
	if _, ok := rec.Get("n"); ok {
		t.Errorf("null member was kept")
	}

	typed := map[string]any{"i": 1, "u": uint64(7), "i8": int8(-3), "ss": []string{"a"}, "ms": map[string]string{"k": "v"}, "f32": float32(1.5)}
	if _, err := argsRecord(typed); err != nil {
		t.Errorf("Go-typed arguments: %v", err)
	}
	if _, err := argsRecord(map[string]any{"u": uint64(math.MaxUint64)}); err == nil {
		t.Errorf("uint64 max was accepted")
	}
}

func TestArgsDepth(t *testing.T) {
	deep := "1"
	for range maxArgDepth + 2 {
		deep = `{"x":` + deep + `}`
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(deep), &args); err != nil {
		t.Fatal(err)
	}
	if _, err := argsRecord(args); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("argsRecord of %d levels: %v; want refusal", maxArgDepth+2, err)
	}
	shallow := map[string]any{"x": map[string]any{"y": []any{[]any{1}}}}
	if _, err := argsRecord(shallow); err != nil {
		t.Errorf("shallow arguments refused: %v", err)
	}
}
