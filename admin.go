package warden

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Role is what a person holding an admin token may do.
type Role string

const (
	RoleAdmin    Role = "admin"    // everything
	RoleOperator Role = "operator" // suspend, kill, lockdown, approve; read
	RoleApprover Role = "approver" // approvals only
	RoleAuditor  Role = "auditor"  // read-only, including the audit log
)

// Roles lists every role, strongest first.
var Roles = []Role{RoleAdmin, RoleOperator, RoleApprover, RoleAuditor}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !slices.Contains(Roles, r) {
		return "", Errorf(EInvalid, "unknown role %q: use one of admin, operator, approver, auditor", s)
	}
	return r, nil
}

// RoleSet is the set of roles a route accepts. Admin is always accepted.
type RoleSet []Role

// Allows reports whether r may use a route that accepts rs.
func (rs RoleSet) Allows(r Role) bool { return r == RoleAdmin || slices.Contains(rs, r) }

// String names the roles that may use the route, for a 403 message: "admin or operator".
func (rs RoleSet) String() string {
	names := []string{string(RoleAdmin)}
	for _, r := range rs {
		if r != RoleAdmin {
			names = append(names, string(r))
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// AdminToken is a named credential of a person. The token itself is shown once; only its
// SHA-256 is stored.
type AdminToken struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Email     string    `json:"email,omitempty"` // the person's address, for separation of duties in approvals
	Hash      []byte    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Revoked reports whether the token has been revoked.
func (t *AdminToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// Principal is the authenticated caller of the admin API: a person's named token.
type Principal struct {
	Name  string `json:"name"`
	Role  Role   `json:"role"`
	Email string `json:"email,omitempty"`
}

// AdminTokenStore keeps admin tokens.
type AdminTokenStore interface {
	// CreateAdminToken stores a new token; a taken name is EConflict (revoked names stay taken,
	// so the audit trail never confuses two people).
	CreateAdminToken(ctx context.Context, t *AdminToken) error
	// AdminTokenByHash returns the token with the given hash, revoked or not (ENotFound if none).
	AdminTokenByHash(ctx context.Context, hash []byte) (*AdminToken, error)
	// AdminTokens lists every token, ordered by name.
	AdminTokens(ctx context.Context) ([]*AdminToken, error)
	// RevokeAdminToken marks the named token revoked at the given time.
	RevokeAdminToken(ctx context.Context, name string, at time.Time) error
}
