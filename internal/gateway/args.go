package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxArguments bounds the arguments the pipeline decodes for policy.
const maxArguments = 1 << 20

// maxArgumentDepth is encoding/json's nesting limit, kept so that what decodes here is exactly
// what encoding/json would decode.
const maxArgumentDepth = 10000

var errNotOneObject = errors.New("arguments must be one JSON object")

// Arguments whose text is not Unicode are refused: encoding/json reads a lone UTF-16 surrogate
// escape (\ud800) or a byte that is not UTF-8 as U+FFFD, so "bob\ud800" and "bob\udfff" would
// decode, and hash, alike — and an approval of one would let the other through — while the
// upstream gets the raw text, which its parser may read as something else again.
var (
	errLoneSurrogate = errors.New("arguments hold a lone UTF-16 surrogate escape (such as \\ud800), which is not a character; send Unicode text, or a properly paired surrogate escape")
	errNotUTF8       = errors.New("arguments hold bytes that are not UTF-8 text")
)

// DecodeArguments decodes a call's arguments for policy: a JSON object, numbers kept exact.
//
// It accepts what encoding/json's Decoder (with UseNumber) accepts as one object, except
// strings that are not Unicode text (a lone surrogate escape, bytes that are not UTF-8), and
// decodes it to the same values, in one pass that also finds repeated keys: Go keeps the last
// of two equal keys, an upstream may keep the first, and policy and budgets must judge what the
// upstream will act on, so a document that can be read two ways is refused. Refusing text that
// is not Unicode holds the digest to what was sent: the canonical form it covers decodes to
// exactly the strings the document holds. A syntax error anywhere wins over text that is not
// Unicode, and that over a repeated key; each is the first in document order.
func DecodeArguments(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return map[string]any{}, nil
	}
	if len(raw) > maxArguments {
		return nil, errors.New("arguments are larger than 1 MiB")
	}
	d := argDecoder{data: raw}
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != '{' {
		return nil, errNotOneObject
	}
	args, ok := d.object(1)
	if !ok {
		return nil, errNotOneObject
	}
	if d.skipSpace(); d.pos != len(d.data) {
		return nil, errNotOneObject
	}
	if d.badText != nil {
		return nil, d.badText
	}
	if d.dup {
		return nil, fmt.Errorf("arguments repeat the key %s", quote(d.dupKey))
	}
	return args, nil
}

// argDecoder is a strict JSON parser for DecodeArguments. Its methods report false on a syntax
// error, leaving pos anywhere.
type argDecoder struct {
	data    []byte
	pos     int
	dup     bool   // a repeated key was seen
	dupKey  string // the first one, in document order
	badText error  // the first string that is not Unicode text: errLoneSurrogate or errNotUTF8
}

// refuseText notes a string that is not Unicode text; parsing goes on, so that a syntax error
// further on still wins.
func (d *argDecoder) refuseText(err error) {
	if d.badText == nil {
		d.badText = err
	}
}

func (d *argDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\r', '\n':
			d.pos++
		default:
			return
		}
	}
}

// value parses any JSON value; depth is the nesting of the containers it would open.
func (d *argDecoder) value(depth int) (any, bool) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, false
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		m, ok := d.object(depth)
		return m, ok
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.string()
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
}

func (d *argDecoder) literal(word string) bool {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		return false
	}
	d.pos += len(word)
	return true
}

func (d *argDecoder) object(depth int) (map[string]any, bool) {
	if depth > maxArgumentDepth {
		return nil, false
	}
	d.pos++ // '{'
	m := map[string]any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, true
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		k, ok := d.string()
		if !ok {
			return nil, false
		}
		if _, seen := m[k]; seen && !d.dup {
			d.dup, d.dupKey = true, k
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, false
		}
		d.pos++
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return m, true
		default:
			return nil, false
		}
	}
}

func (d *argDecoder) array(depth int) ([]any, bool) {
	if depth > maxArgumentDepth {
		return nil, false
	}
	d.pos++ // '['
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, true
	}
	for {
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return a, true
		default:
			return nil, false
		}
	}
}

// number scans a number by JSON's grammar and keeps its text, as UseNumber does.
func (d *argDecoder) number() (json.Number, bool) {
	end := numberEnd(d.data, d.pos)
	if end < 0 {
		return "", false
	}
	n := json.Number(d.data[d.pos:end])
	d.pos = end
	return n, true
}

// numberEnd returns where the JSON number that starts at s[i] ends, or -1 if none starts there.
func numberEnd[T string | []byte](s T, i int) int {
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == start {
			return -1
		}
	}
	return i
}

// string scans a string and unquotes it as encoding/json does.
func (d *argDecoder) string() (string, bool) {
	s := d.data
	start := d.pos + 1
	// The common case: no escapes, control characters or invalid UTF-8, so the text is the value.
	i := start
	for i < len(s) {
		c := s[i]
		if c == '"' {
			d.pos = i + 1
			return string(s[start:i]), true
		}
		if c == '\\' || c < ' ' {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	b := make([]byte, 0, i-start+16)
	b = append(b, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(b), true
		case c < ' ':
			return "", false
		case c == '\\':
			i++
			if i >= len(s) {
				return "", false
			}
			switch s[i] {
			case '"', '\\', '/':
				b = append(b, s[i])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+1:])
				if r < 0 {
					return "", false
				}
				i += 5
				if utf16.IsSurrogate(r) {
					// A valid pair is consumed whole; anything else is refused (read as U+FFFD,
					// as encoding/json does, and what follows on its own).
					if r2 := escapedRune(s[i:]); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
					d.refuseText(errLoneSurrogate)
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return "", false
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				d.refuseText(errNotUTF8)
			}
			b = utf8.AppendRune(b, r) // invalid UTF-8 becomes U+FFFD, as in encoding/json
			i += size
		}
	}
	return "", false
}

// escapedRune reads a \uXXXX escape at the start of s, or returns -1.
func escapedRune(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	return hex4(s[2:])
}

func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendJSON appends v as json.Marshal would write it: object keys sorted, strings escaped
// alike (HTML characters, U+2028 and U+2029 included, invalid UTF-8 as U+FFFD), numbers as
// written. v is what DecodeArguments returns, or a redaction of it; for any other type it
// reports false and the caller falls back to json.Marshal.
func appendJSON(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		if x {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case string:
		return appendJSONString(dst, x), true
	case json.Number:
		if numberEnd(string(x), 0) != len(x) {
			return dst, false // json.Marshal writes "" as 0 and refuses what is not a number
		}
		return append(dst, x...), true
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		var buf [16]string
		keys := buf[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendJSON(dst, x[k]); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding with HTML escaping, json.Marshal's default.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
