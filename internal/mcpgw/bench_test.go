package mcpgw

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// BenchmarkToolCall measures one tools/call through warden, with the fake pipeline, on each
// transport: a remote upstream through the lean relay, a remote upstream through the SDK (a
// call with a member the relay does not take), and a local (stdio) server.
func BenchmarkToolCall(b *testing.B) {
	up := startUpstream(b)
	tg := newTestGateway(b, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("bot")

	b.Run("relay", func(b *testing.B) {
		cs := connect(b, tg.srv.URL+"/mcp", token, nil)
		b.ResetTimer()
		for b.Loop() {
			res, err := cs.CallTool(ctxT(b), &mcp.CallToolParams{Name: "up.echo", Arguments: map[string]any{"text": "hi"}})
			if err != nil || res.IsError {
				b.Fatalf("call: %v %+v", err, res)
			}
		}
	})
	b.Run("sdk", func(b *testing.B) {
		cs := connect(b, tg.srv.URL+"/mcp", token, nil)
		sid, version := cs.ID(), cs.InitializeResult().ProtocolVersion
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"up.echo","arguments":{"text":"hi"},"x-extra":1}}`
		b.ResetTimer()
		for b.Loop() {
			resp, err := http.DefaultClient.Do(newRawRequest(ctxT(b), http.MethodPost, tg.srv.URL+"/mcp", token, sid, version, body))
			if err != nil {
				b.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(data), `"result"`) {
				b.Fatalf("call: %d %s", resp.StatusCode, data)
			}
		}
	})
	b.Run("stdio", func(b *testing.B) {
		tg := newPeerGateway(b)
		token, _ := tg.p.addAgent("bot")
		cs := connect(b, tg.srv.URL+"/mcp", token, nil)
		b.ResetTimer()
		for b.Loop() {
			res, err := cs.CallTool(ctxT(b), &mcp.CallToolParams{Name: "peer.sleep", Arguments: map[string]any{"ms": 0}})
			if err != nil || res.IsError {
				b.Fatalf("call: %v %+v", err, res)
			}
		}
	})
}
