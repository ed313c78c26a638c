package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
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
func TestMCPUnlistedToolNamesAreRefusedAndAudited(t *testing.T) {
	var mu sync.Mutex
	var received []string
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && method == "tools/call" {
				mu.Lock()
				received = append(received, p.Name)
				mu.Unlock()
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

	in := start(t, t.TempDir(), nil)
	if _, err := in.cli(in.admin, "tool", "add", "m", "--mcp", up.URL, "--risk", "low"); err != nil {
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
	cs := mcpConnect(t, in.url+"/mcp", in.mustToken(c.ClientID, c.ClientSecret))
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
	mu.Lock()
	got := slices.Clone(received)
	mu.Unlock()
	if !slices.Equal(got, []string{"balance"}) {
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
