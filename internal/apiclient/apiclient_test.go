package apiclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestDo(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized) // no JSON body: the code comes from the status
			return
		}
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"name":"bot"}`))
		case "/echo":
			if r.Header.Get("Content-Type") != "application/json" {
				w.WriteHeader(http.StatusUnsupportedMediaType)
				return
			}
			io.Copy(w, r.Body)
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no agent \"x\""}}`))
		case "/killed":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":{"code":"killed","message":"the agent was killed"}}`))
		case "/oauth":
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant","error_description":"the subject token expired"}`))
		case "/garbled":
			w.Write([]byte(`{`))
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			w.Write([]byte(`<html>no</html>`))
		}
	})
	c := &Client{Base: srv.URL + "/", Token: StaticToken("tok"), HTTP: srv.Client(), UserAgent: "test", Unreachable: "start it"}
	ctx := context.Background()
	var out struct{ Name string }
	if err := c.Do(ctx, http.MethodGet, "/ok", nil, &out); err != nil || out.Name != "bot" {
		t.Fatalf("ok: %v %+v", err, out)
	}
	out.Name = ""
	if err := c.Do(ctx, http.MethodPost, "/echo", map[string]string{"name": "sent"}, &out); err != nil || out.Name != "sent" {
		t.Fatalf("echo: %v %+v", err, out)
	}
	for _, tt := range []struct {
		path, code, msg string
		status          int
	}{
		{"/missing", warden.ENotFound, `no agent "x"`, 404},
		{"/killed", "killed", "the agent was killed", 403},
		{"/oauth", warden.EUnauthenticated, "invalid_grant: the subject token expired", 400},
		{"/teapot", warden.EInternal, "server answered 418 I'm a teapot", 418},
	} {
		err := c.Do(ctx, http.MethodGet, tt.path, nil, nil)
		var we *warden.Error
		if !errors.As(err, &we) || we.Code != tt.code || we.Message != tt.msg || Status(err) != tt.status {
			t.Errorf("%s: %#v (status %d); want %s %q %d", tt.path, err, Status(err), tt.code, tt.msg, tt.status)
		}
	}
	if err := c.Do(ctx, http.MethodGet, "/garbled", nil, &out); warden.ErrorCode(err) != warden.EInternal {
		t.Errorf("garbled answer: %v", err)
	}
	bad := c.WithToken(StaticToken("wrong"))
	if err := bad.Do(ctx, http.MethodGet, "/ok", nil, nil); warden.ErrorCode(err) != warden.EUnauthenticated || Status(err) != 401 {
		t.Errorf("refused token: %v", err)
	}
	bad.CredentialHint = "check WARDEN_TOKEN"
	if err := bad.Do(ctx, http.MethodGet, "/ok", nil, nil); !strings.HasSuffix(warden.ErrorMessage(err), "(check WARDEN_TOKEN)") {
		t.Errorf("refused token with a hint: %v", err)
	}
	named := *c
	named.NameCalls = true
	if err := named.Do(ctx, http.MethodDelete, "/missing", nil, nil); warden.ErrorMessage(err) != `DELETE /missing: no agent "x"` {
		t.Errorf("named call: %v", err)
	}
	failing := c.WithToken(func(context.Context) (string, error) {
		return "", warden.Errorf(warden.EUnauthenticated, "no token today")
	})
	if err := failing.Do(ctx, http.MethodGet, "/ok", nil, nil); warden.ErrorMessage(err) != "no token today" || Status(err) != 0 {
		t.Errorf("token source failure: %v", err)
	}
	down := *c
	down.Base = "http://127.0.0.1:1"
	if err := down.Do(ctx, http.MethodGet, "/ok", nil, nil); warden.ErrorCode(err) != warden.EUnavailable || !strings.Contains(err.Error(), "start it") {
		t.Errorf("unreachable: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Do(canceled, http.MethodGet, "/ok", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}

// TestAnswerOverLimit: an answer over the bound is an error of its own, not a truncated body
// that fails to decode (or, worse, decodes).
func TestAnswerOverLimit(t *testing.T) {
	const limit = 1024
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := limit
		if r.URL.Path == "/over" {
			n++
		}
		// A JSON string of exactly n bytes with its quotes.
		fmt.Fprintf(w, `"%s"`, strings.Repeat("a", n-2))
	})
	c := &Client{Base: srv.URL, HTTP: srv.Client(), MaxAnswer: limit}
	var s string
	if err := c.Do(context.Background(), http.MethodGet, "/at", nil, &s); err != nil || len(s) != limit-2 {
		t.Fatalf("an answer at the bound: %v (%d bytes)", err, len(s))
	}
	err := c.Do(context.Background(), http.MethodGet, "/over", nil, &s)
	if warden.ErrorCode(err) != warden.ETooLarge || !strings.Contains(warden.ErrorMessage(err), "over 1024 bytes") {
		t.Fatalf("an answer over the bound: %v", err)
	}
}

// TestBearer: every request carries the token source's token as it is now, and the runner's
// report and deregistration carry the runner's secret instead of the agent's token.
func TestBearer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/v1/runners":
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id":"run_1","lease_seconds":30,"secret":"wrun_s"}`))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	n := 0
	c := &Client{Base: srv.URL, HTTP: srv.Client(), Token: func(context.Context) (string, error) {
		n++
		return fmt.Sprintf("agent-%d", n), nil
	}}
	ctx := context.Background()
	reg, err := c.RegisterRunner(ctx, apitype.RunnerRequest{Hostname: "h", PID: 1, Command: "sleep"})
	if err != nil || reg.ID != "run_1" || reg.Secret != "wrun_s" {
		t.Fatalf("register: %v %+v", err, reg)
	}
	if err := c.ReportRunner(ctx, reg.ID, reg.Secret, apitype.RunnerReport{Event: "exited"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeregisterRunner(ctx, reg.ID, reg.Secret); err != nil {
		t.Fatal(err)
	}
	if err := c.Outcome(ctx, "dec_1", apitype.OutcomeRequest{Status: "ok"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /v1/runners Bearer agent-1",
		"POST /v1/runners/run_1/report Bearer wrun_s",
		"DELETE /v1/runners/run_1 Bearer wrun_s",
		"POST /v1/decisions/dec_1/outcome Bearer agent-2",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestClientCredentialsToken(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if r.URL.Path != "/oauth2/token" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.FormValue("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_request","error_description":"not a token request"}`))
			return
		}
		// RFC 6749 §2.3.1: the id and secret are form-encoded inside Basic.
		if !ok || id != "agt_bot" || secret != "s3cret%3A%2B" {
			w.Header().Set("WWW-Authenticate", `Basic realm="warden"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_client","error_description":"unknown client"}`))
			return
		}
		fmt.Fprintf(w, `{"access_token":"at-%s","token_type":"Bearer","expires_in":900}`, r.FormValue("session_id"))
	})
	// The client's own bearer is not sent to the token endpoint: the credentials authenticate.
	c := &Client{Base: srv.URL, HTTP: srv.Client(), Token: StaticToken("admin-token")}
	tr, err := c.ClientCredentialsToken(context.Background(), "agt_bot", "s3cret:+", "ses_1")
	if err != nil || tr.AccessToken != "at-ses_1" || tr.ExpiresIn != 900 {
		t.Fatalf("token: %v %+v", err, tr)
	}
	_, err = c.ClientCredentialsToken(context.Background(), "agt_bot", "wrong", "")
	if warden.ErrorCode(err) != warden.EUnauthenticated || warden.ErrorMessage(err) != "invalid_client: unknown client" || Status(err) != 401 {
		t.Fatalf("refused credentials: %v", err)
	}
}
