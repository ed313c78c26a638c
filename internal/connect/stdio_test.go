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
