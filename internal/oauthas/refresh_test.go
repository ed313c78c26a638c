package oauthas

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/sqlite"
)

// stubTokens signs nothing: these tests are about the grants, and identity has its own.
type stubTokens struct{}

func (stubTokens) Issue(_ context.Context, a *warden.Agent, r identity.IssueRequest) (*identity.Issued, error) {
	return &identity.Issued{Token: "at-" + a.ID, ExpiresIn: 600, Claims: &warden.Claims{ID: "tok_1", SessionID: "ses_1", ExpiresAt: time.Now()}}, nil
}

type auditRecorder struct {
	mu  sync.Mutex
	evs []*warden.AuditEvent
}

func (a *auditRecorder) Append(_ context.Context, ev *warden.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, ev)
	return nil
}

type noPeople struct{}

func (noPeople) Person(*http.Request) (*warden.Principal, error) { return nil, nil }
func (noPeople) SignInURL(string) string                         { return "" }

type fixedRoles map[string]warden.Role

func (f fixedRoles) Role(_ context.Context, email string) (warden.Role, error) {
	if r, ok := f[email]; ok {
		return r, nil
	}
	return "", warden.Errorf(warden.ENotFound, "no such person")
}

type grantEnv struct {
	t     *testing.T
	s     *Server
	clk   *clock.Fake
	store *sqlite.Store
	agent *warden.Agent
}

func newGrantEnv(t *testing.T) *grantEnv {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := &warden.Agent{ID: "agt_1", Name: "desk-bot", Owner: "ann@example.com", Status: warden.AgentActive, CreatedAt: clk.Now()}
	if err := store.CreateAgent(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Issuer: "http://127.0.0.1:8787", Key: make([]byte, 32), RefreshTTL: 10 * time.Hour, RefreshIdle: time.Hour})
	s.Store, s.Tokens, s.People, s.Audit, s.Clock = store, stubTokens{}, noPeople{}, &auditRecorder{}, clk
	return &grantEnv{t: t, s: s, clk: clk, store: store, agent: a}
}

// grant stores the first refresh token of a new grant for person and returns its value.
func (e *grantEnv) grant(person string, role warden.Role) string {
	value, hash := secret()
	now := e.clk.Now()
	if err := e.store.CreateRefreshToken(e.t.Context(), &warden.RefreshToken{Hash: hash, Family: warden.NewID("rtf_"), ClientID: "cli_1",
		AgentID: e.agent.ID, Person: person, Role: role, Resource: "http://127.0.0.1:8787/mcp", CreatedAt: now, AuthAt: now, ExpiresAt: now.Add(e.s.cfg.RefreshTTL)}); err != nil {
		e.t.Fatal(err)
	}
	return value
}

// refresh uses value and returns the next one, or "" and the refusal.
func (e *grantEnv) refresh(value string) (string, *GrantError) {
	form := url.Values{"grant_type": {GrantRefreshToken}, "client_id": {"cli_1"}, "refresh_token": {value}}
	r := httptest.NewRequestWithContext(e.t.Context(), "POST", "/oauth2/token", strings.NewReader(form.Encode()))
	resp, ge := e.s.Grant(r, form)
	if ge != nil {
		return "", ge
	}
	return resp.RefreshToken, nil
}

// TestRefreshLifetimes: a grant ends when its refresh token goes unused for RefreshIdle, and
// RefreshTTL after the consent however often it is refreshed.
func TestRefreshLifetimes(t *testing.T) {
	e := newGrantEnv(t)
	v := e.grant("ann@example.com", warden.RoleOperator)
	e.clk.Advance(59 * time.Minute)
	v, ge := e.refresh(v)
	if ge != nil {
		t.Fatalf("refresh within the idle time: %v", ge)
	}
	e.clk.Advance(time.Hour)
	if _, ge := e.refresh(v); ge == nil || !strings.Contains(ge.Description, "idle") {
		t.Fatalf("refresh after the idle time: %v, want refused", ge)
	}

	v = e.grant("ann@example.com", warden.RoleOperator)
	for i := range 12 {
		e.clk.Advance(50 * time.Minute)
		next, ge := e.refresh(v)
		if i < 11 && ge != nil {
			t.Fatalf("refresh %d within the lifetime: %v", i, ge)
		}
		if i == 11 {
			if ge == nil || !strings.Contains(ge.Description, "expired") {
				t.Fatalf("refresh after the absolute lifetime: %v, want refused", ge)
			}
		}
		v = next
	}
}

// TestRefreshRechecksThePerson: a grant an admin gave for an agent they do not own refreshes
// only while they are still an admin, and never without a way to ask (Roles nil).
func TestRefreshRechecksThePerson(t *testing.T) {
	e := newGrantEnv(t)
	v := e.grant("root@example.com", warden.RoleAdmin)
	if _, ge := e.refresh(v); ge == nil {
		t.Fatal("an admin grant refreshed with no Roles to check it")
	}
	e.s.Roles = fixedRoles{"root@example.com": warden.RoleAdmin}
	v = e.grant("root@example.com", warden.RoleAdmin)
	v, ge := e.refresh(v)
	if ge != nil {
		t.Fatalf("an admin's grant: %v", ge)
	}
	e.s.Roles = fixedRoles{"root@example.com": warden.RoleOperator}
	if _, ge := e.refresh(v); ge == nil || !strings.Contains(ge.Description, "no longer") {
		t.Fatalf("a former admin's grant: %v, want refused", ge)
	}
	// The owner needs no role.
	if _, ge := e.refresh(e.grant("ANN@example.com", warden.RoleApprover)); ge != nil {
		t.Fatalf("the owner's grant: %v", ge)
	}
}
