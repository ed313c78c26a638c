package gateway

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeArguments(t *testing.T) {
	cases := []struct {
		raw string
		err string
	}{
		{``, ""},
		{`null`, ""},
		{`{"amount": 12345678901234567890, "to": "x"}`, ""},
		{`{"a": {"b": 1, "c": [ {"b": 2}, {"b": 3} ]}, "b": 4}`, ""}, // equal keys in different objects are fine
		{`{"amount": 1, "amount": 1000}`, "repeat the key"},
		{`{"a": {"x": 1, "y": {"x": 2}, "x": 3}}`, "repeat the key"},
		{`{"a": [{"k": 1, "k": 2}]}`, "repeat the key"},
		{`[1, 2]`, "one JSON object"},
		{`{"a": 1} {"b": 2}`, "one JSON object"},
		{`{"a": `, "one JSON object"},
		{`"text"`, "one JSON object"},
	}
	for _, c := range cases {
		args, err := DecodeArguments(json.RawMessage(c.raw))
		if c.err == "" {
			if err != nil || args == nil {
				t.Errorf("%s: %v", c.raw, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: got %v, want an error containing %q", c.raw, err, c.err)
		}
	}
	args, _ := DecodeArguments(json.RawMessage(`{"amount": 12345678901234567890}`))
	if n, ok := args["amount"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("numbers must stay exact: %#v", args["amount"])
	}
}

func FuzzDecodeArguments(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":[1,{"c":2}]}}`, `{"a":1,"a":2}`, `[]`, `{"":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		args, err := DecodeArguments(json.RawMessage(raw))
		if err == nil && args == nil {
			t.Fatal("no error and no arguments")
		}
	})
}
