package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

// Issue 12, finding 3, end to end: tool m granted, m:transfer forbidden. Names an upstream
// could read as "transfer", or a name it never listed, are refused with unknown_tool before
// policy, recorded in the audit log as a denied tool.call, and never reach the upstream.
// bankMCP is a real MCP server (the Go SDK on 127.0.0.1) with the tools transfer and balance
// that records every tools/call it receives: the name and the arguments as they came.
type bankMCP struct {
	url   string
	mu    sync.Mutex
	calls []string // name + " " + raw arguments
}

func (b *bankMCP) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func newBankMCP(t *testing.T) *bankMCP {
	b := &bankMCP{}
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && method == "tools/call" {
				b.mu.Lock()
				b.calls = append(b.calls, p.Name+" "+string(p.Arguments))
				b.mu.Unlock()
			}
			return next(ctx, method, req)
		}
	})
	for _, name := range []string{"transfer", "balance"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(up.Close)
	b.url = up.URL
	return b
}

// bankSetup registers the MCP tool m in front of bank and the agent bot, granted every action
// of m but transfer, which a forbid denies; it returns the agent's token.
func bankSetup(t *testing.T, in *instance, bank *bankMCP) string {
	t.Helper()
	if _, err := in.cli(in.admin, "tool", "add", "m", "--mcp", bank.url, "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	c := createAgent(t, in, "bot")
	dir := t.TempDir()
	writeFile(t, dir, "bot.cedar", `
@id("bot-m")
permit(principal == Agent::"bot", action in Action::"m", resource in Tool::"m");

@id("no-transfers")
forbid(principal, action == Action::"m:transfer", resource);
`)
	if _, err := in.cli(in.admin, "policy", "apply", dir); err != nil {
		t.Fatal(err)
	}
	return in.mustToken(c.ClientID, c.ClientSecret)
}

func TestMCPUnlistedToolNamesAreRefusedAndAudited(t *testing.T) {
	t.Parallel()
	bank := newBankMCP(t)
	in := start(t, t.TempDir(), nil)
	token := bankSetup(t, in, bank)
	cs := mcpConnect(t, in.url+"/mcp", token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "m.balance"}); err != nil || res.IsError {
		t.Fatalf("m.balance: %v %+v", err, res)
	}
	bad := []string{"transfer ", "transfer\n", "transfer\u200b", "Transfer", "transfer\u0000", "nonexistent"}
	for _, name := range bad {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "m." + name, Arguments: map[string]any{"to": "eve"}})
		var rpcErr *jsonrpc.Error
		if !errorsAs(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(string(rpcErr.Data), `"unknown_tool"`) {
			t.Errorf("m.%q: %v, want invalid params with reason unknown_tool", name, err)
		}
	}
	if got := bank.received(); !slices.Equal(got, []string{"balance {}"}) {
		t.Fatalf("the upstream received %q, want balance only", got)
	}
	evs := in.events("type=tool.call&agent=bot")
	for _, name := range bad {
		if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
			return ev.Target.Tool == "m" && ev.Target.Action == name && ev.Decision.Effect == warden.EffectDeny &&
				ev.Decision.Reason == "unknown_tool" && ev.Decision.ID != "" && ev.Target.ArgsSHA256 != ""
		}) {
			t.Errorf("no audit event refusing m.%q with unknown_tool", name)
		}
	}
}

// Issue 12: a lone UTF-16 surrogate in MCP arguments decoded to U+FFFD for the digest while the
// raw escape went upstream, so an approval of {"to":"bob\ud800"} also ran {"to":"bob\udfff"}.
// Such arguments are refused before policy with invalid_arguments — a JSON-RPC invalid params
// error, audited — through the lean relay and through the SDK alike, and never reach the
// upstream; a properly paired surrogate is text and goes through.
func TestMCPLoneSurrogateArgumentsAreRefused(t *testing.T) {
	t.Parallel()
	bank := newBankMCP(t)
	in := start(t, t.TempDir(), nil)
	token := bankSetup(t, in, bank)
	cs := mcpConnect(t, in.url+"/mcp", token)
	post := func(id int, params string) map[string]any {
		t.Helper()
		r := in.do("POST", "/mcp", map[string]string{
			"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
			"Mcp-Session-Id": cs.ID(), "Mcp-Protocol-Version": cs.InitializeResult().ProtocolVersion,
		}, `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"tools/call","params":`+params+`}`)
		body := r.body
		if i := bytes.Index(body, []byte("data: {")); i >= 0 { // the SDK answers as SSE
			body = body[i+len("data: "):]
			body = body[:bytes.IndexByte(body, '\n')]
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("answer %d %q: %v", r.status, r.body, err)
		}
		return m
	}
	id := 0
	for _, path := range []struct{ name, extra string }{{"relay", ""}, {"sdk", `,"x-extra":1`}} {
		for _, args := range []string{`{"to":"bob\ud800"}`, `{"to":"bob\udfff"}`, `{"to":"\udc00\ud800"}`, `{"to":"bob\ud800x"}`, `{"t\ud800o":"bob"}`, "{\"to\":\"bob\xff\"}"} {
			id++
			m := post(id, `{"name":"m.balance","arguments":`+args+path.extra+`}`)
			rpcErr, _ := m["error"].(map[string]any)
			data, _ := rpcErr["data"].(map[string]any)
			if rpcErr == nil || rpcErr["code"] != float64(jsonrpc.CodeInvalidParams) || data["reason"] != "invalid_arguments" {
				t.Errorf("%s %q: %v, want invalid params with reason invalid_arguments", path.name, args, m)
			}
		}
		id++
		m := post(id, `{"name":"m.balance","arguments":{"to":"bob\ud83d\ude00"}`+path.extra+`}`)
		if res, _ := m["result"].(map[string]any); res == nil || res["isError"] == true {
			t.Errorf("%s: a paired surrogate: %v, want the call to run", path.name, m)
		}
	}
	for _, got := range bank.received() {
		if !strings.HasPrefix(got, `balance {"to":"bob\ud83d\ude00"}`) {
			t.Errorf("the upstream received %q", got)
		}
	}
	if n := len(bank.received()); n != 2 {
		t.Errorf("the upstream received %d calls, want the two with a paired surrogate", n)
	}
	evs := in.events("type=tool.call&agent=bot")
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Target.Action == "balance" && ev.Decision.Effect == warden.EffectDeny && ev.Decision.Reason == "invalid_arguments" &&
			strings.Contains(ev.Decision.Message, "lone UTF-16 surrogate")
	}) {
		t.Error("no audit event refusing the arguments with invalid_arguments")
	}
}
