package budget

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/wardenhq/warden"
)

// FuzzParseSpec: ParseSpec never panics, refuses with EInvalid, and what it accepts is valid and
// reads back the same through Format.
func FuzzParseSpec(f *testing.F) {
	for _, s := range [][4]string{
		{"triage-bot", "github", "issues.comment", "rate 20/hour"},
		{"triage-bot", "", "", "rate 5/s"},
		{"triage-bot", "github", "", "quota 1000/day"},
		{"triage-bot", "github", "", "concurrency 4"},
		{"pay-bot", "payments", "send", "sum amount 500/day"},
		{"pay-bot", "payments", "send", "sum payment.amount 99.95/h"},
		{"pay-bot", "payments", "send", "sum a 1000000000000000/m"},
		{"pay-bot", "payments", "send", "sum a 0.000000000000000000000000001/m"},
		{"pay-bot", "payments", "send", "sum a 999999999999999.99999/m"},
		{"x", "y", "a/b-c_d.e", "quota 007/d"},
		{"", "", "", "rate -1/hour"},
		{"a", "", "", "concurrency 4/hour"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, agent, tool, action, spec string) {
		b, err := ParseSpec(agent, tool, action, spec)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("ParseSpec error %v has code %q", err, warden.ErrorCode(err))
			}
			return
		}
		if err := validate(b); err != nil {
			t.Fatalf("ParseSpec(%q) = %+v, which validate refuses: %v", spec, b, err)
		}
		text := Format(b)
		b2, err := ParseSpec(agent, tool, action, text)
		if err != nil {
			t.Fatalf("ParseSpec(%q) = %+v; Format = %q, which does not parse: %v", spec, b, text, err)
		}
		if *b2 != *b {
			t.Fatalf("ParseSpec(%q) = %+v; ParseSpec(Format = %q) = %+v", spec, b, text, b2)
		}
		_ = Describe(b)
	})
}

// FuzzSumArgument: whatever JSON arguments an agent sends, looking up a sum's argument never panics
// and accepts only a finite non-negative number.
func FuzzSumArgument(f *testing.F) {
	for _, s := range []string{
		`{"amount": 5}`, `{"amount": "5"}`, `{"amount": -1}`, `{"payment": {"amount": 1e308}}`,
		`{"payment.amount": 2, "payment": {"amount": 3}}`, `{"amount": null}`, `{"amount": [1]}`, `{"amount": 1e999}`,
	} {
		f.Add(s, "amount")
		f.Add(s, "payment.amount")
	}
	f.Fuzz(func(t *testing.T, args, path string) {
		if argProblem(path) != "" {
			return
		}
		for _, useNumber := range []bool{false, true} {
			dec := json.NewDecoder(bytes.NewReader([]byte(args)))
			if useNumber {
				dec.UseNumber()
			}
			var m map[string]any
			if dec.Decode(&m) != nil {
				return
			}
			amount, problem := argAmount(m, path)
			if problem == "" && (math.IsNaN(amount) || math.IsInf(amount, 0) || amount < 0) {
				t.Fatalf("argAmount(%s, %q) accepted %v", args, path, amount)
			}
		}
	})
}
