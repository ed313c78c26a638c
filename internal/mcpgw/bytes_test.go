package mcpgw

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

// rawResult is a tool result as an upstream may write it: spaces, and a member the SDK's types
// do not know. Decoded and encoded again it is shorter; on the wire it is this long.
const rawResult = `{ "content" : [ {"type":"text", "text":"odd"} ], "isError" : false, "x-vendor" : {"n": 1} }`

// startRawUpstream is a minimal streamable HTTP MCP server written by hand, answering JSON, so
// that a test knows the exact bytes of its answers.
func startRawUpstream(t *testing.T) string {
	t.Helper()
	return startRawUpstreamWith(t, rawResult)
}

// startRawUpstreamWith is startRawUpstream answering every tools/call with callResult.
func startRawUpstreamWith(t *testing.T, callResult string) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
			} `json:"params"`
		}
		data, _ := io.ReadAll(r.Body)
		if json.Unmarshal(data, &m) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var result string
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "raw-1")
			result = `{"protocolVersion":"` + m.Params.ProtocolVersion + `","capabilities":{"tools":{}},"serverInfo":{"name":"raw","version":"1"}}`
		case "tools/list":
			result = `{"tools":[{"name":"odd","inputSchema":{"type":"object"}}]}`
		case "tools/call":
			result = callResult
		default:
			if m.ID == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			result = `{}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + result + `}`))
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// BytesIn is one figure whatever carries the call: the size of the upstream's result as it came
// on the wire — through the lean relay and through the SDK client alike — and BytesOut the
// arguments as the agent sent them.
func TestBytesInIsTheWireSize(t *testing.T) {
	tg := newTestGateway(t, remoteTool("raw", startRawUpstream(t)))
	token, _ := tg.p.addAgent("bot")
	cs := connect(t, tg.srv.URL+"/mcp/raw", token, nil)
	sid, version := cs.ID(), cs.InitializeResult().ProtocolVersion
	const args = `{"a": 1}`
	for i, c := range []struct{ path, params string }{
		{"relay", `{"name":"odd","arguments":` + args + `}`},
		{"sdk", `{"name":"odd","arguments":` + args + `,"x-extra":1}`}, // a member the relay does not take
	} {
		resp := rawRequest(t, http.MethodPost, tg.srv.URL+"/mcp/raw", token, sid, version,
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`+c.params+`}`)
		if res, rpcErr := rpcAnswer(t, resp); rpcErr != nil || res == nil {
			t.Fatalf("%s: %s %+v", c.path, res, rpcErr)
		}
		recs := tg.p.records("raw", "odd")
		if len(recs) != i+1 {
			t.Fatalf("%s: %d permits, want %d", c.path, len(recs), i+1)
		}
		o := waitOutcomes(t, recs[i], 1)
		if len(o) != 1 || o[0].BytesIn != int64(len(rawResult)) || o[0].BytesOut != int64(len(args)) {
			t.Errorf("%s: outcomes %+v; want BytesIn %d (the result on the wire), BytesOut %d", c.path, o, len(rawResult), len(args))
		}
	}
}

// A local (stdio) server's answer is measured where warden's reader takes it off the pipe.
func TestBytesInOfALocalServer(t *testing.T) {
	tg := newPeerGateway(t)
	token, _ := tg.p.addAgent("bot")
	cs := connect(t, tg.srv.URL+"/mcp/peer", token, nil)
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 0}})
	if err != nil || res.IsError {
		t.Fatalf("sleep: %v %+v", err, res)
	}
	recs := tg.p.records("peer", "sleep")
	if len(recs) != 1 {
		t.Fatalf("%d permits, want 1", len(recs))
	}
	want, _ := json.Marshal(res) // the peer is an SDK server: it writes what the SDK encodes
	if o := waitOutcomes(t, recs[0], 1); len(o) != 1 || o[0].BytesIn != int64(len(want)) {
		t.Errorf("outcomes %+v; want BytesIn %d", o, len(want))
	}
}

// A tool result whose content the SDK's server cannot carry is an error on the call that came
// through the SDK's server — recorded as one, since the agent gets no result — and passes as it
// came on the lean relay.
func TestUndecodableResultIsRecordedAsTheAgentSeesIt(t *testing.T) {
	const bogus = `{"content":[{"type":"bogus","text":"x"}]}`
	tg := newTestGateway(t, remoteTool("raw", startRawUpstreamWith(t, bogus)))
	token, _ := tg.p.addAgent("bot")
	cs := connect(t, tg.srv.URL+"/mcp/raw", token, nil)
	sid, version := cs.ID(), cs.InitializeResult().ProtocolVersion
	for i, c := range []struct{ path, params, status string }{
		{"relay", `{"name":"odd","arguments":{}}`, warden.StatusOK},
		{"sdk", `{"name":"odd","arguments":{},"x-extra":1}`, warden.StatusError},
	} {
		resp := rawRequest(t, http.MethodPost, tg.srv.URL+"/mcp/raw", token, sid, version,
			`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`+c.params+`}`)
		res, rpcErr := rpcAnswer(t, resp)
		recs := tg.p.records("raw", "odd")
		if len(recs) != i+1 {
			t.Fatalf("%s: %d permits, want %d", c.path, len(recs), i+1)
		}
		o := waitOutcomes(t, recs[i], 1)
		if len(o) != 1 || o[0].Status != c.status {
			t.Errorf("%s: outcomes %+v; want status %s (answer %s, %+v)", c.path, o, c.status, res, rpcErr)
		}
	}
}
