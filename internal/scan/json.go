package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// maxJSONDepth bounds how deep JSON is walked; a tool's schema has no reason to go deeper.
const maxJSONDepth = 64

// JSON scans every string in a JSON document — values and member names, since a schema's
// property names reach the model too — as text. Each finding's Source is source followed by
// the JSON Pointer (RFC 6901) of the string, e.g. "tool:send/inputSchema/properties/to/description".
// A document that is not JSON is an error.
func (s *Scanner) JSON(source string, doc []byte) ([]Finding, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("scan %s: not JSON: %w", source, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("scan %s: not one JSON value", source)
	}
	var fs []Finding
	if err := s.walk(&fs, source, v, 0); err != nil {
		return nil, err
	}
	return fs, nil
}

func (s *Scanner) walk(fs *[]Finding, path string, v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("scan %s: nested deeper than %d", path, maxJSONDepth)
	}
	switch v := v.(type) {
	case string:
		*fs = append(*fs, s.Text(path, v)...)
	case []any:
		for i, e := range v {
			if err := s.walk(fs, fmt.Sprintf("%s/%d", path, i), e, depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // findings in a stable order
		for _, k := range keys {
			p := path + "/" + pointerEscape.Replace(k)
			*fs = append(*fs, s.Text(p, k)...)
			if err := s.walk(fs, p, v[k], depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")
