package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/connect"
)

func TestConnectSidecar(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	setupGitHub(t, in, rec)
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	in.cliJSON(in.admin, &c, "agent", "rotate-secret", "triage-bot")

	for _, addr := range []string{"0.0.0.0:8788", "192.0.2.1:80", "example.com:80"} {
		if err := connect.CheckLoopback(addr); err == nil {
			t.Errorf("%s: a sidecar without authentication must listen on loopback only", addr)
		}
	}
	sc, err := connect.New(in.url, connect.Credentials{ClientID: c.ClientID, ClientSecret: c.ClientSecret}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if name, err := sc.AgentName(context.Background()); err != nil || name != "triage-bot" {
		t.Fatalf("AgentName: %q %v", name, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()

	// The framework calls without any credential; the sidecar adds the agent's token.
	resp, err := http.Get("http://" + ln.Addr().String() + "/http/github/repos/acme/web/issues")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("through the sidecar: %d", resp.StatusCode)
	}
	up, _ := rec.last(t)
	if !strings.HasPrefix(up.Header.Get("Authorization"), "Bearer ghp_") || up.Header.Get("Warden-Agent") != "triage-bot" {
		t.Fatalf("upstream headers: %v", up.Header)
	}
	// All of the sidecar's tokens share one session, so the audit log shows one session.
	evs := in.events("type=tool.call&agent=triage-bot")
	if len(evs) == 0 || evs[len(evs)-1].Actor.SessionID == "" {
		t.Fatalf("events: %v", evs)
	}

	// Suspend the agent: the sidecar cannot get a token and says so.
	if _, err := in.cli(in.admin, "agent", "suspend", "triage-bot", "--reason", "test"); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/http/github/repos/acme/web/issues")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 && resp.StatusCode != 503 {
		t.Fatalf("suspended agent through the sidecar: %d %s", resp.StatusCode, body)
	}
}
