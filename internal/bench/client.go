package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
)

// client speaks warden's admin API with an admin token, and its OAuth token endpoint with an
// agent's client credentials, through apiclient: everything bench and drill set up goes through
// the same client and API the CLI uses, so they run alike against `--self` and against a server
// someone else runs. Errors name the call that failed, since a drill makes many.
type client struct {
	*apiclient.Client
	base string
}

func newClient(base, token string, tr http.RoundTripper) *client {
	base = strings.TrimSuffix(base, "/")
	return &client{base: base, Client: &apiclient.Client{
		Base: base, Token: apiclient.StaticToken(token), HTTP: &http.Client{Timeout: 60 * time.Second, Transport: tr},
		UserAgent: "warden-bench", Unreachable: "is it running? (set --addr or WARDEN_ADDR, or use --self)", NameCalls: true,
	}}
}

// latestPolicies returns the policy set in force, or an empty one at version 0 when none was
// ever applied.
func (c *client) latestPolicies(ctx context.Context) (*warden.PolicySet, error) {
	ps, err := c.PolicyVersion(ctx, "latest")
	if warden.ErrorCode(err) == warden.ENotFound {
		return &warden.PolicySet{Files: map[string]string{}}, nil
	}
	if ps.Files == nil {
		ps.Files = map[string]string{}
	}
	return ps, err
}

// events returns every audit event the filter q (query parameters of GET /v1/audit/events,
// without limit and after) selects, page by page.
func (c *client) events(ctx context.Context, q url.Values) ([]*warden.AuditEvent, error) {
	var all []*warden.AuditEvent
	var after int64
	for {
		page := url.Values{}
		for k, v := range q {
			page[k] = v
		}
		page.Set("limit", "1000")
		if after > 0 {
			page.Set("after", fmt.Sprint(after))
		}
		evs, _, err := c.AuditEvents(ctx, page)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if len(evs) < 1000 {
			return all, nil
		}
		after = evs[len(evs)-1].Seq
	}
}

// agentToken gets an access token for an agent with the client credentials grant.
func (c *client) agentToken(ctx context.Context, clientID, secret string) (string, error) {
	tr, err := c.ClientCredentialsToken(ctx, clientID, secret, "")
	if err != nil {
		if apiclient.Status(err) != 0 {
			return "", warden.WrapError(warden.EUnauthenticated, "the token endpoint refused the agent's credentials: "+warden.ErrorMessage(err), err)
		}
		return "", err
	}
	return tr.AccessToken, nil
}
