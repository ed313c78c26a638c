package connect_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"

	"github.com/wardenhq/warden/internal/connect"
)

// rpcWarden stands in for warden's /mcp: it answers every call with a result naming its
// method, and every other message with 202.
func rpcWarden(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/token" {
			payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sid":"sid_1"}`))
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "hdr." + payload + ".sig", "expires_in": 3600})
			return
		}
		if r.Header.Get("Authorization") != "Bearer hdr."+base64.RawURLEncoding.EncodeToString([]byte(`{"sid":"sid_1"}`))+".sig" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		msg, err := jsonrpc.DecodeMessage(body)
		req, ok := msg.(*jsonrpc.Request)
		if err != nil || !ok || !req.IsCall() {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		result, _ := json.Marshal(map[string]string{"method": req.Method})
		data, _ := jsonrpc.EncodeMessage(&jsonrpc.Response{ID: req.ID, Result: result})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// FuzzStdioClientInput feeds what a client may write on stdin to the relay: whatever it is,
// the relay ends when stdin does, without a panic, and writes nothing but JSON-RPC messages
// to stdout.
func FuzzStdioClientInput(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":"a","method":"tools/list"}` + "\n" + `{"jsonrpc":"2.0","id":"a","method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":7,"result":{}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`,
		`[]`, `{}`, `null`, `{"jsonrpc":"2.0","id":null,"method":"x"}`, `not json`, "\x00\xff", `{"jsonrpc":"2.0","id":1e400,"method":"x"}`,
	} {
		f.Add(seed)
	}
	srv := rpcWarden(f)
	f.Fuzz(func(t *testing.T, input string) {
		sc, err := connect.New(srv.URL, connect.Credentials{ClientID: "agt_bot", ClientSecret: "s3cret"}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- sc.Stdio(ctx, io.NopCloser(strings.NewReader(input+"\n")), &out, "/mcp", "bot") }()
		select {
		case <-done:
			cancel()
		case <-time.After(5 * time.Second):
			cancel()
			<-done
			t.Fatal("the relay did not end at the end of stdin")
		}
		lines := bufio.NewScanner(&out)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			if _, err := jsonrpc.DecodeMessage(lines.Bytes()); err != nil {
				if _, err := decodeBatch(lines.Bytes()); err != nil {
					t.Fatalf("stdout has %q, not JSON-RPC", lines.Text())
				}
			}
		}
	})
}

// decodeBatch reads a JSON-RPC batch: the SDK answers a batch the client sent with one.
func decodeBatch(data []byte) ([]jsonrpc.Message, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, err
	}
	var msgs []jsonrpc.Message
	for _, raw := range raws {
		m, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// A redirect from warden's address is not followed: the agent's token would go with it.
func TestStdioFollowsNoRedirect(t *testing.T) {
	var leaked atomic.Bool
	redirected := make(chan struct{}, 1)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
	}))
	defer elsewhere.Close()
	w := rpcWarden(t)
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			http.Redirect(rw, r, elsewhere.URL+"/mcp", http.StatusTemporaryRedirect)
			select {
			case redirected <- struct{}{}:
			default:
			}
			return
		}
		proxyTo(w.URL, rw, r)
	}))
	defer front.Close()
	sc, err := connect.New(front.URL, connect.Credentials{ClientID: "agt_bot", ClientSecret: "s3cret"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	done := make(chan error, 1)
	out := &lockedBuffer{}
	go func() { done <- sc.Stdio(context.Background(), inR, out, "/mcp", "bot") }()
	_, _ = io.WriteString(inW, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`+"\n")
	<-redirected
	// The call's answer is an error, and the relay ends with one: warden's answer was a redirect.
	eventually(t, func() bool { return strings.Contains(out.String(), `"id":1,"error"`) })
	if !strings.Contains(out.String(), "redirect") {
		t.Errorf("the answer does not say warden redirected: %s", out.String())
	}
	_ = inW.Close()
	if err := <-done; err == nil {
		t.Error("the relay ended without an error after a redirect")
	}
	if leaked.Load() {
		t.Fatal("the agent's token followed a redirect to another address")
	}
}

// proxyTo forwards r to base and copies the answer.
func proxyTo(base string, w http.ResponseWriter, r *http.Request) {
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer that the relay writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
