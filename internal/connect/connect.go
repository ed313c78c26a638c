// Package connect is `warden connect`: it holds an agent's client credentials, keeps a fresh
// access token, and adds it to every request it forwards to warden, for agent frameworks and
// MCP clients that cannot do OAuth themselves — as a sidecar on localhost (Handler) or as an
// MCP stdio server that a desktop client launches (Stdio).
package connect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/loopback"
)

// Credentials are an agent's client credentials.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Sidecar forwards local requests to warden with the agent's current token.
type Sidecar struct {
	server *url.URL
	creds  Credentials
	api    *apiclient.Client // the token endpoint and /v1/agent/self, as the agent
	log    *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
	session string
}

// New returns a sidecar for the warden server at serverURL.
func New(serverURL string, creds Credentials, log *slog.Logger) (*Sidecar, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, warden.Errorf(warden.EInvalid, "server address %q must be an http(s) URL", serverURL)
	}
	if creds.ClientID == "" || creds.ClientSecret == "" {
		return nil, warden.Errorf(warden.EInvalid, "client credentials are required: WARDEN_CLIENT_ID and WARDEN_CLIENT_SECRET, or --credentials FILE")
	}
	s := &Sidecar{server: u, creds: creds, log: log, now: time.Now}
	s.api = &apiclient.Client{Base: u.String(), Token: s.Token, HTTP: &http.Client{Timeout: 30 * time.Second}, UserAgent: "warden-connect"}
	return s, nil
}

// Token returns a token valid for at least another minute (or a fifth of its life), fetching
// a new one when needed. All tokens of one sidecar share a session id, so the audit log shows
// one session.
func (s *Sidecar) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires) {
		return s.token, nil
	}
	tr, err := s.api.ClientCredentialsToken(ctx, s.creds.ClientID, s.creds.ClientSecret, s.session)
	if err != nil {
		switch apiclient.Status(err) {
		case 0:
			return "", err
		case http.StatusUnauthorized, http.StatusBadRequest:
			return "", warden.WrapError(warden.EUnauthenticated, "warden refused a token: "+warden.ErrorMessage(err), err)
		}
		return "", warden.WrapError(warden.EUnavailable, "warden refused a token: "+warden.ErrorMessage(err), err)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	s.token = tr.AccessToken
	s.expires = s.now().Add(life - max(life/5, time.Minute))
	if s.session == "" {
		s.session = sessionOf(tr.AccessToken)
	}
	return s.token, nil
}

// forget drops the token so that the next request fetches a new one.
func (s *Sidecar) forget(token string) {
	s.mu.Lock()
	if s.token == token {
		s.token = ""
	}
	s.mu.Unlock()
}

// current returns the token the sidecar holds, "" for none.
func (s *Sidecar) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// refusal asks warden why it refuses token, which it issued: the token endpoint answers a
// killed or suspended agent as it answers wrong credentials (invalid_client), while an
// enforcement point names the agent's state ("agent is killed"). It returns "" when warden
// does not say.
func (s *Sidecar) refusal(ctx context.Context, token string) string {
	if token == "" {
		return ""
	}
	api := *s.api
	api.Token = func(context.Context) (string, error) { return token, nil }
	_, err := api.AgentSelf(ctx)
	if apiclient.Status(err) != http.StatusUnauthorized {
		return ""
	}
	return warden.ErrorMessage(err)
}

// sessionOf reads the sid claim of a JWT without verifying it: the sidecar only reuses it.
func sessionOf(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.SID
}

// Handler forwards every request to warden with the agent's token, streaming both ways.
//
// It serves without authentication, so it refuses (403) what a web page could send it: a Host
// that is not this machine (a DNS-rebinding page whose name now points at 127.0.0.1), an
// Origin that is not this machine, or a browser's cross-site request without one — before it
// fetches a token or forwards anything. The rule is package loopback's, the one warden's own
// /mcp applies to Host.
func (s *Sidecar) Handler() http.Handler {
	proxy := &httputil.ReverseProxy{
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(s.server)
			pr.Out.Host = s.server.Host
			pr.Out.Header.Del("Cookie")
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusUnauthorized {
				// The token died early (revoked, rotated): the next request gets a new one.
				s.forget(strings.TrimPrefix(resp.Request.Header.Get("Authorization"), "Bearer "))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("forwarding to warden failed", "path", r.URL.Path, "err", err)
			http.Error(w, "warden is unreachable", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := loopback.Check(r); err != nil {
			s.log.Warn("refused a request that may come from a web page", "host", r.Host, "origin", r.Header.Get("Origin"), "path", r.URL.Path, "err", err)
			writeError(w, http.StatusForbidden, "forbidden", err.Error())
			return
		}
		token, err := s.Token(r.Context())
		if err != nil {
			s.log.Warn("no token for the agent", "err", warden.ErrorMessage(err))
			writeError(w, http.StatusServiceUnavailable, "no_token", warden.ErrorMessage(err))
			return
		}
		r.Header.Set("Authorization", "Bearer "+token)
		proxy.ServeHTTP(w, r)
	})
}

// writeError answers with warden's JSON error shape.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// CheckLoopback refuses a listen address that is not on this machine: the sidecar serves
// without authentication, so anyone who can reach it acts as the agent.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return warden.Errorf(warden.EInvalid, "listen %q: want 127.0.0.1:PORT", addr)
	}
	if !loopback.Host(host) {
		return warden.Errorf(warden.EInvalid, "listen %q: the sidecar serves without authentication and only listens on loopback (127.0.0.1 or ::1)", addr)
	}
	return nil
}

// Serve serves on ln until ctx ends.
func (s *Sidecar) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("sidecar: %w", err)
}

// AgentName asks warden whose credentials these are: it fetches a token and reads the agent
// it names, so a sidecar started with the wrong credentials stops at once.
func (s *Sidecar) AgentName(ctx context.Context) (string, error) {
	if _, err := s.Token(ctx); err != nil {
		return "", err // the token endpoint's refusal says more than the one that follows would
	}
	a, err := s.api.AgentSelf(ctx)
	if err != nil {
		if status := apiclient.Status(err); status != 0 {
			return "", warden.WrapError(warden.EUnauthenticated, fmt.Sprintf("warden did not accept the agent's token (status %d): %s", status, warden.ErrorMessage(err)), err)
		}
		return "", err
	}
	return a.Name, nil
}
