package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/loopback"
)

// People configures how people sign in (internal/people; docs/people.md): single sign-on through
// an OpenID Connect provider, and how long their sessions last. Without people.oidc, people use
// admin tokens only.
type People struct {
	OIDC *PeopleOIDC `yaml:"oidc"`
	// BrowserSessionTTL is how long a sign-in in a browser lasts. Default 8h.
	BrowserSessionTTL Duration `yaml:"browser_session_ttl"`
	// CLISessionTTL is how long `warden login` lasts. Default 12h.
	CLISessionTTL Duration `yaml:"cli_session_ttl"`
	// ConsoleIdleTimeout signs a web console session out after this long without a page or
	// form (docs/console.md). Default 30m, 1m to 24h.
	ConsoleIdleTimeout Duration `yaml:"console_idle_timeout"`
}

// PeopleOIDC is the OpenID Connect provider people sign in with.
type PeopleOIDC struct {
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// The client secret: at most one of the secret itself, an environment variable holding it
	// or a file holding it (never logged). None: a public client, PKCE only.
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes asked for. Default openid, email, profile; openid is always asked for.
	Scopes []string `yaml:"scopes"`
	// RoleClaim is the ID token claim (a string or a list of strings) that Roles maps. Default
	// "groups".
	RoleClaim string `yaml:"role_claim"`
	// Roles maps a value of RoleClaim to a warden role; a person with several gets the strongest.
	Roles map[string]warden.Role `yaml:"roles"`
	// DefaultRole is the role of a person none of whose values is in Roles. Empty (the default):
	// such a person cannot sign in.
	DefaultRole warden.Role `yaml:"default_role"`
	// RequireVerifiedEmail refuses a person whose ID token does not say email_verified: true.
	// Default true; separation of duties in approvals tells people apart by this email.
	RequireVerifiedEmail *bool `yaml:"require_verified_email"`
}

func (p *People) validate() error {
	if p.BrowserSessionTTL == 0 {
		p.BrowserSessionTTL = Duration(8 * time.Hour)
	}
	if p.CLISessionTTL == 0 {
		p.CLISessionTTL = Duration(12 * time.Hour)
	}
	if p.ConsoleIdleTimeout == 0 {
		p.ConsoleIdleTimeout = Duration(30 * time.Minute)
	}
	if p.ConsoleIdleTimeout < Duration(time.Minute) || p.ConsoleIdleTimeout > Duration(24*time.Hour) {
		return errors.New("people.console_idle_timeout must be between 1m and 24h")
	}
	for name, ttl := range map[string]Duration{"browser_session_ttl": p.BrowserSessionTTL, "cli_session_ttl": p.CLISessionTTL} {
		if ttl < Duration(time.Minute) || ttl > Duration(7*24*time.Hour) {
			return fmt.Errorf("people.%s must be between 1m and 168h", name)
		}
	}
	if p.OIDC == nil {
		return nil
	}
	o := p.OIDC
	u, err := url.Parse(o.Issuer)
	if o.Issuer == "" || err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && loopback.Host(u.Hostname()))) {
		return fmt.Errorf("people.oidc.issuer %q: want an https URL (http only on localhost or a loopback address)", o.Issuer)
	}
	if o.ClientID == "" {
		return errors.New("people.oidc.client_id is required")
	}
	set := 0
	for _, v := range []string{o.ClientSecret, o.ClientSecretEnv, o.ClientSecretFile} {
		if v != "" {
			set++
		}
	}
	if set > 1 {
		return errors.New("people.oidc: set at most one of client_secret, client_secret_env and client_secret_file")
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"openid", "email", "profile"}
	}
	if !slices.Contains(o.Scopes, "openid") {
		o.Scopes = append([]string{"openid"}, o.Scopes...)
	}
	for _, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("people.oidc.scopes: %q is not a scope", s)
		}
	}
	if o.RoleClaim == "" {
		o.RoleClaim = "groups"
	}
	for value, role := range o.Roles {
		if value == "" {
			return errors.New("people.oidc.roles: a claim value is empty")
		}
		if _, err := warden.ParseRole(string(role)); err != nil {
			return fmt.Errorf("people.oidc.roles[%q]: %s", value, warden.ErrorMessage(err))
		}
	}
	if o.DefaultRole != "" {
		if _, err := warden.ParseRole(string(o.DefaultRole)); err != nil {
			return fmt.Errorf("people.oidc.default_role: %s", warden.ErrorMessage(err))
		}
	}
	if len(o.Roles) == 0 && o.DefaultRole == "" {
		return errors.New("people.oidc: map claim values to roles (roles) or set default_role; otherwise nobody can sign in")
	}
	if o.RequireVerifiedEmail == nil {
		yes := true
		o.RequireVerifiedEmail = &yes
	}
	return nil
}

// Secret returns the client secret from where the configuration says it is ("" for a public
// client). The error names the place, never the value.
func (o *PeopleOIDC) Secret(getenv func(string) string) (string, error) {
	switch {
	case o.ClientSecretEnv != "":
		v := strings.TrimSpace(getenv(o.ClientSecretEnv))
		if v == "" {
			return "", fmt.Errorf("people.oidc.client_secret_env: %s is not set", o.ClientSecretEnv)
		}
		return v, nil
	case o.ClientSecretFile != "":
		b, err := os.ReadFile(o.ClientSecretFile)
		if err != nil {
			return "", fmt.Errorf("people.oidc.client_secret_file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("people.oidc.client_secret_file %s is empty", o.ClientSecretFile)
		}
		return v, nil
	}
	return o.ClientSecret, nil
}
