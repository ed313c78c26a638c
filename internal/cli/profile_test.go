package cli

import (
	"strings"
	"testing"
)

func TestParseProfiles(t *testing.T) {
	for doc, want := range map[string]string{
		"current: a\nprofiles:\n  a: {server: http://x}\n": "",
		"": "",
		"profiles:\n  a: {server: http://x, tokn: y}\n":                  "tokn",
		"current: b\nprofiles:\n  a: {server: http://x}\n":               "does not exist",
		"profiles:\n  a: {token: y}\n":                                   "no server",
		"profiles:\n  a: {server: http://x, token: y, token_file: /z}\n": "not both",
		"profiles:\n  'a b': {server: http://x}\n":                       "profile name",
		"profiles: [1, 2]\n":                                             "cannot unmarshal",
	} {
		_, err := parseProfiles([]byte(doc))
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("parseProfiles(%q) = %v; want %q", doc, err, want)
		}
	}
}

// FuzzParseProfiles: no CLI configuration file makes the parser panic, and what it accepts names
// a server for every profile and an existing current one.
func FuzzParseProfiles(f *testing.F) {
	f.Add([]byte("current: a\nprofiles:\n  a: {server: http://x, token: wps_y}\n"))
	f.Add([]byte("profiles:\n  a: {server: http://x, token_file: /t, expires_at: 2026-01-01T00:00:00Z}\n"))
	f.Add([]byte("current: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseProfiles(b)
		if err != nil {
			return
		}
		for name, pr := range p.Profiles {
			if pr == nil || pr.Server == "" || validProfileName(name) != nil {
				t.Fatalf("accepted profile %q: %+v", name, pr)
			}
		}
		if p.Current != "" && p.Profiles[p.Current] == nil {
			t.Fatalf("accepted current %q", p.Current)
		}
	})
}
