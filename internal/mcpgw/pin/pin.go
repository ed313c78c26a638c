// Package pin fixes what an MCP tool tells the model. A tool's manifest — name, title,
// description, input and output schema, annotations — is what the model reads as
// instructions, so a server that changes it after review (a "rug pull") changes the agent's
// behaviour without anyone deciding so. Warden pins each manifest by a digest of its canonical
// form when the tool is registered and compares every later tools/list against the pins.
//
// The package is pure: JSON in, digests and differences out, no I/O.
package pin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Fields are the members of a tools/list entry that make up its manifest. Anything else an
// upstream adds (_meta, icons, execution hints) is not read by the model as instructions and
// is not pinned.
var Fields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// maxDepth bounds the nesting of a manifest.
const maxDepth = 64

// Manifest is one tool's pinned form.
type Manifest struct {
	Name string
	// Canonical is the manifest as canonical JSON: the Fields present, members sorted, no
	// insignificant space, numbers in their shortest form.
	Canonical json.RawMessage
	// Digest is "sha256:" and the hex SHA-256 of Canonical.
	Digest string
}

// Parse reads one entry of a tools/list result into its manifest. The entry must be a JSON
// object with a string name.
func Parse(entry []byte) (*Manifest, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(entry, &raw); err != nil {
		return nil, fmt.Errorf("tool manifest: not a JSON object: %w", err)
	}
	var name string
	if err := json.Unmarshal(raw["name"], &name); err != nil || name == "" {
		return nil, fmt.Errorf("tool manifest: no name")
	}
	m := map[string]any{}
	for _, f := range Fields {
		r, ok := raw[f]
		if !ok || bytes.Equal(bytes.TrimSpace(r), []byte("null")) {
			continue
		}
		v, err := decode(r)
		if err != nil {
			return nil, fmt.Errorf("tool manifest %q: %s: %w", name, f, err)
		}
		m[f] = v
	}
	var buf bytes.Buffer
	if err := canonical(&buf, m, 0); err != nil {
		return nil, fmt.Errorf("tool manifest %q: %w", name, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &Manifest{Name: name, Canonical: buf.Bytes(), Digest: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// ParseList reads the tools array of a tools/list result. Two tools of one name are an error:
// the model could not tell which it calls.
func ParseList(tools []json.RawMessage) (map[string]*Manifest, error) {
	out := make(map[string]*Manifest, len(tools))
	for _, t := range tools {
		m, err := Parse(t)
		if err != nil {
			return nil, err
		}
		if _, dup := out[m.Name]; dup {
			return nil, fmt.Errorf("tool %q is listed twice", m.Name)
		}
		out[m.Name] = m
	}
	return out, nil
}

func decode(r json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(r))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// canonical writes v as canonical JSON: object members sorted by name (byte order), no space,
// strings as encoding/json escapes them without HTML escaping, numbers normalised.
func canonical(buf *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case json.Number:
		s, err := number(v)
		if err != nil {
			return err
		}
		buf.WriteString(s)
	case string:
		writeString(buf, v)
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := canonical(buf, e, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if err := canonical(buf, v[k], depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("unexpected %T", v)
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// number normalises a JSON number, so that an upstream writing 1.0, 1 or 1e0 pins the same:
// integers of up to 2^53 as integers, any other value as the shortest form that reads back to
// the same float64. Numbers beyond float64 are refused.
func number(n json.Number) (string, error) {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) {
		return "", fmt.Errorf("number %s out of range", n)
	}
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
		if f == 0 {
			return "0", nil // -0 too
		}
		return strconv.FormatInt(int64(f), 10), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// Change is what differs between a pinned manifest and the one an upstream lists now.
type Change struct {
	Tool string
	Kind ChangeKind
	// Pinned and Current are the digests (empty for an added or removed tool's missing side).
	Pinned, Current string
	// Fields lists the differences, one per JSON Pointer (RFC 6901) within the manifest, for
	// people to review: "/description", "/inputSchema/properties/to/description".
	Fields []FieldChange
}

// ChangeKind says how a tool changed.
type ChangeKind string

// The kinds of change.
const (
	Changed ChangeKind = "changed" // listed again with another manifest: held until accepted
	Added   ChangeKind = "added"   // listed now, never pinned: held until accepted
	Removed ChangeKind = "removed" // pinned, no longer listed: recorded
)

// FieldChange is one difference: the value at Path before and after, as compact JSON (absent
// on a side where Path does not exist), each cut to maxShown bytes.
type FieldChange struct {
	Path   string `json:"path"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// maxShown bounds a value shown in a difference; maxFields the differences listed per tool.
const (
	maxShown  = 2048
	maxFields = 100
)

// Compare lists the tools whose manifests differ from their pins, in name order.
func Compare(pinned, current map[string]*Manifest) []Change {
	var out []Change
	names := make([]string, 0, len(pinned)+len(current))
	for n := range pinned {
		names = append(names, n)
	}
	for n := range current {
		if _, ok := pinned[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		p, c := pinned[n], current[n]
		switch {
		case p == nil:
			out = append(out, Change{Tool: n, Kind: Added, Current: c.Digest, Fields: Diff(nil, c.Canonical)})
		case c == nil:
			out = append(out, Change{Tool: n, Kind: Removed, Pinned: p.Digest})
		case p.Digest != c.Digest:
			out = append(out, Change{Tool: n, Kind: Changed, Pinned: p.Digest, Current: c.Digest, Fields: Diff(p.Canonical, c.Canonical)})
		}
	}
	return out
}

// Diff lists the differences between two canonical manifests (nil for none), by JSON Pointer.
func Diff(before, after json.RawMessage) []FieldChange {
	var b, a any
	if before != nil {
		b, _ = decode(before)
	}
	if after != nil {
		a, _ = decode(after)
	}
	var out []FieldChange
	diff(&out, "", b, a, before != nil, after != nil)
	return out
}

func diff(out *[]FieldChange, path string, b, a any, hasB, hasA bool) {
	if len(*out) >= maxFields {
		return
	}
	bm, bIsMap := b.(map[string]any)
	am, aIsMap := a.(map[string]any)
	if bIsMap && aIsMap || bIsMap && !hasA || aIsMap && !hasB {
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			bv, inB := bm[k]
			av, inA := am[k]
			diff(out, path+"/"+escape(k), bv, av, inB, inA)
		}
		return
	}
	bs, as := show(b, hasB), show(a, hasA)
	if bs != as {
		*out = append(*out, FieldChange{Path: cmpPath(path), Before: bs, After: as})
	}
}

func cmpPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")

func escape(k string) string { return pointerEscape.Replace(k) }

// show renders a value as compact canonical JSON, cut to maxShown bytes.
func show(v any, present bool) string {
	if !present {
		return ""
	}
	var buf bytes.Buffer
	if err := canonical(&buf, v, 0); err != nil {
		return "…"
	}
	s := buf.String()
	if len(s) > maxShown {
		cut := maxShown
		for cut > 0 && s[cut]&0xC0 == 0x80 { // not inside a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
