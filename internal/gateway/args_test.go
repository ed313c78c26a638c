package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
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

// exactMeaning reads a valid JSON document as a parser that keeps every string exactly as
// sent would — as UTF-16 code units, a lone surrogate escape as itself, a byte that is not
// UTF-8 as itself — and writes that reading down with object keys sorted, so that two documents
// that mean the same to such a parser, and only those, have the same meaning.
func exactMeaning(raw []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return nil, false
	}
	tree, rest, ok := exactValue(bytes.TrimLeft(v, " \t\r\n"))
	if !ok || len(bytes.TrimSpace(rest)) != 0 {
		return nil, false
	}
	b, err := json.Marshal(tree)
	return b, err == nil
}

// exactValue reads one value of valid JSON at the start of s; strings become the hex of their
// code units (a byte that is not UTF-8 as 1xx, outside the range of code units).
func exactValue(s []byte) (any, []byte, bool) {
	s = bytes.TrimLeft(s, " \t\r\n")
	if len(s) == 0 {
		return nil, s, false
	}
	switch s[0] {
	case '{':
		m := map[string]any{}
		s = bytes.TrimLeft(s[1:], " \t\r\n")
		if s[0] == '}' {
			return m, s[1:], true
		}
		for {
			k, rest, ok := exactValue(s)
			key, isString := k.(exactString)
			if !ok || !isString {
				return nil, s, false
			}
			rest = bytes.TrimLeft(rest, " \t\r\n")[1:] // ':'
			v, rest, ok := exactValue(rest)
			if !ok {
				return nil, s, false
			}
			m[string(key)] = v
			rest = bytes.TrimLeft(rest, " \t\r\n")
			if rest[0] == '}' {
				return m, rest[1:], true
			}
			s = rest[1:] // ','
		}
	case '[':
		a := []any{}
		s = bytes.TrimLeft(s[1:], " \t\r\n")
		if s[0] == ']' {
			return a, s[1:], true
		}
		for {
			v, rest, ok := exactValue(s)
			if !ok {
				return nil, s, false
			}
			a = append(a, v)
			rest = bytes.TrimLeft(rest, " \t\r\n")
			if rest[0] == ']' {
				return a, rest[1:], true
			}
			s = rest[1:]
		}
	case '"':
		var units []string
		for i := 1; i < len(s); {
			c := s[i]
			switch {
			case c == '"':
				return exactString(strings.Join(units, ".")), s[i+1:], true
			case c == '\\':
				esc := s[i+1]
				if esc == 'u' {
					units = append(units, strings.ToLower(string(s[i+2:i+6])))
					i += 6
					continue
				}
				r := map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[esc]
				units = append(units, fmt.Sprintf("%04x", r))
				i += 2
			default:
				r, size := utf8.DecodeRune(s[i:])
				if r == utf8.RuneError && size == 1 {
					units = append(units, fmt.Sprintf("1%02x", c))
				} else {
					for _, u := range utf16.Encode([]rune{r}) {
						units = append(units, fmt.Sprintf("%04x", u))
					}
				}
				i += size
			}
		}
		return nil, s, false
	}
	// A number or a literal: its text up to the next delimiter.
	end := bytes.IndexAny(s, ",]} \t\r\n")
	if end < 0 {
		end = len(s)
	}
	return "#" + string(s[:end]), s[end:], true // never the hex of a string's units
}

// exactString is a string as exactValue reads it.
type exactString string

// canonical is what the audit digest of accepted arguments covers (Gateway.callEvent).
func canonical(t *testing.T, args map[string]any) []byte {
	t.Helper()
	b, ok := encodeArgs(nil, args)
	if !ok {
		t.Fatalf("accepted arguments %v cannot be encoded", args)
	}
	return b
}

// The digest is faithful: the canonical form it covers means exactly what the agent sent, so
// two accepted documents that mean different things never share a digest — "bob\ud800" and
// "bob\udfff" may not both pass as "bob\ufffd".
func TestArgumentsDigestMeansWhatWasSent(t *testing.T) {
	for _, c := range []struct {
		raw string
		err error
	}{
		{`{"to":"bob\ud800"}`, errLoneSurrogate},
		{`{"to":"bob\udfff"}`, errLoneSurrogate},
		{`{"to":"bob\ud800x"}`, errLoneSurrogate},
		{`{"to":"bob\ud800\ud800"}`, errLoneSurrogate},
		{`{"to":"\udc00\ud800"}`, errLoneSurrogate},
		{`{"b\udfff":"x"}`, errLoneSurrogate},
		{`{"a":[{"b":"\ud800"}]}`, errLoneSurrogate},
		{"{\"to\":\"bob\xff\"}", errNotUTF8},
		{"{\"to\":\"\xed\xa0\x80\"}", errNotUTF8}, // a surrogate encoded as UTF-8
		{`{"to":"bob\ud83d\ude00"}`, nil},
		{`{"to":"bob\uD83D\uDE00"}`, nil},
		{`{"to":"bob😀"}`, nil},
		{`{"to":"bob\ufffd"}`, nil},
		{`{"a":"\ud800", "b":}`, errNotOneObject}, // a syntax error wins
	} {
		args, err := DecodeArguments(json.RawMessage(c.raw))
		if !errors.Is(err, c.err) {
			t.Errorf("%q: %v, want %v", c.raw, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		sent, _ := exactMeaning([]byte(c.raw))
		digested, _ := exactMeaning(canonical(t, args))
		if !bytes.Equal(sent, digested) {
			t.Errorf("%q: the digest covers %s, which means %s; sent %s", c.raw, canonical(t, args), digested, sent)
		}
	}
}

func FuzzArgumentsDigestMeansWhatWasSent(f *testing.F) {
	pairs := [][2]string{
		{`{"to":"bob\ud800"}`, `{"to":"bob\udfff"}`},
		{`{"to":"bob\ud800"}`, `{"to":"bob\ufffd"}`},
		{"{\"to\":\"bob\xff\"}", "{\"to\":\"bob\xfe\"}"},
		{`{"to":"bob\ud83d\ude00"}`, `{"to":"bob😀"}`},
		{`{"a":1,"b":[true,null,"x"]}`, `{"b":[true,null,"\u0078"],"a":1}`},
	}
	for _, p := range pairs {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		argsA, errA := DecodeArguments(json.RawMessage(a))
		argsB, errB := DecodeArguments(json.RawMessage(b))
		var meanings [2][]byte
		for i, d := range []struct {
			raw  string
			args map[string]any
			err  error
		}{{a, argsA, errA}, {b, argsB, errB}} {
			if d.err != nil || len(bytes.TrimSpace([]byte(d.raw))) == 0 || string(bytes.TrimSpace([]byte(d.raw))) == "null" {
				return
			}
			sent, ok := exactMeaning([]byte(d.raw))
			if !ok {
				t.Fatalf("accepted %q, which is not one JSON value", d.raw)
			}
			digested, ok := exactMeaning(canonical(t, d.args))
			if !ok || !bytes.Equal(sent, digested) {
				t.Fatalf("%q: the digest covers %s, which means %s; sent %s", d.raw, canonical(t, d.args), digested, sent)
			}
			meanings[i] = sent
		}
		if bytes.Equal(canonical(t, argsA), canonical(t, argsB)) && !bytes.Equal(meanings[0], meanings[1]) {
			t.Fatalf("%q and %q share a digest but mean %s and %s", a, b, meanings[0], meanings[1])
		}
	})
}
