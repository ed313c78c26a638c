package yamldoc

import (
	"strings"
	"testing"
	"time"
)

type risk string

type tool struct {
	Name   string            `yaml:"name"`
	Risk   risk              `yaml:"risk"`
	Routes []string          `yaml:"routes"`
	Labels map[string]string `yaml:"labels"`
	Inline `yaml:",inline"`
}

type Inline struct {
	Timeout time.Duration `yaml:"timeout"`
	Strict  bool          `yaml:"strict"`
}

type doc struct {
	Tools []tool `yaml:"tools"`
	Max   *int   `yaml:"max"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{
		{"good", "tools:\n  - name: a\n    risk: high\n    strict: true\nmax: 3\n", ""},
		{"empty", "", "the document is empty"},
		{"unknown key", "tools:\n  - name: a\n  - name: b\n    rsik: high\n", `tools[1]: unknown key "rsik" (did you mean "risk"?) (line 4)`},
		{"unknown key, nothing near", "tools:\n  - name: a\n    colour: red\n", `tools[0]: unknown key "colour" (line 3)`},
		{"unknown top key", "tool: []\n", `unknown key "tool" (did you mean "tools"?) (line 1)`},
		{"inline key", "tools:\n  - strikt: true\n", `tools[0]: unknown key "strikt" (did you mean "strict"?) (line 2)`},
		{"list for a named string", "tools:\n  - risk: [high]\n", `tools[0].risk: a list is not a string (line 2)`},
		{"word for a bool", "tools:\n  - strict: maybe\n", `tools[0].strict: "maybe" is not true or false (line 2)`},
		{"word for a pointer to int", "max: lots\n", `max: "lots" is not a whole number (line 1)`},
		{"word for a duration", "tools:\n  - timeout: soon\n", `tools[0].timeout: "soon" is not a duration (e.g. 30s, 5m) (line 2)`},
		{"scalar for a list", "tools:\n  - routes: GET /\n", `tools[0].routes: "GET /" is not a list (line 2)`},
		{"flow mapping", "tools: [{name: a, labels: {x: [1]}}]\n", `tools[0].labels.x: a list is not a string (line 1)`},
		{"scalar for a mapping", "tools:\n  - labels: 3\n", `tools[0].labels: 3 is not a mapping (key: value lines) (line 2)`},
		{"all the mistakes", "tools:\n  - risk: [x]\n    strict: 2\n", "tools[0].risk: a list is not a string (line 2)\ntools[0].strict: 2 is not true or false (line 3)"},
		{"not YAML", "tools:\n  - name: [a\n", "not valid YAML: "},
		{"a tab", "tools:\n\t- name: a\n", "not valid YAML: "},
	} {
		var d doc
		err := Decode([]byte(tc.doc), &d)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLocate(t *testing.T) {
	data := []byte("tools:\n  - name: a\n  - name: b\n    http: x\n    risk: hgh\nagents:\n  - name: b\n")
	for _, tc := range []struct {
		section, name, msg, path string
		line                     int
		ok                       bool
	}{
		{"tools", "b", `unknown risk "hgh"`, "tools[1].risk", 5, true},
		{"tools", "b", "cannot be reached", "tools[1]", 3, true},
		{"tools", "b", "risky business", "tools[1]", 3, true}, // "risky" is not the key risk
		{"agents", "b", "owner is required", "agents[0]", 7, true},
		{"tools", "c", "x", "", 0, false},
		{"budgets", "b", "x", "", 0, false},
	} {
		path, line, ok := Locate(data, tc.section, tc.name, tc.msg)
		if path != tc.path || line != tc.line || ok != tc.ok {
			t.Errorf("Locate(%s, %s, %q) = %s, %d, %v; want %s, %d, %v", tc.section, tc.name, tc.msg, path, line, ok, tc.path, tc.line, tc.ok)
		}
	}
}

// FuzzDecode: no document makes Decode or Locate panic, and an error is never empty.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "tools:\n  - name: a\n    rsik: 1\n", "tools: [{labels: {x: [1]}}]", "max: [", "- a\n- b\n", "tools:\n  - timeout: soon\n", "&a [*a]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		if err := Decode(data, &d); err != nil && err.Error() == "" {
			t.Fatal("an empty error")
		}
		Locate(data, "tools", "a", "risk")
	})
}
