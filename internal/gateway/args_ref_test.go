package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"
)

// The reference is the two-pass decoder DecodeArguments replaced: encoding/json with UseNumber,
// then a token walk for repeated keys — with, between them, a walk of the raw strings that
// refuses text that is not Unicode. DecodeArguments must agree with it on every input.

// decodeArgumentsReference decodes with encoding/json, then walks the tokens for repeated keys.
func decodeArgumentsReference(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return map[string]any{}, nil
	}
	if len(raw) > maxArguments {
		return nil, errors.New("arguments are larger than 1 MiB")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var args map[string]any
	// Only space may follow the object: More reports false at a stray ']' or '}', which the
	// fuzzer found ({"":1,"":2}] is a syntax error, and a syntax error wins over a repeated key).
	if err := dec.Decode(&args); err != nil || dec.More() || len(bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, errors.New("arguments must be one JSON object")
	}
	if args == nil {
		args = map[string]any{}
	}
	// encoding/json reads a lone surrogate escape or a byte that is not UTF-8 as U+FFFD;
	// such text could mean something else upstream, so it is refused.
	if err := checkTextReference(raw); err != nil {
		return nil, err
	}
	// Go keeps the last of two equal keys; an upstream may keep the first. Policy and budgets must
	// judge what the upstream will act on, so a document that can be read two ways is refused.
	if err := checkDuplicateKeysReference(raw); err != nil {
		return nil, err
	}
	return args, nil
}

// checkTextReference walks the strings of a valid JSON document and reports the first, in
// document order, that holds a lone surrogate escape or bytes that are not UTF-8.
func checkTextReference(raw []byte) error {
	inString := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\' && raw[i+1] == 'u':
			u, _ := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
			i += 5
			switch r := rune(u); {
			case 0xdc00 <= r && r <= 0xdfff:
				return errLoneSurrogate
			case 0xd800 <= r && r <= 0xdbff:
				var low uint64
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					low, _ = strconv.ParseUint(string(raw[i+3:i+7]), 16, 16)
				}
				if low < 0xdc00 || low > 0xdfff {
					return errLoneSurrogate
				}
				i += 6
			}
		case c == '\\':
			i++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return errNotUTF8
			}
			i += size - 1
		}
	}
	return nil
}

// checkDuplicateKeysReference walks a valid JSON document and reports an object with a repeated key.
func checkDuplicateKeysReference(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		keys      map[string]bool
		object    bool
		expectKey bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errors.New("arguments must be one JSON object")
		}
		top := len(stack) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top >= 0 && stack[top].object {
					stack[top].expectKey = true
				}
				stack = append(stack, frame{object: t == '{', expectKey: t == '{', keys: map[string]bool{}})
				continue
			case '}', ']':
				stack = stack[:top]
				if top-1 >= 0 && stack[top-1].object {
					stack[top-1].expectKey = true
				}
				continue
			}
		case string:
			if top >= 0 && stack[top].object && stack[top].expectKey {
				if stack[top].keys[t] {
					return fmt.Errorf("arguments repeat the key %s", quote(t))
				}
				stack[top].keys[t] = true
				stack[top].expectKey = false
				continue
			}
		}
		if top >= 0 && stack[top].object {
			stack[top].expectKey = true
		}
	}
}

func sameDecoding(t *testing.T, raw string) {
	t.Helper()
	got, gotErr := DecodeArguments(json.RawMessage(raw))
	want, wantErr := decodeArgumentsReference(json.RawMessage(raw))
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%q: error %v, want %v", raw, gotErr, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decoded %#v, want %#v", raw, got, want)
	}
	if gotErr != nil {
		return
	}
	// The canonical form the audit digest covers must be json.Marshal's, byte for byte.
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, ok := appendJSON(nil, got)
	if !ok || !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("%q: encoded %s (%v), want %s", raw, gotJSON, ok, wantJSON)
	}
}

var decodingCorpus = []string{
	``, ` `, "\f", `null`, " null\n", `nul`, `{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10,"b":[1,2,{"c":null}],"d":true,"e":false}`,
	`{"a":{"b":[1,{"c":2}]}}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":1,"a":2,"b":}`, `[]`, `{"":""}`,
	`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":.5}`, `{"a":1e}`, `{"a":1E+}`, `{"a":truex}`, `{"a":1} }`, `{"a":1} ]`,
	`{"a":1} x`, `{"a":1}{"b":2}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":[1,]}`, `{"a":[,1]}`,
	`{"s":"\ud800"}`, `{"s":"\ud800\udc00"}`, `{"s":"\udc00\ud800"}`, `{"s":"\ud800\u0041"}`, `{"s":"\ud800\"}`,
	`{"s":"\'"}`, `{"s":"\x"}`, `{"s":"a\/b\\c\"d\b\f\n\r\t"}`, "{\"s\":\"\x01\"}", "{\"s\":\"\xff\xfe\"}",
	"{\"\xff\":1,\"\xfe\":2}", `{"s":"<>&` + "\u2028\u2029" + `"}`, `{"s":"\u00e9\u4e2d"}`, `{"s":"\uZZZZ"}`, `{"s":"\u12"}`,
	`{"a":[[[[[]]]]]}`, `{"amount": 12345678901234567890, "to": "x"}`, "\ufeff{}", `{"a":1}` + "\u00a0",
	`{"b":1,"a":2,"B":3,"é":4,"":5}`,
	`{"to":"bob\ud800"}`, `{"to":"bob\udfff"}`, `{"to":"bob\ud83d\ude00"}`, `{"to":"\uD83D\uDE00"}`, `{"\ud800":1}`,
	`{"a":"\ud800","a":1}`, `{"a":"\ud800","b":}`, "{\"a\":\"\xff\",\"b\":\"\\udc00\"}", "{\"a\":\"\\udc00\",\"b\":\"\xff\"}",
	"{\"s\":\"\xed\xa0\x80\"}", `{"s":"\ud800\ud800\udc00"}`, `{"s":"\ufffd"}`,
}

func TestDecodeArgumentsMatchesEncodingJSON(t *testing.T) {
	for _, raw := range decodingCorpus {
		sameDecoding(t, raw)
	}
	deep := func(n int) string {
		return `{"a":` + string(bytes.Repeat([]byte("["), n-1)) + string(bytes.Repeat([]byte("]"), n-1)) + `}`
	}
	sameDecoding(t, deep(maxArgumentDepth))
	sameDecoding(t, deep(maxArgumentDepth+1))
}

func FuzzDecodeArgumentsMatchesEncodingJSON(f *testing.F) {
	for _, s := range decodingCorpus {
		f.Add(s)
	}
	f.Fuzz(sameDecoding)
}

func TestAppendJSONFallsBack(t *testing.T) {
	for _, v := range []any{json.Number(""), json.Number("1x"), json.Number(" 1"), map[string]any{"a": 1}, []any{int64(2)}} {
		if b, ok := appendJSON(nil, v); ok {
			t.Errorf("%#v: encoded as %s; want a fallback to json.Marshal", v, b)
		}
	}
}
