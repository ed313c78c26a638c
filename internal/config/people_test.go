package config

import (
	"strings"
	"testing"
	"time"
)

func TestPeopleConfig(t *testing.T) {
	base := "people:\n  oidc:\n    issuer: https://id.example.com\n    client_id: warden\n"
	for doc, want := range map[string]string{
		base + "    roles: {warden-approvers: approver}\n": "",
		base + "    default_role: auditor\n":               "",
		base:                                               "nobody can sign in",
		base + "    roles: {x: boss}\n":                    "unknown role",
		base + "    default_role: root\n":                  "unknown role",
		base + "    roles: {x: admin}\n    client_secret: a\n    client_secret_env: B\n":                 "at most one",
		base + "    roles: {x: admin}\n    role_clam: groups\n":                                          `unknown key "role_clam"`,
		"people:\n  oidc:\n    issuer: http://id.example.com\n    client_id: w\n    roles: {x: admin}\n": "https",
		"people:\n  oidc:\n    issuer: https://id.example.com\n    roles: {x: admin}\n":                  "client_id",
		"people:\n  cli_session_ttl: 30s\n":                                                              "between 1m",
		"people:\n  console_idle_timeout: 30s\n":                                                         "between 1m and 24h",
		"people:\n  console_idle_timeout: 25h\n":                                                         "between 1m and 24h",
	} {
		c := Default()
		err := c.Parse("test.yaml", []byte(doc))
		if err == nil {
			err = c.Validate()
		}
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v; want %q", doc, err, want)
			continue
		}
		if err == nil {
			o := c.People.OIDC
			if o.RoleClaim != "groups" || !*o.RequireVerifiedEmail || strings.Join(o.Scopes, " ") != "openid email profile" ||
				c.People.BrowserSessionTTL != Duration(8*time.Hour) || c.People.CLISessionTTL != Duration(12*time.Hour) || c.People.ConsoleIdleTimeout != Duration(30*time.Minute) {
				t.Errorf("%s: defaults not set: %+v", doc, o)
			}
		}
	}
}
