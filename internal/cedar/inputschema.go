package cedar

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// Bounds of an input schema, checked when a tool declares it: a schema is read on every call
// of its action, so one that is large or deep is refused at registration, not paid per call.
const (
	maxSchemaBytes = 64 << 10
	maxSchemaDepth = 16
	maxSchemaNodes = 2000
	maxSchemaEnum  = 1000
)

// InputSchema is the subset of JSON Schema warden reads from a tool's input schema to type its
// arguments: type (one name or a list), properties, items, required, enum and format. Every
// other keyword is ignored: it neither narrows nor widens what is accepted. A value that does
// not fit is refused as invalid_arguments before any policy sees it, so a policy that reads an
// array-of-strings argument as a Set of Strings never meets one comma-joined String instead.
type InputSchema struct {
	types      []string // JSON types; empty: any
	properties map[string]*InputSchema
	items      *InputSchema
	required   []string
	enum       []types.Value // the allowed values, as Cedar values (so 4 and 4.0 are one)
	format     string        // a format warden normalises (formatEmail, …); "" otherwise
}

// Formats warden checks and normalises (context.norm). Any other format is ignored.
const (
	formatEmail    = "email"
	formatURI      = "uri"
	formatURL      = "url"
	formatHostname = "hostname"
)

var schemaTypes = []string{"array", "boolean", "integer", "null", "number", "object", "string"}

// ParseInputSchema validates an input schema as a tool declares it and returns it as JSON, to
// store. It refuses a schema over 64 KiB, nested deeper than 16, with more than 2000
// subschemas, or whose known keywords are malformed (a type warden does not know, properties
// that are not an object, …).
func ParseInputSchema(schema map[string]any) (json.RawMessage, error) {
	raw, err := json.Marshal(schema)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "not JSON: %v", err)
	}
	if _, err := CompileInputSchema(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// CompileInputSchema reads a stored input schema (ParseInputSchema's rules).
func CompileInputSchema(raw json.RawMessage) (*InputSchema, error) {
	if len(raw) > maxSchemaBytes {
		return nil, warden.Errorf(warden.EInvalid, "the schema is larger than %d KiB", maxSchemaBytes>>10)
	}
	var doc any
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return nil, warden.Errorf(warden.EInvalid, "the schema is not JSON: %v", err)
	}
	nodes := 0
	s, err := compileSchema(doc, "", 0, &nodes)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "%s", err.Error())
	}
	return s, nil
}

func compileSchema(doc any, at string, depth int, nodes *int) (*InputSchema, error) {
	where := func() string {
		if at == "" {
			return "the schema"
		}
		return at
	}
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("%s: nested more than %d deep", where(), maxSchemaDepth)
	}
	if *nodes++; *nodes > maxSchemaNodes {
		return nil, fmt.Errorf("more than %d subschemas", maxSchemaNodes)
	}
	if b, ok := doc.(bool); ok && b {
		return &InputSchema{}, nil // true: anything
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a schema is a JSON object", where())
	}
	s := &InputSchema{}
	switch t := m["type"].(type) {
	case nil:
	case string:
		s.types = []string{t}
	case []any:
		for _, v := range t {
			name, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: type lists names of JSON types", where())
			}
			s.types = append(s.types, name)
		}
	default:
		return nil, fmt.Errorf("%s: type is a JSON type's name or a list of them", where())
	}
	for _, t := range s.types {
		if !slices.Contains(schemaTypes, t) {
			return nil, fmt.Errorf("%s: unknown type %q: use %s", where(), t, strings.Join(schemaTypes, ", "))
		}
	}
	if p, ok := m["properties"]; ok {
		props, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: properties is an object of schemas", where())
		}
		s.properties = make(map[string]*InputSchema, len(props))
		for _, name := range slices.Sorted(maps.Keys(props)) {
			sub, err := compileSchema(props[name], at+memberStep(name), depth+1, nodes)
			if err != nil {
				return nil, err
			}
			s.properties[name] = sub
		}
	}
	if it, ok := m["items"]; ok {
		sub, err := compileSchema(it, at+"[]", depth+1, nodes)
		if err != nil {
			return nil, err
		}
		s.items = sub
	}
	if r, ok := m["required"]; ok {
		list, ok := r.([]any)
		if !ok {
			return nil, fmt.Errorf("%s: required is a list of property names", where())
		}
		for _, v := range list {
			name, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: required is a list of property names", where())
			}
			s.required = append(s.required, name)
		}
	}
	if e, ok := m["enum"]; ok {
		list, ok := e.([]any)
		if !ok || len(list) == 0 || len(list) > maxSchemaEnum {
			return nil, fmt.Errorf("%s: enum is a list of 1 to %d values", where(), maxSchemaEnum)
		}
		for _, v := range list {
			if v == nil {
				s.enum = append(s.enum, nil)
				continue
			}
			cv, err := argValue(v, depth)
			if err != nil {
				return nil, fmt.Errorf("%s: enum: %s", where(), err.msg)
			}
			s.enum = append(s.enum, cv)
		}
	}
	if f, ok := m["format"]; ok {
		name, ok := f.(string)
		if !ok {
			return nil, fmt.Errorf("%s: format is a name", where())
		}
		switch name {
		case formatEmail, formatURI, formatURL, formatHostname:
			s.format = name
		}
	}
	return s, nil
}

// dropRequired forgets every required list of the schema and its subschemas.
func (s *InputSchema) dropRequired() {
	s.required = nil
	for _, sub := range s.properties {
		sub.dropRequired()
	}
	if s.items != nil {
		s.items.dropRequired()
	}
}

// argumentsError is arguments that do not fit their action's input schema. Its message names
// the argument and what was expected; it is safe to show the caller.
type argumentsError struct{ *argError }

// Check reports whether decoded JSON arguments fit the schema: nil, or an error naming the
// first argument that does not (in name order) and what it should be.
func (s *InputSchema) Check(args map[string]any) error {
	if s == nil {
		return nil
	}
	if err := s.check(args); err != nil {
		return &argumentsError{err}
	}
	return nil
}

func (s *InputSchema) check(v any) *argError {
	if len(s.types) > 0 && !slices.ContainsFunc(s.types, func(t string) bool { return isJSONType(v, t) }) {
		return &argError{msg: fmt.Sprintf("expected %s, got %s", expected(s), jsonTypeOf(v))}
	}
	if len(s.enum) > 0 && !s.inEnum(v) {
		return &argError{msg: "not one of the values the schema's enum allows"}
	}
	switch v := v.(type) {
	case map[string]any:
		for _, name := range s.required {
			if _, ok := v[name]; !ok {
				return (&argError{msg: "required, and missing"}).within(memberStep(name))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(v)) {
			if sub := s.properties[name]; sub != nil {
				if err := sub.check(v[name]); err != nil {
					return err.within(memberStep(name))
				}
			}
		}
	case []any:
		if s.items != nil {
			for i, m := range v {
				if err := s.items.check(m); err != nil {
					return err.within(fmt.Sprintf("[%d]", i))
				}
			}
		}
	case string:
		if s.format != "" {
			if _, err := normalise(s.format, v); err != nil {
				return &argError{msg: err.Error()}
			}
		}
	}
	return nil
}

func (s *InputSchema) inEnum(v any) bool {
	if v == nil {
		return slices.Contains(s.enum, nil)
	}
	cv, err := argValue(v, 0)
	if err != nil {
		return false
	}
	for _, e := range s.enum {
		if e != nil && e.Equal(cv) {
			return true
		}
	}
	return false
}

// expected renders a schema's types for a message: "an array of strings", "a string or null".
func expected(s *InputSchema) string {
	names := make([]string, len(s.types))
	for i, t := range s.types {
		names[i] = article(t)
		if t == "array" && s.items != nil && len(s.items.types) == 1 {
			names[i] += " of " + s.items.types[0] + "s"
		}
	}
	return strings.Join(names, " or ")
}

func article(t string) string {
	switch t {
	case "array", "integer", "object":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func isJSONType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "number", "integer":
		switch v.(type) {
		case json.Number, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		default:
			return false
		}
		if t == "number" {
			return true
		}
		cv, err := argValue(v, 0)
		if err != nil {
			return false
		}
		_, isLong := cv.(types.Long)
		return isLong
	}
	return false
}

func jsonTypeOf(v any) string {
	for _, t := range []string{"null", "boolean", "string", "object", "array", "integer", "number"} {
		if isJSONType(v, t) {
			return article(t)
		}
	}
	return fmt.Sprintf("a Go %T", v)
}

// normRecord builds context.norm from arguments that fit the schema: the normalised form of
// every string whose schema declares a format warden normalises, at the same path — an array
// of them as a Set, an object as a record. A record is kept when it holds something.
func (s *InputSchema) normRecord(args map[string]any) types.Record {
	if s == nil {
		return emptyRecord
	}
	if v, ok := s.norm(args); ok {
		if rec, ok := v.(types.Record); ok {
			return rec
		}
	}
	return emptyRecord
}

func (s *InputSchema) norm(v any) (types.Value, bool) {
	switch v := v.(type) {
	case string:
		if s.format == "" {
			return nil, false
		}
		nv, err := normalise(s.format, v)
		return nv, err == nil
	case []any:
		if s.items == nil || len(v) == 0 {
			return nil, false
		}
		vs := make([]types.Value, 0, len(v))
		for _, m := range v {
			nv, ok := s.items.norm(m)
			if !ok {
				return nil, false
			}
			vs = append(vs, nv)
		}
		return types.NewSet(vs...), true
	case map[string]any:
		var rm types.RecordMap
		for name, sub := range s.properties {
			m, present := v[name]
			if !present {
				continue
			}
			if nv, ok := sub.norm(m); ok {
				if rm == nil {
					rm = types.RecordMap{}
				}
				rm[types.String(name)] = nv
			}
		}
		if rm == nil {
			return nil, false
		}
		return types.NewRecord(rm), true
	}
	return nil, false
}

// ManifestSchemas reads the input schemas of MCP tools from their pinned manifests (the
// canonical JSON warden pinned, with its "inputSchema"), by server and MCP tool name. They type
// what a call sends — a member of the wrong type is refused — but a missing member is the
// server's to refuse, not warden's: callers of the decision API ask about calls as they record
// them, and a missing argument is absent from context.args, which a policy reading it cannot
// mistake for a value. required is dropped. A held
// manifest is left out: its calls are refused before policy. A schema warden cannot read (the
// subset's rules) is left out too, and named in skipped: the server's calls are then judged
// on their arguments as sent, as before schemas were read.
func ManifestSchemas(pins []*warden.ToolManifest) (schemas map[string]map[string]*InputSchema, skipped []string) {
	for _, m := range pins {
		if m.State != warden.ManifestPinned || len(m.Manifest) == 0 {
			continue
		}
		var doc struct {
			InputSchema json.RawMessage `json:"inputSchema"`
		}
		if json.Unmarshal(m.Manifest, &doc) != nil || len(doc.InputSchema) == 0 {
			continue
		}
		s, err := CompileInputSchema(doc.InputSchema)
		if err != nil {
			skipped = append(skipped, m.Tool+"."+m.Name+": "+warden.ErrorMessage(err))
			continue
		}
		s.dropRequired()
		if schemas == nil {
			schemas = map[string]map[string]*InputSchema{}
		}
		if schemas[m.Tool] == nil {
			schemas[m.Tool] = map[string]*InputSchema{}
		}
		schemas[m.Tool][m.Name] = s
	}
	return schemas, skipped
}

// WithInputSchemas returns an engine that is e but for the input schemas of MCP tools' actions,
// by tool and action (ManifestSchemas): their calls are checked, and typed, as a decision-only
// tool's are. A decision-only tool keeps the schemas it declares. e is not changed.
func (e *Engine) WithInputSchemas(schemas map[string]map[string]*InputSchema) *Engine {
	if e == nil || len(schemas) == 0 {
		return e
	}
	c := *e
	c.tools = make(map[string]*toolEntities, len(e.tools))
	for name, te := range e.tools {
		if s := schemas[name]; s != nil && !te.closed {
			te2 := *te
			te2.schemas = s
			te = &te2
		}
		c.tools[name] = te
	}
	return &c
}
