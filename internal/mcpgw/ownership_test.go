package mcpgw

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rawRequest sends one raw HTTP request on an MCP session with a token, as any HTTP client
// can: nothing the SDK client would refuse on its own is refused here.
func rawRequest(t *testing.T, method, url, token, sessionID, version, body string) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(newRawRequest(ctxT(t), method, url, token, sessionID, version, body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func newRawRequest(ctx context.Context, method, url, token, sessionID, version, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sessionID)
	req.Header.Set("Mcp-Protocol-Version", version)
	return req
}

// sseMessage is one JSON-RPC message read from an SSE stream.
type sseMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// nextMessage reads the next JSON-RPC message of an SSE stream.
func nextMessage(t *testing.T, r *bufio.Reader) sseMessage {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the call's stream: %v", err)
		}
		data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data:")
		if !ok {
			continue
		}
		var m sseMessage
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &m); err != nil {
			t.Fatalf("stream message %s: %v", data, err)
		}
		return m
	}
}

// refused reports whether an answer to a request refuses it: 403 or 404, or, for a JSON-RPC
// request (one with an id, which can carry an error back), a JSON-RPC error and no result. An
// answer or notification, which gets no JSON-RPC reply, must be refused by its status.
func refused(request string, status int, body []byte) bool {
	if status == http.StatusForbidden || status == http.StatusNotFound {
		return true
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal([]byte(request), &m) != nil || m.ID == nil || m.Method == "" || status != http.StatusOK {
		return false
	}
	return strings.Contains(string(body), `"error"`) && !strings.Contains(string(body), `"result"`)
}

// TestForeignSessionRefusedOnEveryMethod sends, with another agent's valid token, every kind of
// message there is on an agent's session: tools/call on the lean relay and through the SDK,
// answers to the upstream's requests relayed to the owner, notifications/cancelled of the
// owner's call, resources/read, prompts/get, the GET stream and DELETE. Each is refused, and
// nothing of it reaches the upstream or the owner's calls. Raw HTTP, not the SDK client, which
// would refuse some of these on its own.
func TestForeignSessionRefusedOnEveryMethod(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	aliceToken, _ := tg.p.addAgent("alice")
	bobToken, _ := tg.p.addAgent("bob")

	for _, path := range []string{"/mcp/up", "/mcp"} {
		t.Run(path, func(t *testing.T) {
			name := func(tool string) string {
				if path == "/mcp" {
					return "up." + tool
				}
				return tool
			}
			url := tg.srv.URL + path
			// Alice's session declares sampling and elicitation, so the relay passes the
			// upstream's requests on to her, on her call's stream.
			cs := connect(t, url, aliceToken, &mcp.ClientOptions{
				//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
				CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
					return &mcp.CreateMessageResult{Content: &mcp.TextContent{Text: "from alice's client"}, Model: "m", Role: "assistant"}, nil
				},
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
				},
			})
			sid, version := cs.ID(), cs.InitializeResult().ProtocolVersion
			alice := func(body string) *http.Response {
				return rawRequest(t, http.MethodPost, url, aliceToken, sid, version, body)
			}

			// Alice has a relayed call in flight, and another waiting for her answer to the
			// upstream's sampling request.
			slow := make(chan string, 1) // the slow call's answer, once it ends
			go func() {
				resp, err := http.DefaultClient.Do(newRawRequest(ctxT(t), http.MethodPost, url, aliceToken, sid, version,
					`{"jsonrpc":"2.0","id":"a-slow","method":"tools/call","params":{"name":"`+name("slow")+`"}}`))
				if err != nil {
					slow <- err.Error()
					return
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				slow <- string(data)
			}()
			waitFor(t, up.started, "slow")
			interact := alice(`{"jsonrpc":"2.0","id":"a-interact","method":"tools/call","params":{"name":"` + name("interact") + `"}}`)
			stream := bufio.NewReader(interact.Body)
			sampling := nextMessage(t, stream)
			for sampling.Method != "sampling/createMessage" {
				sampling = nextMessage(t, stream)
			}
			before := len(up.headers())

			foreign := []struct{ name, method, body string }{
				{"tools/call on the relay", http.MethodPost,
					`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name("secret") + `"}}`},
				{"tools/call through the SDK", http.MethodPost, // a member the relay does not know
					`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + name("secret") + `","x-extra":1}}`},
				{"answer to the owner's sampling request", http.MethodPost,
					`{"jsonrpc":"2.0","id":` + string(sampling.ID) + `,"result":{"role":"assistant","model":"m","content":{"type":"text","text":"from bob"}}}`},
				{"error answer to the owner's sampling request", http.MethodPost,
					`{"jsonrpc":"2.0","id":` + string(sampling.ID) + `,"error":{"code":-1,"message":"from bob"}}`},
				{"notifications/cancelled of the owner's call", http.MethodPost,
					`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a-slow"}}`},
				{"resources/read", http.MethodPost,
					`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"test://doc"}}`},
				{"prompts/get", http.MethodPost,
					`{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"greet","arguments":{"who":"bob"}}}`},
				{"GET stream", http.MethodGet, ""},
				{"DELETE", http.MethodDelete, ""},
			}
			for _, f := range foreign {
				resp := rawRequest(t, f.method, url, bobToken, sid, version, f.body)
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if !refused(f.body, resp.StatusCode, body) {
					t.Errorf("%s with bob's token on alice's session: %d %s; want 403 or 404", f.name, resp.StatusCode, body)
				}
			}

			// Nothing of bob's reached the upstream, or was even decided.
			if n := len(up.headers()); n != before {
				t.Errorf("the upstream got %d requests during bob's attempts", n-before)
			}
			select {
			case got := <-up.started:
				t.Errorf("the upstream ran %s for bob", got)
			default:
			}
			if recs := tg.p.records("up", "secret"); len(recs) != 0 {
				t.Errorf("%d decisions on bob's calls; want none", len(recs))
			}
			select {
			case <-up.cancelled:
				t.Error("bob's notifications/cancelled cancelled alice's call")
			default:
			}

			// Alice's sampling request was still hers to answer; the upstream got her answer.
			if resp := alice(`{"jsonrpc":"2.0","id":` + string(sampling.ID) + `,"result":{"role":"assistant","model":"m","content":{"type":"text","text":"from alice"}}}`); resp.StatusCode != http.StatusAccepted {
				t.Errorf("alice's own answer: %d; want 202", resp.StatusCode)
			}
			for {
				m := nextMessage(t, stream)
				switch m.Method {
				case "elicitation/create":
					alice(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"action":"accept","content":{"name":"Ada"}}}`)
					continue
				case "roots/list":
					alice(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"roots":[]}}`)
					continue
				case "":
				default:
					continue
				}
				if string(m.ID) != `"a-interact"` {
					continue
				}
				if !strings.Contains(string(m.Result), "sampled=from alice ") {
					t.Errorf("interact: %s %s; want the result of alice's sampling answer", m.Result, m.Error)
				}
				break
			}

			// Alice's own cancel still works, and her session is still hers.
			if resp := alice(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a-slow"}}`); resp.StatusCode != http.StatusAccepted {
				t.Errorf("alice's own cancel: %d; want 202", resp.StatusCode)
			}
			waitFor(t, up.cancelled, "slow")
			select {
			case answer := <-slow:
				if strings.Contains(answer, `"result"`) {
					t.Errorf("alice's cancelled call got an answer: %s", answer)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("alice's cancelled call did not end within 10s")
			}
			if _, err := cs.ListTools(ctxT(t), nil); err != nil {
				t.Errorf("alice after bob's attempts: %v", err)
			}
		})
	}
}
