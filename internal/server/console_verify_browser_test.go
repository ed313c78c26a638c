package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/console"
)

// signedInPeople is a people service whose every browser is signed in as one admin.
type signedInPeople struct{ ps *warden.PersonSession }

func (p signedInPeople) BrowserSession(*http.Request) (*warden.PersonSession, error) {
	return p.ps, nil
}
func (signedInPeople) EndBrowserSession(http.ResponseWriter, *http.Request) error { return nil }
func (signedInPeople) SingleSignOn() (string, bool)                               { return "", false }
func (signedInPeople) BreakGlass() bool                                           { return true }

// emptyLog is an audit log with no events to search.
type emptyLog struct{}

func (emptyLog) AuditEvents(context.Context, warden.AuditFilter) ([]*warden.AuditEvent, error) {
	return nil, nil
}
func (emptyLog) CountAuditEvents(context.Context, warden.AuditFilter, int64) (int64, error) {
	return 0, nil
}

// gatedVerifier checks 3 of 500 events, then waits for release.
type gatedVerifier struct{ checking, release chan struct{} }

func (gatedVerifier) Head(context.Context) (int64, error) { return 500, nil }
func (g gatedVerifier) VerifyProgress(ctx context.Context, progress func(int64)) (*apitype.VerifyReport, error) {
	for i := int64(1); i <= 3; i++ {
		progress(i)
	}
	close(g.checking)
	select {
	case <-g.release:
		return &apitype.VerifyReport{OK: true, Events: 500, First: 1, Last: 500, Elapsed: "1s"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestConsoleBrowserVerifyProgress: the audit page's script follows a verification in a real
// browser — queued while the server's verification loop has not begun it, then the events
// checked of the head as they are checked, then the result, loaded without a click.
func TestConsoleBrowserVerifyProgress(t *testing.T) {
	ctx := chromeTab(t)
	g := gatedVerifier{checking: make(chan struct{}), release: make(chan struct{})}
	now := time.Now()
	c, err := console.New(console.Options{
		People:   signedInPeople{&warden.PersonSession{Hash: []byte("session"), Name: "admin", Role: warden.RoleAdmin, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}},
		Store:    emptyLog{},
		Verifier: g,
		Key:      make([]byte, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	run(t, ctx, 10*time.Second, "ask for a verification",
		chromedp.Navigate(srv.URL+"/ui/audit"),
		chromedp.WaitVisible(chromedp.ID("verify")),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.ID("verify-progress")),
	)
	if got := value(t, ctx, 5*time.Second, "queued", chromedp.Text(chromedp.ID("verify-progress"))); !strings.Contains(got, "0 of 0 events checked") {
		t.Fatalf("before the loop runs: %q", got)
	}

	loop, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.RunVerifications(loop) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	<-g.checking
	run(t, ctx, 5*time.Second, "progress",
		chromedp.Poll[chromedp.Void](`document.getElementById("verify-progress").textContent.includes("3 of 500 events checked")`, chromedp.WithPollingTimeout(4*time.Second)),
	)
	close(g.release)
	run(t, ctx, 5*time.Second, "result", chromedp.WaitVisible(chromedp.ID("verify-result")))
	if got := value(t, ctx, 5*time.Second, "result", chromedp.Text(chromedp.ID("verify-result"))); !strings.HasPrefix(got, "Verified: 500 events") {
		t.Fatalf("the result: %q", got)
	}
}
