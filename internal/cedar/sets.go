package cedar

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/wardenhq/warden"
)

// SetPrefix names the files of a policy set that hold named value sets rather than Cedar:
// "@set/payees" holds the set payees as a JSON array of strings. Sets are part of a policy set
// version, so a policy and the sets it reads are applied, rolled back and loaded by every
// replica together.
const SetPrefix = "@set/"

// Limits of a named set.
const (
	MaxSetValues   = 100_000
	MaxSetValueLen = 1024
	MaxSetBytes    = 4 << 20 // the set's text, as SetText writes it
)

// typeSet is the entity type of a named set: Set::"payees", whose attribute values is the set.
const typeSet = "Set"

// attrValues is a Set entity's one attribute.
const attrValues = "values"

// SetText encodes values as the text of a set file: a sorted JSON array, without duplicates.
func SetText(values []string) string {
	vs := slices.Clone(values)
	slices.Sort(vs)
	vs = slices.Compact(vs)
	if vs == nil {
		vs = []string{}
	}
	b, _ := json.Marshal(vs)
	return string(b)
}

// ParseSet reads the text of a set file, as SetText writes it or by hand: a JSON array of
// strings, each 1 to MaxSetValueLen bytes of UTF-8, at most MaxSetValues of them and
// MaxSetBytes in all. It returns them sorted, without duplicates.
func ParseSet(text string) ([]string, error) {
	if len(text) > MaxSetBytes {
		return nil, fmt.Errorf("a set is at most %d bytes as JSON", MaxSetBytes)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	var values []string
	if err := dec.Decode(&values); err != nil || values == nil {
		return nil, fmt.Errorf("a set is a JSON array of strings")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("a set is one JSON array of strings, with nothing after it")
	}
	if len(values) > MaxSetValues {
		return nil, fmt.Errorf("a set holds at most %d values, not %d", MaxSetValues, len(values))
	}
	for i, v := range values {
		if v == "" || len(v) > MaxSetValueLen || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl) {
			return nil, fmt.Errorf("value %d: each value is 1 to %d bytes of UTF-8 text without control characters", i+1, MaxSetValueLen)
		}
	}
	slices.Sort(values)
	return slices.Compact(values), nil
}

// SetName returns the name of the set a policy file holds, and whether it holds one.
func SetName(file string) (string, bool) {
	return strings.CutPrefix(file, SetPrefix)
}

// compileSets parses the set files among files into Set entities, noting problems.
func compileSets(files map[string]string, problems *Problems) map[types.EntityUID]types.Entity {
	sets := map[types.EntityUID]types.Entity{}
	for file, text := range files {
		name, ok := SetName(file)
		if !ok {
			continue
		}
		if err := warden.ValidateName("set", name); err != nil {
			*problems = append(*problems, Problem{File: file, Message: warden.ErrorMessage(err)})
			continue
		}
		values, err := ParseSet(text)
		if err != nil {
			*problems = append(*problems, Problem{File: file, Message: err.Error()})
			continue
		}
		vs := make([]types.Value, len(values))
		for i, v := range values {
			vs[i] = types.String(v)
		}
		uid := types.NewEntityUID(typeSet, types.String(name))
		sets[uid] = types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{attrValues: types.NewSet(vs...)})}
	}
	return sets
}

// setSize is the number of values of a Set entity.
func setSize(e types.Entity) int {
	v, _ := e.Attributes.Get(attrValues)
	s, _ := v.(types.Set)
	return s.Len()
}
