package connect_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/connect"
)

// stubWarden stands in for a warden server: a token endpoint that checks the agent's client
// credentials, and everything else recorded as it arrives. An answer of 401 to the next
// request can be arranged, as when a token is revoked.
type stubWarden struct {
	srv *httptest.Server

	mu       sync.Mutex
	tokens   int             // tokens issued
	requests []*http.Request // everything else, as received
	reject   bool            // answer the next request 401
}

func newStubWarden(t *testing.T) *stubWarden {
	w := &stubWarden{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if r.URL.Path == "/oauth2/token" {
			if id, secret, ok := r.BasicAuth(); !ok || id != "agt_bot" || secret != "s3cret" {
				rw.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(rw, `{"error":"invalid_client"}`)
				return
			}
			w.tokens++
			payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sid":"sid_1"}`))
			_ = json.NewEncoder(rw).Encode(map[string]any{"access_token": "hdr." + payload + ".sig" + strconv.Itoa(w.tokens), "expires_in": 3600})
			return
		}
		w.requests = append(w.requests, r.Clone(context.Background()))
		if w.reject {
			w.reject = false
			rw.WriteHeader(http.StatusUnauthorized)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(rw, `{"ok":true}`)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *stubWarden) received() ([]*http.Request, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*http.Request(nil), w.requests...), w.tokens
}

// startSidecar serves a sidecar for the stub on 127.0.0.1:0 and returns its address.
func startSidecar(t *testing.T, w *stubWarden) string {
	t.Helper()
	sc, err := connect.New(w.srv.URL, connect.Credentials{ClientID: "agt_bot", ClientSecret: "s3cret"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// send makes a request to the sidecar at addr with the given Host header ("" for addr) and
// headers, and returns the status and body.
func send(t *testing.T, addr, method, path, host string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The sidecar adds the agent's token — in place of whatever the framework sent — keeps it
// across requests, drops cookies, and fetches a new token after warden answered 401.
func TestSidecarAddsTheAgentsToken(t *testing.T) {
	w := newStubWarden(t)
	addr := startSidecar(t, w)
	for _, path := range []string{"/mcp/notes", "/http/github/repos/acme/web/issues?state=open"} {
		status, body := send(t, addr, "POST", path, "", map[string]string{"Authorization": "Bearer framework-own", "Cookie": "session=x"})
		if status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
	reqs, tokens := w.received()
	if len(reqs) != 2 || tokens != 1 {
		t.Fatalf("warden got %d requests and issued %d tokens, want 2 and 1", len(reqs), tokens)
	}
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer hdr.") || !strings.HasSuffix(got, ".sig1") {
			t.Errorf("%s: Authorization %q, want the agent's token", r.URL, got)
		}
		if r.Header.Get("Cookie") != "" {
			t.Errorf("%s: a cookie reached warden", r.URL)
		}
	}
	if reqs[1].URL.RequestURI() != "/http/github/repos/acme/web/issues?state=open" {
		t.Errorf("forwarded as %s", reqs[1].URL.RequestURI())
	}

	w.mu.Lock()
	w.reject = true
	w.mu.Unlock()
	if status, _ := send(t, addr, "GET", "/mcp/notes", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("warden's 401: %d", status)
	}
	if status, _ := send(t, addr, "GET", "/mcp/notes", "", nil); status != 200 {
		t.Fatalf("after a 401: %d", status)
	}
	reqs, tokens = w.received()
	if tokens != 2 || !strings.HasSuffix(reqs[len(reqs)-1].Header.Get("Authorization"), ".sig2") {
		t.Errorf("after a 401 the sidecar kept its token: %d tokens", tokens)
	}
}

// Issue 12, finding 4: a web page must not drive the agent's tools through the sidecar. A
// Host that is not this machine (DNS rebinding), an Origin that is not, or a browser's
// cross-site request is refused with 403 before a token is fetched or anything forwarded;
// local clients and local pages are served.
func TestSidecarRefusesWebPages(t *testing.T) {
	w := newStubWarden(t)
	addr := startSidecar(t, w)
	_, port, _ := net.SplitHostPort(addr)
	refused := []struct {
		host   string
		header map[string]string
	}{
		{"evil.example.com", map[string]string{"Origin": "http://evil.example.com"}},
		{"evil.example.com:" + port, map[string]string{"Origin": "http://evil.example.com:" + port}},
		{"evil.example.com:" + port, nil},
		{"127.0.0.1.nip.io:" + port, nil},
		{"", map[string]string{"Origin": "http://evil.example.com"}},
		{"", map[string]string{"Origin": "null"}},
		{"", map[string]string{"Origin": "http://localhost.evil.example.com"}},
		{"", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range refused {
		for _, method := range []string{"POST", "GET"} {
			for _, path := range []string{"/mcp/notes", "/mcp", "/http/github/repos/acme/web/issues"} {
				status, body := send(t, addr, method, path, c.host, c.header)
				if status != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) {
					t.Errorf("%s %s Host %q %v: %d %s, want 403", method, path, c.host, c.header, status, body)
				}
			}
		}
	}
	if reqs, tokens := w.received(); len(reqs) != 0 || tokens != 0 {
		t.Fatalf("refused requests reached warden (%d) or fetched a token (%d)", len(reqs), tokens)
	}

	allowed := []struct {
		host   string
		header map[string]string
	}{
		{"", nil},
		{"127.0.0.1:" + port, map[string]string{"Origin": "http://127.0.0.1:" + port}},
		{"localhost:" + port, map[string]string{"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}},
		{"[::1]:" + port, map[string]string{"Origin": "https://[::1]"}},
		{"localhost", map[string]string{"Sec-Fetch-Site": "same-origin"}},
	}
	for _, c := range allowed {
		if status, body := send(t, addr, "POST", "/mcp/notes", c.host, c.header); status != 200 {
			t.Errorf("Host %q %v: %d %s, want 200", c.host, c.header, status, body)
		}
	}
	if reqs, _ := w.received(); len(reqs) != len(allowed) {
		t.Fatalf("warden got %d requests, want %d", len(reqs), len(allowed))
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8788", true}, {"[::1]:8788", true}, {"localhost:8788", true},
		{"0.0.0.0:8788", false}, {"192.0.2.1:80", false}, {"example.com:80", false}, {":8788", false}, {"127.0.0.1", false},
	} {
		if err := connect.CheckLoopback(c.addr); (err == nil) != c.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok %v", c.addr, err, c.ok)
		}
	}
}
