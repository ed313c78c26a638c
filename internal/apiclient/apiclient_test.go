package apiclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenhq/warden"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized) // no JSON body: the code comes from the status
			return
		}
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"name":"bot"}`))
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"not_found","message":"no agent \"x\""}}`))
		case "/garbled":
			w.Write([]byte(`{`))
		}
	}))
	defer srv.Close()
	c := Client{Base: srv.URL, Token: "tok", HTTP: srv.Client(), UserAgent: "test", Unreachable: "start it"}
	ctx := context.Background()
	var out struct{ Name string }
	if err := c.Do(ctx, http.MethodGet, "/ok", nil, &out); err != nil || out.Name != "bot" {
		t.Fatalf("ok: %v %+v", err, out)
	}
	err := c.Do(ctx, http.MethodGet, "/missing", nil, nil)
	if warden.ErrorCode(err) != warden.ENotFound || warden.ErrorMessage(err) != `no agent "x"` {
		t.Errorf("missing: %v", err)
	}
	if err := c.Do(ctx, http.MethodGet, "/garbled", nil, &out); warden.ErrorCode(err) != warden.EInternal {
		t.Errorf("garbled answer: %v", err)
	}
	bad := c
	bad.Token = "wrong"
	if err := bad.Do(ctx, http.MethodGet, "/ok", nil, nil); warden.ErrorCode(err) != warden.EUnauthenticated {
		t.Errorf("refused token: %v", err)
	}
	down := c
	down.Base = "http://127.0.0.1:1"
	if err := down.Do(ctx, http.MethodGet, "/ok", nil, nil); warden.ErrorCode(err) != warden.EUnavailable {
		t.Errorf("unreachable: %v", err)
	}
}
