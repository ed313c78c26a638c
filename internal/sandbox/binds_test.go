package sandbox

import (
	"strings"
	"testing"
)

// A bind shows a clean absolute host path read-only inside HomeDir, and no two overlap: a bind
// elsewhere could cover a system directory or the workspace.
func TestValidateBinds(t *testing.T) {
	base := Spec{Command: []string{"true"}, Workspace: "/srv/ws"}
	for name, c := range map[string]struct {
		binds []Bind
		want  string
	}{
		"one skill":          {[]Bind{{"/tmp/warden-skills-1/notes", HomeDir + "/.claude/skills/notes"}}, ""},
		"two skills":         {[]Bind{{"/s/a", HomeDir + "/.claude/skills/a"}, {"/s/b", HomeDir + "/.claude/skills/b"}}, ""},
		"outside home":       {[]Bind{{"/s/a", "/usr/bin"}}, "inside " + HomeDir},
		"home itself":        {[]Bind{{"/s/a", HomeDir}}, "inside " + HomeDir},
		"a prefix of home":   {[]Bind{{"/s/a", HomeDir + "x/y"}}, "inside " + HomeDir},
		"escaping with ..":   {[]Bind{{"/s/a", HomeDir + "/../../etc"}}, "inside " + HomeDir},
		"relative source":    {[]Bind{{"s/a", HomeDir + "/a"}}, "absolute"},
		"unclean source":     {[]Bind{{"/s/../a", HomeDir + "/a"}}, "absolute"},
		"the whole host":     {[]Bind{{"/", HomeDir + "/a"}}, "absolute"},
		"the same target":    {[]Bind{{"/s/a", HomeDir + "/a"}, {"/s/b", HomeDir + "/a"}}, "overlap"},
		"a target inside":    {[]Bind{{"/s/a", HomeDir + "/a"}, {"/s/b", HomeDir + "/a/b"}}, "overlap"},
		"a target around it": {[]Bind{{"/s/b", HomeDir + "/a/b"}, {"/s/a", HomeDir + "/a"}}, "overlap"},
	} {
		s := base
		s.Binds = c.binds
		err := s.validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want an error saying %q", name, err, c.want)
		}
	}
}
