package people

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/sqlite"
)

type auditLog struct {
	mu     sync.Mutex
	events []*warden.AuditEvent
}

func (a *auditLog) Append(ctx context.Context, ev *warden.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func newService(t *testing.T, clk clock.Clock) *Service {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return New(Options{Store: store, Audit: &auditLog{}, Clock: clk, PublicURL: "https://warden.example.com",
		BrowserTTL: 8 * time.Hour, CLITTL: 12 * time.Hour})
}

// TestSessionEnds: a session works until it expires or is revoked; a CLI token is no cookie and a
// cookie no CLI token.
func TestSessionEnds(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := newService(t, clk)
	ctx := t.Context()
	p := &warden.Principal{Name: "carol@example.com", Email: "carol@example.com", Role: warden.RoleApprover}
	token, _, err := s.newSession(ctx, p, warden.SessionCLI, viaOIDC)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Authenticate(ctx, token); err != nil || *got != *p {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", CookieName+"="+token)
	if got, err := s.Person(r); got != nil || err != nil {
		t.Fatalf("a CLI token as a cookie: %+v, %v", got, err)
	}
	clk.Advance(12*time.Hour - time.Second)
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := s.Authenticate(ctx, token); warden.ErrorCode(err) != warden.EUnauthenticated {
		t.Fatalf("an expired session: %v", err)
	}

	browser, _, err := s.newSession(ctx, p, warden.SessionBrowser, viaOIDC)
	if err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", CookieName+"="+browser)
	if got, err := s.Person(r); err != nil || got == nil || got.Email != p.Email {
		t.Fatalf("Person = %+v, %v", got, err)
	}
	if _, err := s.Authenticate(ctx, browser); warden.ErrorCode(err) != warden.EUnauthenticated {
		t.Fatalf("a cookie as a CLI token: %v", err)
	}
	if err := s.logout(ctx, r, browser); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Person(r); got != nil || err != nil {
		t.Fatalf("after logout: %+v, %v", got, err)
	}
}

func TestSignInURLStaysOnWarden(t *testing.T) {
	s := New(Options{PublicURL: "https://warden.example.com/"})
	for in, want := range map[string]string{
		"/oauth2/authorize?client_id=x": "/oauth2/authorize?client_id=x",
		"/login/device?user_code=AB":    "/login/device?user_code=AB",
		"https://evil.example/":         "/login",
		"//evil.example/":               "/login",
		"/\\evil.example":               "/login",
		"":                              "/login",
		"evil":                          "/login",
		"/a\nb":                         "/login",
		"javascript:alert(1)":           "/login",
	} {
		got := s.SignInURL(in)
		u, err := url.Parse(got)
		if err != nil || u.Host != "warden.example.com" || u.Path != "/login" || u.Query().Get("return_to") != want {
			t.Errorf("SignInURL(%q) = %s; want return_to %q", in, got, want)
		}
	}
}

func TestPersonFromClaims(t *testing.T) {
	o := &OIDC{RoleClaim: "groups", RequireVerifiedEmail: true,
		Roles: map[string]warden.Role{"approvers": warden.RoleApprover, "ops": warden.RoleOperator, "audit": warden.RoleAuditor}}
	tests := []struct {
		name   string
		claims map[string]any
		role   warden.Role
		refuse string
	}{
		{"one group", map[string]any{"email": "a@x.io", "email_verified": true, "groups": []any{"approvers"}}, warden.RoleApprover, ""},
		{"strongest of several", map[string]any{"email": "a@x.io", "email_verified": true, "groups": []any{"audit", "ops", "approvers"}}, warden.RoleOperator, ""},
		{"a string claim", map[string]any{"email": "a@x.io", "email_verified": "true", "groups": "audit"}, warden.RoleAuditor, ""},
		{"unverified", map[string]any{"email": "a@x.io", "email_verified": false, "groups": []any{"ops"}}, "", "not verified"},
		{"verified missing", map[string]any{"email": "a@x.io", "groups": []any{"ops"}}, "", "not verified"},
		{"no email", map[string]any{"email_verified": true, "groups": []any{"ops"}}, "", "no usable email"},
		{"no mapped group", map[string]any{"email": "a@x.io", "email_verified": true, "groups": []any{"staff", 7}}, "", "no warden role"},
		{"groups not strings", map[string]any{"email": "a@x.io", "email_verified": true, "groups": map[string]any{"ops": true}}, "", "no warden role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := o.personFromClaims(tt.claims)
			if tt.refuse != "" {
				if err == nil || !strings.Contains(warden.ErrorMessage(err), tt.refuse) {
					t.Fatalf("got %+v, %v; want refused %q", p, err, tt.refuse)
				}
				return
			}
			if err != nil || p.Role != tt.role || p.Email != "a@x.io" {
				t.Fatalf("got %+v, %v; want role %s", p, err, tt.role)
			}
		})
	}
	withDefault := *o
	withDefault.DefaultRole = warden.RoleAuditor
	if p, err := withDefault.personFromClaims(map[string]any{"email": "a@x.io", "email_verified": true}); err != nil || p.Role != warden.RoleAuditor {
		t.Fatalf("default role: %+v, %v", p, err)
	}
}

// FuzzLoginParameters: what a browser brings to /login never panics, and what passes is a
// loopback redirect and a local path.
func FuzzLoginParameters(f *testing.F) {
	f.Add("http://127.0.0.1:5555/callback", "abcdefghijklmnopqrstuvwxyz", strings.Repeat("a", 43), "/login")
	f.Add("http://evil.example:80/", "x", "y", "//evil")
	f.Add("http://[::1]:1/cb", strings.Repeat("_", 20), strings.Repeat("-", 43), "/\\x")
	f.Add("http://127.0.0.1/cb", "", "", "https://evil")
	f.Fuzz(func(t *testing.T, redirect, state, challenge, returnTo string) {
		cli, err := parseCLI(url.Values{"cli": {redirect}, "cli_state": {state}, "code_challenge": {challenge}})
		if err == nil && cli != nil {
			u, perr := url.Parse(cli.Redirect)
			if perr != nil || u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
				t.Fatalf("accepted redirect %q", cli.Redirect)
			}
		}
		p := LocalPath(returnTo)
		u, err := url.Parse(p)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "\\") {
			t.Fatalf("LocalPath(%q) = %q", returnTo, p)
		}
	})
}
