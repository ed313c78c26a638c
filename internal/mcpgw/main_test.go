package mcpgw

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestMain doubles as a local (stdio) MCP server: run with MCPGW_STDIO_PEER=1 — which warden
// passes as one of the tool's secret variables — the test binary serves MCP on stdin/stdout.
func TestMain(m *testing.M) {
	if os.Getenv("MCPGW_STDIO_PEER") == "1" {
		if err := runStdioPeer(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runStdioPeer() error {
	s := mcp.NewServer(&mcp.Implementation{Name: "stdio-peer", Version: "1"}, nil)
	reply := func(format string, args ...any) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
	}
	type msIn struct {
		MS int `json:"ms"`
	}
	var mu sync.Mutex
	var lastErr string
	sample := func(ctx context.Context, ss *mcp.ServerSession) (string, error) {
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		res, err := ss.CreateMessage(ctx, &mcp.CreateMessageParams{
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "say hi"}}},
			MaxTokens: 10,
		})
		if err != nil {
			return "", err
		}
		return res.Content.(*mcp.TextContent).Text, nil
	}

	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		wd, _ := os.Getwd()
		data, _ := json.Marshal(map[string]any{"env": os.Environ(), "wd": wd})
		return reply("%s", data), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "interact"}, func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 1})
		}
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: "peer working"})
		sampled, err := sample(ctx, req.Session)
		if err != nil {
			return nil, nil, err
		}
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "name?", RequestedSchema: map[string]any{
			"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}},
		}})
		if err != nil {
			return nil, nil, err
		}
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		_, rootsErr := req.Session.ListRoots(ctx, nil)
		return reply("sampled=%s elicited=%v roots-refused=%v", sampled, el.Content["name"], rootsErr != nil), nil, nil
	})
	// later asks for sampling after its call has ended: no call to attribute it to.
	mcp.AddTool(s, &mcp.Tool{Name: "later"}, func(_ context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := sample(ctx, req.Session)
			mu.Lock()
			lastErr = fmt.Sprint(err)
			mu.Unlock()
		}()
		return reply("scheduled"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "last-error"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		mu.Lock()
		defer mu.Unlock()
		return reply("%s", lastErr), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sample-after"}, func(ctx context.Context, req *mcp.CallToolRequest, in msIn) (*mcp.CallToolResult, any, error) {
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		sampled, err := sample(ctx, req.Session)
		if err != nil {
			return reply("refused: %v", err), nil, nil
		}
		return reply("sampled: %s", sampled), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep"}, func(_ context.Context, _ *mcp.CallToolRequest, in msIn) (*mcp.CallToolResult, any, error) {
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		return reply("slept"), nil, nil
	})
	return s.Run(context.Background(), &mcp.StdioTransport{})
}

// textOf is the text of a result, for checks that need no *testing.T.
func textOf(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
