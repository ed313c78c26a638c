package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/wardenhq/warden/internal/apitype"
)

var adminCommands = []command{
	{"admin token create", "NAME --role admin|operator|approver|auditor [--email EMAIL]", "create a named admin token for a person and print it once", adminTokenCreate},
	{"admin token list", "", "list admin tokens (never their values)", adminTokenList},
	{"admin token revoke", "NAME", "revoke an admin token", adminTokenRevoke},
}

func adminTokenCreate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var spec apitype.AdminTokenSpec
	inv.fs.StringVar(&spec.Role, "role", "", "admin, operator, approver or auditor (required)")
	inv.fs.StringVar(&spec.Email, "email", "", "the holder's email; approvals' separation of duties needs it")
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	spec.Name = pos[0]
	if spec.Role == "" {
		return usagef("--role is required: admin, operator, approver or auditor")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out, err := c.CreateAdminToken(ctx, spec)
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Admin token %q created with role %s.\n\n", out.Name, out.Role)
		kv(w, "token", out.Token)
		fmt.Fprintln(w, "\nThe token is shown only this once. Its holder uses it as WARDEN_TOKEN.")
	})
}

func adminTokenList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	tokens, err := c.AdminTokens(ctx)
	if err != nil {
		return err
	}
	return inv.print(tokens, func(w io.Writer) {
		rows := make([][]string, 0, len(tokens))
		for _, t := range tokens {
			status := "active"
			if t.Revoked() {
				status = "revoked " + fmtTime(t.RevokedAt)
			}
			rows = append(rows, []string{t.Name, string(t.Role), dash(t.Email), status, t.CreatedBy, fmtTime(t.CreatedAt)})
		}
		table(w, []string{"NAME", "ROLE", "EMAIL", "STATUS", "CREATED BY", "CREATED"}, rows)
	})
}

func adminTokenRevoke(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if err := c.RevokeAdminToken(ctx, pos[0]); err != nil {
		return err
	}
	return inv.print(map[string]string{"revoked": pos[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "Admin token %q revoked.\n", pos[0])
	})
}

// dash stands in for an empty cell of a table.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
