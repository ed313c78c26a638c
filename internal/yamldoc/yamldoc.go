// Package yamldoc decodes a YAML document strictly (unknown keys are errors) and says what is
// wrong in the document's own terms: the field's path and line, never a Go type.
package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrEmpty is returned for a document with nothing in it.
var ErrEmpty = errors.New("the document is empty")

// Decode decodes data into v, which must be a pointer. Keys v's type does not have are errors.
// An error lists every problem the decoder found, one per line, each as
// `tools[2].risk: [1] is not a string (line 14)`.
func Decode(data []byte, v any) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return syntaxError(err)
	}
	if len(root.Content) == 0 {
		return ErrEmpty
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return ErrEmpty
	}
	idx := index(&root)
	t := reflect.TypeOf(v)
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			msgs = append(msgs, idx.translate(m, t))
		}
	} else {
		msgs = append(msgs, idx.translate(strings.TrimPrefix(err.Error(), "yaml: "), t))
	}
	return errors.New(strings.Join(msgs, "\n"))
}

var syntaxRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(err error) error {
	if m := syntaxRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("not valid YAML: %s (line %s)", m[2], m[1])
	}
	return fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
}

// place is a node of the document and the path that leads to it.
type place struct {
	path []string // "tools", "[2]", "risk"
	node *yaml.Node
	key  *yaml.Node // the key naming it in its mapping, if any
}

type docIndex []place

func index(root *yaml.Node) docIndex {
	var idx docIndex
	var walk func(n *yaml.Node, path []string, key *yaml.Node)
	walk = func(n *yaml.Node, path []string, key *yaml.Node) {
		idx = append(idx, place{path: path, node: n, key: key})
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, nil)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				walk(n.Content[i+1], append(path[:len(path):len(path)], k.Value), k)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, append(path[:len(path):len(path)], "["+strconv.Itoa(i)+"]"), nil)
			}
		}
	}
	walk(root, nil, nil)
	return idx
}

var (
	lineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	mismatchRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into \\S+$")
)

// translate rewrites one message of the decoder.
func (idx docIndex) translate(msg string, t reflect.Type) string {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(m[1])
	rest := m[2]
	if u := unknownRE.FindStringSubmatch(rest); u != nil {
		for _, p := range idx {
			if p.key != nil && p.key.Line == line && p.key.Value == u[1] {
				parent := p.path[:len(p.path)-1]
				s := fmt.Sprintf("unknown key %q", u[1])
				if near := nearest(u[1], keysOf(typeAt(t, parent))); near != "" {
					s += fmt.Sprintf(" (did you mean %q?)", near)
				}
				if len(parent) > 0 {
					s = join(parent) + ": " + s
				}
				return fmt.Sprintf("%s (line %d)", s, line)
			}
		}
		return fmt.Sprintf("unknown key %q (line %d)", u[1], line)
	}
	if mm := mismatchRE.FindStringSubmatch(rest); mm != nil {
		p := idx.find(line, mm[1], mm[2])
		if p == nil {
			return fmt.Sprintf("%s is not valid here (line %d)", shown(mm[1], mm[2]), line)
		}
		return fmt.Sprintf("%s: %s is not %s (line %d)", join(p.path), shown(mm[1], mm[2]), want(typeAt(t, p.path)), line)
	}
	// A message of a type's own UnmarshalYAML, which names the line itself.
	if p := idx.find(line, "", ""); p != nil && len(p.path) > 0 {
		return fmt.Sprintf("%s: %s (line %d)", join(p.path), rest, line)
	}
	return fmt.Sprintf("%s (line %d)", rest, line)
}

// find returns the deepest node on line whose tag and value match (any, when tag is empty).
func (idx docIndex) find(line int, tag, value string) *place {
	var found *place
	for i := range idx {
		p := &idx[i]
		if p.node.Line != line || p.node.Kind == yaml.DocumentNode {
			continue
		}
		if tag != "" && (p.node.ShortTag() != tag || (p.node.Kind == yaml.ScalarNode && value != "" && p.node.Value != value)) {
			continue
		}
		if found == nil || len(p.path) > len(found.path) {
			found = p
		}
	}
	return found
}

func join(path []string) string {
	return strings.ReplaceAll(strings.Join(path, "."), ".[", "[")
}

// shown is how a message quotes the document's value.
func shown(tag, value string) string {
	switch tag {
	case "!!seq":
		return "a list"
	case "!!map":
		return "a mapping"
	case "!!str":
		return strconv.Quote(value)
	}
	return value
}

// typeAt follows path through t as the decoder does; nil when it cannot.
func typeAt(t reflect.Type, path []string) reflect.Type {
	for _, seg := range path {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t == nil {
			return nil
		}
		switch {
		case strings.HasPrefix(seg, "[") && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			t = t.Elem()
		case t.Kind() == reflect.Map:
			t = t.Elem()
		case t.Kind() == reflect.Struct:
			t = fieldType(t, seg)
		default:
			return nil
		}
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// yamlFields lists a struct's keys as the decoder sees them, inline structs included.
func yamlFields(t reflect.Type, fn func(key string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !yamlFields(ft, fn) {
				return false
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if !fn(name, f.Type) {
			return false
		}
	}
	return true
}

func fieldType(t reflect.Type, key string) reflect.Type {
	var found reflect.Type
	yamlFields(t, func(k string, ft reflect.Type) bool {
		if k == key {
			found = ft
			return false
		}
		return true
	})
	return found
}

func keysOf(t reflect.Type) []string {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	yamlFields(t, func(k string, _ reflect.Type) bool { keys = append(keys, k); return true })
	return keys
}

// want names what a value of type t is written as.
func want(t reflect.Type) string {
	if t == nil {
		return "valid here"
	}
	if t.String() == "time.Duration" {
		return "a duration (e.g. 30s, 5m)"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping (key: value lines)"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "valid here"
}

// nearest returns the key closest to s, when one is a likely misspelling of it.
func nearest(s string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if d := distance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b (short keys only).
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Locate finds the entry of the list under key section whose name is name (tools: - name: bank)
// and, when msg mentions one of its keys, that key: it returns the path and line to quote with
// a message about that entry from elsewhere (the server's checks of warden.yaml), or ok false.
func Locate(data []byte, section, name, msg string) (path string, line int, ok bool) {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return "", 0, false
	}
	top := root.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != section || top.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, el := range top.Content[i+1].Content {
			if el.Kind != yaml.MappingNode || valueOf(el, "name") != name {
				continue
			}
			path, line = fmt.Sprintf("%s[%d]", section, j), el.Line
			best := len(msg)
			for k := 0; k+1 < len(el.Content); k += 2 {
				key := el.Content[k].Value
				if key == "name" {
					continue
				}
				if at := wordIndex(msg, key); at >= 0 && at < best {
					best, path, line = at, fmt.Sprintf("%s[%d].%s", section, j, key), el.Content[k+1].Line
				}
			}
			return path, line, true
		}
	}
	return "", 0, false
}

func valueOf(m *yaml.Node, key string) string {
	for k := 0; k+1 < len(m.Content); k += 2 {
		if m.Content[k].Value == key {
			return m.Content[k+1].Value
		}
	}
	return ""
}

// wordIndex is where word appears in s as a whole word, or -1.
func wordIndex(s, word string) int {
	isWord := func(b byte) bool {
		return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	}
	for off := 0; ; {
		i := strings.Index(s[off:], word)
		if i < 0 {
			return -1
		}
		i += off
		end := i + len(word)
		if (i == 0 || !isWord(s[i-1])) && (end == len(s) || !isWord(s[end])) {
			return i
		}
		off = i + 1
	}
}
