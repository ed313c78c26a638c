package people

import (
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// maxEmail bounds the email a provider may give (RFC 5321's path limit).
const maxEmail = 254

// personFromClaims maps an ID token's claims to a person: the verified email names them, the
// role claim's values give the strongest mapped role (else the default role). The error is the
// refusal, in words for the person and the audit log.
func (o *OIDC) personFromClaims(claims map[string]any) (*warden.Principal, error) {
	email, _ := claims["email"].(string)
	email = strings.TrimSpace(email)
	if email == "" || len(email) > maxEmail || !strings.Contains(email, "@") || strings.ContainsAny(email, " \t\r\n<>\"") {
		return nil, warden.Errorf(warden.EForbidden, "the provider gave no usable email address for this account")
	}
	if o.RequireVerifiedEmail && !verified(claims["email_verified"]) {
		return nil, warden.Errorf(warden.EForbidden, "the email address %s is not verified by the provider", email)
	}
	role := warden.Role("")
	for _, v := range claimValues(claims[o.RoleClaim]) {
		if r, ok := o.Roles[v]; ok && (role == "" || stronger(r, role)) {
			role = r
		}
	}
	if role == "" {
		role = o.DefaultRole
	}
	if role == "" {
		return nil, warden.Errorf(warden.EForbidden, "%s has no warden role: none of its %q values is mapped (people.oidc.roles)", email, o.RoleClaim)
	}
	return &warden.Principal{Name: email, Email: email, Role: role}, nil
}

// verified reads email_verified, which some providers send as the string "true".
func verified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// claimValues reads a claim that is a string or a list of strings; anything else has no values.
func claimValues(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// stronger reports whether a comes before b in warden.Roles (strongest first).
func stronger(a, b warden.Role) bool {
	return slices.Index(warden.Roles, a) < slices.Index(warden.Roles, b)
}
