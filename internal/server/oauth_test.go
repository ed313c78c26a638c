package server_test

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
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
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/server"
)

// testPeople stands in for internal/people until the lead wires it: the signed-in person is
// the one the cookie test_person names, among those the test lists.
type testPeople struct {
	signIn string // where SignInURL points; the test browser recognises it
	people map[string]*warden.Principal
}

func (p *testPeople) Person(r *http.Request) (*warden.Principal, error) {
	c, err := r.Cookie("test_person")
	if err != nil {
		return nil, nil
	}
	return p.people[c.Value], nil
}

func (p *testPeople) SignInURL(returnTo string) string {
	return p.signIn + "?return=" + url.QueryEscape(returnTo)
}

// browser plays a person's browser: it signs in as person when sent to sign in, answers the
// consent page (approve as agent, or deny), and returns the redirect to the client.
type browser struct {
	t      *testing.T
	in     *instance
	people *testPeople
	client *http.Client
	person string
}

func newBrowser(t *testing.T, in *instance, people *testPeople, person string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, in: in, people: people, person: person, client: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

var (
	hiddenRE = regexp.MustCompile(`name="(consent|csrf)" value="([^"]*)"`)
	agentRE  = regexp.MustCompile(`name="agent" value="([^"]*)"`)
)

// consentPage is what the browser saw of a consent page.
type consentPage struct {
	status int
	header http.Header
	body   string
	fields url.Values
	agents []string
}

// open follows an authorization URL to the consent page (signing in on the way).
func (b *browser) open(authURL string) consentPage {
	b.t.Helper()
	next := authURL
	for range 5 {
		if rest, ok := strings.CutPrefix(next, b.people.signIn+"?return="); ok {
			u, _ := url.Parse(b.in.url)
			b.client.Jar.SetCookies(u, []*http.Cookie{{Name: "test_person", Value: b.person}})
			back, _ := url.QueryUnescape(rest)
			if !strings.HasPrefix(back, "/") {
				b.t.Fatalf("sign-in would come back to %q, not a path on warden", back)
			}
			next = b.in.url + back
			continue
		}
		resp, err := b.client.Get(next)
		if err != nil {
			b.t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound {
			next = resp.Header.Get("Location")
			if !strings.HasPrefix(next, b.people.signIn) {
				return consentPage{status: resp.StatusCode, header: resp.Header}
			}
			continue
		}
		p := consentPage{status: resp.StatusCode, header: resp.Header, body: string(body), fields: url.Values{}}
		for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
			p.fields.Set(m[1], html.UnescapeString(m[2]))
		}
		for _, m := range agentRE.FindAllStringSubmatch(p.body, -1) {
			p.agents = append(p.agents, m[1])
		}
		return p
	}
	b.t.Fatal("too many redirects")
	return consentPage{}
}

// answer posts the consent form and returns the status and the redirect.
func (b *browser) answer(p consentPage, decision, agent string) (int, *url.URL) {
	b.t.Helper()
	f := url.Values{"consent": {p.fields.Get("consent")}, "csrf": {p.fields.Get("csrf")}, "decision": {decision}, "agent": {agent}}
	resp, err := b.client.PostForm(b.in.url+"/oauth2/consent", f)
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc
}

// authorize runs the browser side of one authorization and returns the redirect's query.
func (b *browser) authorize(authURL, agent string) url.Values {
	b.t.Helper()
	p := b.open(authURL)
	if p.status != http.StatusOK {
		b.t.Fatalf("consent page: %d %v %s", p.status, p.header, p.body)
	}
	status, loc := b.answer(p, "approve", agent)
	if status != http.StatusFound || loc == nil {
		b.t.Fatalf("consent: %d", status)
	}
	return loc.Query()
}

const oauthDoc = `
agents:
  - name: desk-bot
    owner: ann@example.com
    purpose: Help Ann
  - name: ops-bot
    owner: ops@example.com
    purpose: Operations
tools:
  - name: notes
    mcp: %s
    risk: low
grants:
  - agent: desk-bot
    tool: notes
    actions: [echo]
`

func startOAuth(t *testing.T) (*instance, *testPeople, map[string]admin.AgentCredentials) {
	t.Helper()
	up := newMCPUpstream(t)
	people := &testPeople{signIn: "http://signin.invalid/", people: map[string]*warden.Principal{
		"ann":  {Name: "ann", Role: warden.RoleOperator, Email: "ann@example.com"},
		"bob":  {Name: "bob", Role: warden.RoleApprover, Email: "bob@example.com"},
		"root": {Name: "root", Role: warden.RoleAdmin},
	}}
	in := startPrepared(t, "127.0.0.1:0", t.TempDir(), clock.Real{}, nil, func(s *server.Server) { s.API.OAuth.People = people })
	plan := in.apply(fmt.Sprintf(oauthDoc, up.url))
	return in, people, plan.Credentials
}

// TestOAuthMCPClient: the Go SDK's own client-side OAuth (auth.AuthorizationCodeHandler)
// follows warden from a 401 at /mcp: protected resource metadata, authorization server
// metadata, dynamic registration, authorization with PKCE and resource, the person's sign-in
// and consent, the code exchange; then it calls a tool as the agent the person picked, and the
// audit log shows the agent as principal and the person it acted for.
func TestOAuthMCPClient(t *testing.T) {
	t.Parallel()
	in, people, creds := startOAuth(t)
	agentID := creds["desk-bot"].ClientID

	meta := in.do("GET", "/.well-known/oauth-authorization-server", nil, "").json(t)
	if meta["authorization_endpoint"] != in.url+"/oauth2/authorize" || meta["registration_endpoint"] != in.url+"/oauth2/register" ||
		fmt.Sprint(meta["response_types_supported"]) != "[code]" || fmt.Sprint(meta["code_challenge_methods_supported"]) != "[S256]" ||
		!strings.Contains(fmt.Sprint(meta["grant_types_supported"]), "refresh_token") || !strings.Contains(fmt.Sprint(meta["token_endpoint_auth_methods_supported"]), "none") {
		t.Fatalf("metadata: %v", meta)
	}

	b := newBrowser(t, in, people, "ann")
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName: "sdk test", RedirectURIs: []string{"http://127.0.0.1:1/callback"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			q := b.authorize(args.URL, agentID)
			if q.Get("code") == "" {
				return nil, errors.New("no code: " + q.Encode())
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "sdk-oauth", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: in.url + "/mcp", OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect with OAuth: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("call: %v %+v", err, res)
	}
	evs := in.events("type=tool.call&agent=desk-bot")
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Actor.ID == agentID && ev.Actor.OnBehalfOf == "ann@example.com" && ev.Decision.Effect == warden.EffectAllow
	}) {
		t.Fatalf("no tool.call by the agent for ann: %+v", evs)
	}
	if !hasEvent(in.events("type=oauth.grant"), warden.EventOAuthGrant, func(ev *warden.AuditEvent) bool { return ev.Actor.Email == "ann@example.com" }) {
		t.Fatal("the grant is not in the audit log")
	}
}

// oauthClient registers a client and returns its oauth2 config.
func oauthClient(t *testing.T, in *instance) *oauth2.Config {
	t.Helper()
	r := in.do("POST", "/oauth2/register", map[string]string{"Content-Type": "application/json"},
		`{"client_name":"test client","redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none","software_id":"ignored"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	id := r.json(t)["client_id"].(string)
	return &oauth2.Config{ClientID: id, RedirectURL: "http://127.0.0.1:9/cb",
		Endpoint: oauth2.Endpoint{AuthURL: in.url + "/oauth2/authorize", TokenURL: in.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
}

func refreshWith(in *instance, clientID, refresh string) response {
	return in.do("POST", "/oauth2/token", formCT, form("grant_type", "refresh_token", "client_id", clientID, "refresh_token", refresh))
}

// TestOAuthCodeAndRefresh: PKCE is verified (a wrong verifier is refused and spends the code),
// a code is single use, the token names the agent as subject and the person as obo and is good
// only at its resource; refresh tokens rotate, a reused one revokes its family, and a killed
// agent's grant no longer refreshes.
func TestOAuthCodeAndRefresh(t *testing.T) {
	t.Parallel()
	in, people, creds := startOAuth(t)
	agentID := creds["desk-bot"].ClientID
	conf := oauthClient(t, in)
	b := newBrowser(t, in, people, "ann")
	ctx := context.Background()

	code := func(verifier string) string {
		q := b.authorize(conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(verifier)), agentID)
		if q.Get("state") != "st-1" || q.Get("iss") != in.url || q.Get("code") == "" {
			t.Fatalf("redirect: %v", q)
		}
		return q.Get("code")
	}
	verifier := oauth2.GenerateVerifier()
	c1 := code(verifier)
	if _, err := conf.Exchange(ctx, c1, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}
	if _, err := conf.Exchange(ctx, c1, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("a code refused once was accepted after")
	}
	other := oauthClient(t, in)
	if _, err := other.Exchange(ctx, code(verifier), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "another client") {
		t.Fatalf("a code redeemed by another client: %v, want invalid_grant", err)
	}
	c2 := code(verifier)
	tok, err := conf.Exchange(ctx, c2, oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v %+v", err, tok)
	}
	if _, err := conf.Exchange(ctx, c2, oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("a code used twice: %v, want invalid_grant", err)
	}
	info := in.introspect(tok.AccessToken)
	if info["active"] != true || info["sub"] != agentID || info["on_behalf_of"] != "ann@example.com" || fmt.Sprint(info["aud"]) != "["+in.url+"/mcp]" {
		t.Fatalf("introspection: %v", info)
	}
	// The token is for /mcp: not for another resource.
	r := in.do("POST", "/mcp/notes", map[string]string{"Authorization": "Bearer " + tok.AccessToken, "Content-Type": "application/json"}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "another resource") {
		t.Fatalf("token at another resource: %d %s", r.status, r.body)
	}
	if r := in.self(tok.AccessToken); r.status != http.StatusUnauthorized {
		t.Fatalf("an MCP token at an agent route: %d %s", r.status, r.body)
	}

	r1 := tok.RefreshToken
	// Public clients: a secret, in the form or by HTTP Basic, is refused (and spends nothing).
	if r := in.do("POST", "/oauth2/token", withHeader(formCT, "Authorization", "Basic "+basic(conf.ClientID, "guess")),
		form("grant_type", "refresh_token", "refresh_token", r1)); r.status != http.StatusUnauthorized {
		t.Fatalf("a public client with a secret: %d %s", r.status, r.body)
	}
	r = refreshWith(in, conf.ClientID, r1)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	r2 := r.json(t)["refresh_token"].(string)
	if r2 == "" || r2 == r1 {
		t.Fatal("the refresh token did not rotate")
	}
	if r = refreshWith(in, conf.ClientID, r1); r.status != 400 || !strings.Contains(string(r.body), "invalid_grant") {
		t.Fatalf("a used refresh token: %d %s", r.status, r.body)
	}
	if r = refreshWith(in, conf.ClientID, r2); r.status != 400 {
		t.Fatalf("the family's current token after a reuse: %d %s, want refused", r.status, r.body)
	}
	if !hasEvent(in.events("type=oauth.refresh.reused"), warden.EventOAuthRefreshReused, nil) {
		t.Fatal("reuse is not in the audit log")
	}

	// Another client presenting the refresh token revokes the grant for both.
	tok, err = conf.Exchange(ctx, code(verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if r = refreshWith(in, other.ClientID, tok.RefreshToken); r.status != 400 {
		t.Fatalf("another client's refresh token: %d %s", r.status, r.body)
	}
	if r = refreshWith(in, conf.ClientID, tok.RefreshToken); r.status != 400 {
		t.Fatalf("a refresh token another client presented: %d %s, want revoked", r.status, r.body)
	}

	tok, err = conf.Exchange(ctx, code(verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// A second grant, not presented until the agent is restored.
	kept, err := conf.Exchange(ctx, code(verifier), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(in.admin, "kill", "desk-bot", "--reason", "test"); err != nil {
		t.Fatal(err)
	}
	if r = refreshWith(in, conf.ClientID, tok.RefreshToken); r.status != 400 || !strings.Contains(string(r.body), "may not act") {
		t.Fatalf("refresh of a killed agent: %d %s", r.status, r.body)
	}
	// Kill is final: restoring the agent does not bring back a grant given before the kill.
	if _, err := in.cli(in.admin, "agent", "restore", "desk-bot", "--reason", "investigated"); err != nil {
		t.Fatal(err)
	}
	if r = refreshWith(in, conf.ClientID, kept.RefreshToken); r.status != 400 || !strings.Contains(string(r.body), "stopped since this grant") {
		t.Fatalf("refresh of a grant from before the kill, after restore: %d %s", r.status, r.body)
	}
}

// TestOAuthAuthorizeRefusals: errors before the redirect URI is validated are shown, never
// redirected; after, they go to the client; plain PKCE is refused; a denial is access_denied;
// a person may pick only an agent they may use; a consent form needs its browser's cookie.
func TestOAuthAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	in, people, creds := startOAuth(t)
	conf := oauthClient(t, in)
	b := newBrowser(t, in, people, "ann")
	challenge := oauth2.S256ChallengeOption(oauth2.GenerateVerifier())

	for name, u := range map[string]string{
		"unknown client":     strings.Replace(conf.AuthCodeURL("s", challenge), conf.ClientID, "cli_nobody", 1),
		"foreign redirect":   strings.Replace(conf.AuthCodeURL("s", challenge), url.QueryEscape("http://127.0.0.1:9/cb"), url.QueryEscape("https://evil.example/cb"), 1),
		"repeated parameter": conf.AuthCodeURL("s", challenge) + "&client_id=" + conf.ClientID,
	} {
		p := b.open(u)
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: %d %v", name, p.status, p.header)
		}
	}
	// Another loopback port is the same redirect URI (RFC 8252).
	other := conf.AuthCodeURL("s", oauth2.SetAuthURLParam("code_challenge_method", "plain"), oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)))
	other = strings.Replace(other, url.QueryEscape("127.0.0.1:9"), url.QueryEscape("127.0.0.1:7777"), 1)
	p := b.open(other)
	if loc, _ := url.Parse(p.header.Get("Location")); p.status != http.StatusFound || loc.Host != "127.0.0.1:7777" || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
		t.Fatalf("plain PKCE: %d %v", p.status, p.header)
	}
	bad := conf.AuthCodeURL("s", challenge, oauth2.SetAuthURLParam("resource", "https://elsewhere.example/mcp"))
	if p := b.open(bad); !strings.Contains(p.header.Get("Location"), "error=invalid_target") {
		t.Fatalf("foreign resource: %v", p.header)
	}

	p = b.open(conf.AuthCodeURL("s2", challenge))
	if p.status != 200 || len(p.agents) != 1 || p.agents[0] != creds["desk-bot"].ClientID {
		t.Fatalf("ann's consent page offers %v; want desk-bot only", p.agents)
	}
	if status, _ := b.answer(p, "approve", creds["ops-bot"].ClientID); status != http.StatusForbidden {
		t.Fatalf("another owner's agent: %d, want 403", status)
	}
	if !hasEvent(in.events("type=oauth.deny"), warden.EventOAuthDeny, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Email == "ann@example.com" && strings.Contains(ev.Decision.Message, creds["ops-bot"].ClientID)
	}) {
		t.Fatal("the refused consent for another owner's agent is not on record")
	}
	thief := newBrowser(t, in, people, "ann")
	thief.client.Jar.SetCookies(mustURL(in.url), []*http.Cookie{{Name: "test_person", Value: "ann"}})
	if status, _ := thief.answer(p, "approve", creds["desk-bot"].ClientID); status != http.StatusForbidden {
		t.Fatalf("a form answered from another browser: %d, want 403", status)
	}
	if status, loc := b.answer(p, "deny", ""); status != http.StatusFound || loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s2" {
		t.Fatalf("deny: %d %v", status, loc)
	}
	// Bob owns no agent and is not an admin: nothing to grant.
	bob := newBrowser(t, in, people, "bob")
	if p := bob.open(conf.AuthCodeURL("s3", challenge)); !strings.Contains(p.header.Get("Location"), "error=access_denied") {
		t.Fatalf("bob: %d %v", p.status, p.header)
	}
	// An admin without an email could pick any agent, but a token must name whom it acts for.
	root := newBrowser(t, in, people, "root")
	if p := root.open(conf.AuthCodeURL("s4", challenge)); !strings.Contains(p.header.Get("Location"), "error=access_denied") {
		t.Fatalf("a person without an email: %d %v", p.status, p.header)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestOAuthRegister: what a client may register.
func TestOAuthRegister(t *testing.T) {
	t.Parallel()
	in, _, _ := startOAuth(t)
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"redirect_uris":["https://app.example/cb"]}`, 201},
		{`{"redirect_uris":["cursor://anysphere.cursor-retrieval/oauth/callback"],"client_name":"Cursor"}`, 201},
		{`{"redirect_uris":["http://app.example/cb"]}`, 400},
		{`{"redirect_uris":["javascript:alert(1)"]}`, 400},
		{`{"redirect_uris":["https://app.example/cb#frag"]}`, 400},
		{`{"redirect_uris":[]}`, 400},
		{`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, 400},
		{`{"redirect_uris":["https://app.example/cb"]} {}`, 400},
		{`{"redirect_uris":"https://app.example/cb"}`, 400},
		{`[` + strings.Repeat(" ", 17<<10) + `]`, 400},
	} {
		r := in.do("POST", "/oauth2/register", map[string]string{"Content-Type": "application/json"}, tc.body)
		if r.status != tc.status {
			t.Errorf("%.80s: %d %s, want %d", tc.body, r.status, r.body, tc.status)
		}
	}
	var n int
	for _, ev := range in.events("type=oauth.register") {
		if ev.Type == warden.EventOAuthRegister {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d registrations audited, want 2", n)
	}
}

// TestOAuthClientMetadataDocument: a client whose client_id is the https URL of its metadata
// document (the Go SDK's ClientIDMetadataDocumentConfig) needs no registration: warden
// fetches the document (its loopback host allowed by oauth.metadata_private_hosts), and the
// flow goes on as for a registered client.
func TestOAuthClientMetadataDocument(t *testing.T) {
	t.Parallel()
	var doc *httptest.Server
	doc = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"cimd client","redirect_uris":["http://127.0.0.1:1/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`, doc.URL+"/client.json")
	}))
	defer doc.Close()
	up := newMCPUpstream(t)
	people := &testPeople{signIn: "http://signin.invalid/", people: map[string]*warden.Principal{
		"ann": {Name: "ann", Role: warden.RoleOperator, Email: "ann@example.com"},
	}}
	in := startPrepared(t, "127.0.0.1:0", t.TempDir(), clock.Real{}, func(c *config.Config) { c.OAuth.MetadataPrivateHosts = []string{"127.0.0.1"} },
		func(s *server.Server) {
			s.API.OAuth.People = people
			s.API.OAuth.MetadataTLS = doc.Client().Transport.(*http.Transport).TLSClientConfig
		})
	plan := in.apply(fmt.Sprintf(oauthDoc, up.url))
	agentID := plan.Credentials["desk-bot"].ClientID

	if meta := in.do("GET", "/.well-known/oauth-authorization-server", nil, "").json(t); meta["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata: %v", meta)
	}
	b := newBrowser(t, in, people, "ann")
	handler, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: doc.URL + "/client.json"},
		RedirectURL:                    "http://127.0.0.1:1/callback",
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			p := b.open(args.URL)
			if !strings.Contains(p.body, "cimd client") || !strings.Contains(p.body, doc.URL+"/client.json") {
				return nil, fmt.Errorf("consent page does not show the client: %d %s", p.status, p.body)
			}
			_, loc := b.answer(p, "approve", agentID)
			q := loc.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "cimd", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: in.url + "/mcp", OAuthHandler: handler, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "doc"}}); err != nil || res.IsError {
		t.Fatalf("call: %v %+v", err, res)
	}
}
