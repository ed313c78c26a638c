package server_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/people/oidctest"
)

const oidcOAuthDoc = `
agents:
  - name: carol-bot
    owner: carol@example.com
    purpose: Help Carol
  - name: ops-bot
    owner: ops@example.com
    purpose: Operations
tools:
  - name: notes
    mcp: %s
    risk: low
grants:
  - agent: carol-bot
    tool: notes
    actions: [echo]
  - agent: ops-bot
    tool: notes
    actions: [echo]
`

// oidcBrowser is a person's browser against warden and the OIDC provider: it follows
// redirects, except the last one, back to the MCP client's redirect URI.
type oidcBrowser struct {
	t      *testing.T
	env    *peopleEnv
	client *http.Client
	user   string
}

func newOIDCBrowser(t *testing.T, env *peopleEnv, user string) *oidcBrowser {
	b := oidctest.Browser(t)
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), env.in.url) && !strings.HasPrefix(req.URL.String(), env.op.URL) {
			return http.ErrUseLastResponse // the client's redirect URI
		}
		return nil
	}
	return &oidcBrowser{t: t, env: env, client: b, user: user}
}

// authorize opens authURL: warden sends the browser to /login, the person clicks "Sign in with
// <issuer>", signs in at the provider, comes back to the consent page and approves agent. It
// returns the query of the redirect to the client.
func (b *oidcBrowser) authorize(ctx context.Context, authURL, agent string) (url.Values, error) {
	resp, err := b.client.Get(authURL)
	if err != nil {
		return nil, err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(page)
	if resp.Request.URL.Path == "/login" {
		link := regexp.MustCompile(`href="(/login/oidc[^"]*)"`).FindStringSubmatch(body)
		if link == nil {
			return nil, fmt.Errorf("no sign-in link on %s: %.300s", resp.Request.URL, body)
		}
		resp, body, err = b.env.op.SignIn(ctx, b.client, b.env.in.url+html.UnescapeString(link[1]), b.user)
		if err != nil {
			return nil, err
		}
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/oauth2/authorize" {
		return nil, fmt.Errorf("not the consent page but %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	f := url.Values{"decision": {"approve"}, "agent": {agent}}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		f.Set(m[1], html.UnescapeString(m[2]))
	}
	resp, err = b.client.PostForm(b.env.in.url+"/oauth2/consent", f)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		return nil, fmt.Errorf("consent answered %d %v", resp.StatusCode, err)
	}
	return loc.Query(), nil
}

// TestOAuthThroughOIDCSignIn is issue 17's interactive client end to end with nothing stood in:
// the Go SDK's client follows warden's metadata from a 401, registers, and sends the person's
// browser to authorize; warden sends the browser to sign in at a real OIDC provider (zitadel's
// op on 127.0.0.1), the person consents for the agent they own, and the client calls a tool as
// that agent on the person's behalf (the audit event names both).
func TestOAuthThroughOIDCSignIn(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	in := env.in
	up := newMCPUpstream(t)
	plan := in.apply(fmt.Sprintf(oidcOAuthDoc, up.url))
	agentID := plan.Credentials["carol-bot"].ClientID

	b := newOIDCBrowser(t, env, "carol")
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "sdk test", RedirectURIs: []string{"http://127.0.0.1:1/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q, err := b.authorize(ctx, args.URL, agentID)
			if err != nil {
				return nil, err
			}
			if q.Get("code") == "" {
				return nil, errors.New("no code: " + q.Encode())
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "sdk-oauth", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: in.url + "/mcp", OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect with OAuth: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("call: %v %+v", err, res)
	}
	if !hasEvent(in.events("type=tool.call&agent=carol-bot"), warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Actor.ID == agentID && ev.Actor.OnBehalfOf == "carol@example.com" && ev.Decision.Effect == warden.EffectAllow
	}) {
		t.Fatal("no tool.call by carol-bot on carol's behalf")
	}
	if !hasEvent(in.events("type=oauth.grant"), warden.EventOAuthGrant, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Email == "carol@example.com" && ev.Actor.Role == string(warden.RoleApprover)
	}) {
		t.Fatal("the grant is not on record as carol's, with the role her groups give")
	}
}

// TestOAuthAdminGrantEndsWithTheSession: an admin signed in through OIDC may authorize a client
// as an agent they do not own; that grant refreshes while the admin has a live session, and no
// longer once they signed out (people.Service.Role over the store's live sessions).
func TestOAuthAdminGrantEndsWithTheSession(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	in := env.in
	up := newMCPUpstream(t)
	plan := in.apply(fmt.Sprintf(oidcOAuthDoc, up.url))
	opsID := plan.Credentials["ops-bot"].ClientID

	conf := oauthClient(t, in)
	b := newOIDCBrowser(t, env, "dave") // warden-admins
	verifier := oauth2.GenerateVerifier()
	q, err := b.authorize(t.Context(), conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), opsID)
	if err != nil || q.Get("code") == "" {
		t.Fatalf("authorize: %v %v", err, q)
	}
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if info := in.introspect(tok.AccessToken); info["sub"] != opsID || info["on_behalf_of"] != "dave@example.com" {
		t.Fatalf("introspection: %v", info)
	}
	r := refreshWith(in, conf.ClientID, tok.RefreshToken)
	if r.status != http.StatusOK {
		t.Fatalf("refresh while dave is signed in: %d %s", r.status, r.body)
	}
	next := r.json(t)["refresh_token"].(string)
	// Dave signs out: his only session ends, and with it what his admin role let him grant.
	u, _ := url.Parse(in.url)
	var session string
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == "warden_session" {
			session = c.Value
		}
	}
	if r := in.do("POST", "/logout", map[string]string{"Authorization": "Bearer " + session}, ""); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := refreshWith(in, conf.ClientID, next); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "invalid_grant") {
		t.Fatalf("refresh after dave signed out: %d %s; want invalid_grant", r.status, r.body)
	}
}
