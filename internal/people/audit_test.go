package people

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/sqlite"
)

// brokenAudit is an audit log whose disk has failed.
type brokenAudit struct{ appends int }

func (a *brokenAudit) Append(context.Context, *warden.AuditEvent) error {
	a.appends++
	return errors.New("disk full")
}

// oneToken accepts one admin token, as the admin service would.
type oneToken struct{ p *warden.Principal }

func (o oneToken) Authenticate(_ context.Context, token string) (*warden.Principal, error) {
	if token != "wat_good" {
		return nil, warden.Errorf(warden.EUnauthenticated, "invalid admin token")
	}
	return o.p, nil
}

// TestSignInNeedsTheAuditLog: a sign-in that cannot be recorded does not happen — no cookie, no
// live session — and the person is told to try again (503), not signed in unrecorded.
func TestSignInNeedsTheAuditLog(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "warden.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p := &warden.Principal{Name: "break-glass", Email: "ops@example.com", Role: warden.RoleAdmin}
	audit := &brokenAudit{}
	clk := clock.NewFake(time.Now())
	s := New(Options{Store: store, Audit: audit, Admin: oneToken{p}, Clock: clk, PublicURL: "https://warden.example.com",
		BrowserTTL: 8 * time.Hour, CLITTL: 12 * time.Hour})

	for _, token := range []string{"wat_good", "wat_bad"} {
		form := url.Values{"token": {token}, "query": {""}}
		r := httptest.NewRequest("POST", "/login/admin-token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		before := audit.appends
		s.AdminTokenSignIn(w, r)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s with the audit log down: status %d, want 503", token, w.Code)
		}
		if audit.appends == before {
			t.Errorf("%s: the sign-in was not even offered to the audit log", token)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == CookieName && c.Value != "" {
				t.Errorf("%s: a session cookie was set although the sign-in was not recorded", token)
			}
		}
	}
	if live, err := store.LivePersonSessions(t.Context(), p.Email, clk.Now()); err != nil || len(live) != 0 {
		t.Fatalf("live sessions after an unrecorded sign-in: %d, %v", len(live), err)
	}
}
