package skill

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
)

// Manifest is SKILL.md's front matter, as the Agent Skills format defines it
// (https://agentskills.io/specification).
type Manifest struct {
	Name          string            `yaml:"name" json:"name"`
	Description   string            `yaml:"description" json:"description"`
	License       string            `yaml:"license,omitempty" json:"license,omitempty"`
	Compatibility string            `yaml:"compatibility,omitempty" json:"compatibility,omitempty"`
	Metadata      map[string]string `yaml:"metadata,omitempty" json:"metadata,omitempty"`
	// AllowedTools is what the skill says it needs (space-delimited in SKILL.md). It is
	// informational: warden never reads it as a grant.
	AllowedTools []string `yaml:"-" json:"allowed_tools,omitempty"`
	// Body is SKILL.md after the front matter: the instructions.
	Body string `yaml:"-" json:"-"`
}

// The format's bounds.
const (
	maxName          = 64
	maxDescription   = 1024
	maxCompatibility = 500
	maxFrontMatter   = 64 << 10
)

// ParseManifest reads SKILL.md: front matter between '---' lines, then the body. Unknown keys
// are refused (a typo must not pass silently), as are a missing or malformed name, a missing
// description and values over the format's bounds.
func ParseManifest(data []byte) (*Manifest, error) {
	m, err := parseManifest(data)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "%s: %v", ManifestFile, err)
	}
	return m, nil
}

func parseManifest(data []byte) (*Manifest, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("not UTF-8 text")
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	rest, ok := strings.CutPrefix(text, "---\n")
	if !ok {
		return nil, fmt.Errorf("no front matter: the file must start with a '---' line")
	}
	front, body, ok := strings.Cut(rest, "\n---\n")
	if !ok {
		if f, found := strings.CutSuffix(rest, "\n---"); found {
			front, body, ok = f, "", true
		}
	}
	if !ok {
		return nil, fmt.Errorf("the front matter has no closing '---' line")
	}
	if len(front) > maxFrontMatter {
		return nil, fmt.Errorf("front matter over %d bytes", maxFrontMatter)
	}
	var raw struct {
		Name          string            `yaml:"name"`
		Description   string            `yaml:"description"`
		License       string            `yaml:"license"`
		Compatibility string            `yaml:"compatibility"`
		Metadata      map[string]string `yaml:"metadata"`
		AllowedTools  string            `yaml:"allowed-tools"`
	}
	dec := yaml.NewDecoder(strings.NewReader(front))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("front matter: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	m := &Manifest{Name: raw.Name, Description: strings.TrimSpace(raw.Description), License: raw.License,
		Compatibility: raw.Compatibility, Metadata: raw.Metadata, AllowedTools: strings.Fields(raw.AllowedTools), Body: body}
	if err := ValidateName(m.Name); err != nil {
		return nil, err
	}
	switch n := utf8.RuneCountInString(m.Description); {
	case n == 0:
		return nil, fmt.Errorf("description is required: say what the skill does and when to use it")
	case n > maxDescription:
		return nil, fmt.Errorf("description is %d characters, over %d", n, maxDescription)
	}
	if n := utf8.RuneCountInString(m.Compatibility); n > maxCompatibility {
		return nil, fmt.Errorf("compatibility is %d characters, over %d", n, maxCompatibility)
	}
	for _, t := range m.AllowedTools {
		if len(t) > 256 {
			return nil, fmt.Errorf("allowed-tools: %q… is not a tool name", t[:32])
		}
	}
	return m, nil
}

// ValidateName checks a skill's name by the format's rule: 1 to 64 lowercase letters, digits
// and hyphens, not starting or ending with a hyphen, no two hyphens in a row.
func ValidateName(name string) error {
	if name == "" || len(name) > maxName {
		return fmt.Errorf("name %q: want 1 to %d characters", name, maxName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("name %q: only lowercase letters, digits and hyphens", name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return fmt.Errorf("name %q: no hyphen at either end or two in a row", name)
	}
	return nil
}

// Manifest parses the tree's SKILL.md.
func (t *Tree) Manifest() (*Manifest, error) {
	f := t.File(ManifestFile)
	if f == nil {
		return nil, warden.Errorf(warden.EInvalid, "no %s at the skill's root", ManifestFile)
	}
	return ParseManifest(f.Data)
}
