package cli

import (
	"github.com/wardenhq/warden/internal/apiclient"
)

// newClient is the CLI's client of the warden HTTP API, with an admin token.
func (inv *invocation) newClient(base, token string) *apiclient.Client {
	return &apiclient.Client{
		Base: base, Token: apiclient.StaticToken(token), HTTP: inv.env.HTTPClient, UserAgent: "warden-cli/" + Version,
		Unreachable:    "is 'warden serve' running? (set --addr or WARDEN_ADDR)",
		CredentialHint: "check WARDEN_TOKEN or DATA/admin.token",
	}
}
