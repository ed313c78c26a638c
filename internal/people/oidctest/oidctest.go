// Package oidctest runs a real OpenID Connect provider on 127.0.0.1 for tests: zitadel/oidc's
// op package over its example in-memory storage, with users that have groups, and a browser
// (an http.Client with a cookie jar) that signs in through its login form. Tests only.
package oidctest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// ClientID and ClientSecret are warden's client at the provider.
const (
	ClientID     = "warden"
	ClientSecret = "warden-client-secret"
	Password     = "correct horse battery staple"
)

// User is a person at the provider.
type User struct {
	Username      string
	Email         string
	EmailVerified bool
	Groups        []string
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	URL string // the issuer

	mu        sync.Mutex
	users     map[string]*storage.User // by ID
	groups    map[string][]string      // by user ID
	redirects []string
	nonce     string // when set, every ID token carries this nonce instead of the request's
}

// Start runs a provider until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{users: map[string]*storage.User{}, groups: map[string][]string{}}
	srv := httptest.NewUnstartedServer(nil)
	p.URL = "http://" + srv.Listener.Addr().String()
	clients := map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, "http://127.0.0.1/unused")}
	st := &providerStorage{Storage: storage.NewStorageWithClients(userStore{p}, clients), p: p}
	srv.Config.Handler = exampleop.SetupServer(p.URL, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// AddUser adds a person who signs in with Password.
func (p *Provider) AddUser(u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fmt.Sprintf("id%d", len(p.users)+1)
	p.users[id] = &storage.User{ID: id, Username: u.Username, Password: Password, FirstName: u.Username, LastName: "Test",
		Email: u.Email, EmailVerified: u.EmailVerified}
	p.groups[id] = u.Groups
}

// AllowRedirect registers a redirect URI of warden's client.
func (p *Provider) AllowRedirect(uri string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.redirects = append(p.redirects, uri)
}

// ForceNonce makes the provider put nonce in every ID token from now on ("" to stop): a token
// minted for another sign-in.
func (p *Provider) ForceNonce(nonce string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nonce = nonce
}

// Browser returns a client with a cookie jar that follows redirects, as a browser would.
func Browser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// SignIn opens start in the browser, signs in as username at the provider's login form and
// returns the response at the end of the redirects.
func (p *Provider) SignIn(ctx context.Context, b *http.Client, start, username string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, start, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := b.Do(req)
	if err != nil {
		return nil, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), p.URL+"/login/username") {
		return resp, string(body), fmt.Errorf("the browser did not reach the provider's login form, but %s (%d): %.300s", resp.Request.URL, resp.StatusCode, body)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	form := url.Values{"username": {username}, "password": {Password}, "id": {id}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/login/username", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = b.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return resp, string(body), err
}

// providerStorage is the example storage with warden's redirect URIs, claims of scope email
// and profile (and groups) in the ID token, and the nonce override.
type providerStorage struct {
	*storage.Storage
	p *Provider
}

func (s *providerStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return client{c, s.p}, nil
}

func (s *providerStorage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.p.mu.Lock()
	if s.p.nonce != "" {
		r.Nonce = s.p.nonce
	}
	s.p.mu.Unlock()
	return s.Storage.CreateAuthRequest(ctx, r, userID)
}

func (s *providerStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, r, scopes); err != nil {
		return err
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if g := s.p.groups[r.GetSubject()]; g != nil {
		info.AppendClaims("groups", g)
	}
	return nil
}

type client struct {
	op.Client
	p *Provider
}

func (c client) RedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.redirects)
}

func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }

type userStore struct{ p *Provider }

func (u userStore) GetUserByID(id string) *storage.User {
	u.p.mu.Lock()
	defer u.p.mu.Unlock()
	return u.p.users[id]
}

func (u userStore) GetUserByUsername(name string) *storage.User {
	u.p.mu.Lock()
	defer u.p.mu.Unlock()
	for _, usr := range u.p.users {
		if usr.Username == name {
			return usr
		}
	}
	return nil
}

func (u userStore) ExampleClientID() string { return "service" }
