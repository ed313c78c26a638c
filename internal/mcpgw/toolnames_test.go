package mcpgw

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/mcpgw/wire"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// bankUpstream is a real MCP server (the Go SDK over streamable HTTP on 127.0.0.1) with the
// tools transfer and echo, which records the name of every tools/call it receives, whether
// it has such a tool or not.
type bankUpstream struct {
	URL   string
	mu    sync.Mutex
	calls []string
}

func (b *bankUpstream) received() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func startBankUpstream(t *testing.T) *bankUpstream {
	t.Helper()
	b := &bankUpstream{}
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && method == "tools/call" {
				b.mu.Lock()
				b.calls = append(b.calls, p.Name)
				b.mu.Unlock()
			}
			return next(ctx, method, req)
		}
	})
	for _, name := range []string{"transfer", "echo"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + " ran"}}}, nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	b.URL = ts.URL
	return b
}

// rpcAnswer reads the JSON-RPC response to a POST, answered as JSON (the relay) or as an SSE
// stream (the SDK).
func rpcAnswer(t *testing.T, resp *http.Response) (result json.RawMessage, rpcErr *struct {
	Code    int64           `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	msg := body
	if wire.MediaType(resp.Header.Get("Content-Type")) == "text/event-stream" {
		msg = nil
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, `"id"`) {
				msg = []byte(data)
			}
		}
	}
	var m struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int64           `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, body, err)
	}
	return m.Result, m.Error
}

// Only tools the upstream listed are callable, by their exact names: a name that an upstream
// could trim, fold or cut to "transfer" — which policy forbids — or one it never listed is
// refused before policy with unknown_tool, on /mcp and /mcp/<tool>, through the lean relay and
// through the SDK, and never reaches the upstream.
func TestUnlistedToolNamesNeverReachTheUpstream(t *testing.T) {
	bank := startBankUpstream(t)
	tg := newTestGateway(t, remoteTool("m", bank.URL))
	tg.p.deny["m/transfer"] = "transfers are forbidden"
	token, _ := tg.p.addAgent("bot")
	bad := []string{"transfer ", "transfer\n", "transfer\u200b", "Transfer", "transfer\u0000", "nonexistent", "transfer\ufffd", " transfer", ""}
	id := 0
	for _, ep := range []struct{ path, prefix string }{{"/mcp", "m."}, {"/mcp/m", ""}} {
		post := rawSession(t, tg, ep.path, token)
		for _, path := range []struct {
			name  string
			extra string // a params member the relay does not take: the call goes through the SDK
		}{{"relay", ""}, {"sdk", `,"x-extra":1`}} {
			for _, name := range bad {
				id++
				agentName := ep.prefix + name
				quoted, _ := json.Marshal(agentName)
				before := len(tg.p.records("m", name))
				resp := post(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":` + string(quoted) + `,"arguments":{"to":"eve"}` + path.extra + `}}`)
				result, rpcErr := rpcAnswer(t, resp)
				if rpcErr == nil || rpcErr.Code != -32602 || !strings.Contains(string(rpcErr.Data), `"reason":"unknown_tool"`) {
					t.Errorf("%s %s %q: answer %s %+v, want invalid params with reason unknown_tool", ep.path, path.name, agentName, result, rpcErr)
					continue
				}
				recs := tg.p.records("m", name)
				if len(recs) != before+1 || recs[len(recs)-1].permit.Decision.Reason != "unknown_tool" || recs[len(recs)-1].cancel != nil {
					t.Errorf("%s %s %q: want one refusal recorded before policy, got %d records", ep.path, path.name, agentName, len(recs)-before)
				}
			}
		}
	}
	if got := bank.received(); len(got) != 0 {
		t.Fatalf("the upstream received tools/call for %q; want none", got)
	}

	// The exact names go on to policy: transfer is denied there, echo runs — once each way.
	post := rawSession(t, tg, "/mcp", token)
	for i, extra := range []string{"", `,"x-extra":1`} {
		for _, name := range []string{"transfer", "echo"} {
			resp := post(`{"jsonrpc":"2.0","id":` + strconv.Itoa(i) + `,"method":"tools/call","params":{"name":"m.` + name + `"` + extra + `}}`)
			result, rpcErr := rpcAnswer(t, resp)
			if rpcErr != nil {
				t.Fatalf("m.%s: %+v", name, rpcErr)
			}
			ran := strings.Contains(string(result), name+" ran")
			if ran != (name == "echo") {
				t.Errorf("m.%s: result %s", name, result)
			}
		}
	}
	if got := bank.received(); !slices.Equal(got, []string{"echo", "echo"}) {
		t.Errorf("the upstream received %q, want echo twice", got)
	}
	if n := len(tg.p.records("m", "transfer")); n != 2 {
		t.Errorf("%d decisions on transfer, want the two policy denials", n)
	}
}

// The tool list follows the upstream: after notifications/tools/list_changed a tool added
// upstream is callable, and one removed is refused again.
func TestToolListFollowsListChanged(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "changing", Version: "1"}, nil)
	var mu sync.Mutex
	var received []string
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
	handler := func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran"}}}, nil, nil
	}
	mcp.AddTool(s, &mcp.Tool{Name: "old"}, handler)
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	tg := newTestGateway(t, remoteTool("m", ts.URL))
	token, _ := tg.p.addAgent("bot")
	changed := make(chan struct{}, 4)
	cs := connect(t, tg.srv.URL+"/mcp/m", token, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	call := func(name string) bool {
		t.Helper()
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name})
		return err == nil && !res.IsError
	}
	if !call("old") || call("new") {
		t.Fatal("before the change: want old callable, new refused")
	}
	waitChanged := func() {
		t.Helper()
		select {
		case <-changed:
		case <-ctxT(t).Done():
			t.Fatal("no notifications/tools/list_changed reached the agent")
		}
	}
	// A fresh list is not read again for a miss (toolListTTL): only the notification makes
	// new callable this soon, and old refused.
	mcp.AddTool(s, &mcp.Tool{Name: "new"}, handler)
	waitChanged()
	if !call("new") {
		t.Fatal("after the tool was added: new refused")
	}
	s.RemoveTools("old")
	waitChanged()
	if call("old") {
		t.Fatal("after the tool was removed: old still callable")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(received, []string{"old", "new"}) {
		t.Errorf("the upstream received %q", received)
	}
	if recs := tg.p.records("m", "old"); len(recs) != 2 || recs[1].permit.Decision.Reason != "unknown_tool" {
		t.Errorf("old after its removal: %d records", len(recs))
	}
}

// A miss in a tool list younger than toolListTTL is final; once the list is older, a miss reads
// it again, so a tool the upstream added without notifications/tools/list_changed becomes
// callable. The age is on the server's clock, a fake one here.
func TestToolListAgeOnTheClock(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "quiet", Version: "1"}, nil)
	var listed atomic.Bool // whether tools/list shows "new" yet: the upstream never notifies
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if lr, ok := res.(*mcp.ListToolsResult); ok && !listed.Load() {
				lr.Tools = slices.DeleteFunc(slices.Clone(lr.Tools), func(t *mcp.Tool) bool { return t.Name == "new" })
			}
			return res, err
		}
	})
	handler := func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ran"}}}, nil, nil
	}
	mcp.AddTool(s, &mcp.Tool{Name: "old"}, handler)
	mcp.AddTool(s, &mcp.Tool{Name: "new"}, handler)
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tg := newTestGatewayWith(t, Options{Clock: clk}, remoteTool("m", ts.URL))
	token, _ := tg.p.addAgent("bot")
	cs := connect(t, tg.srv.URL+"/mcp/m", token, nil)
	call := func(name string) bool {
		t.Helper()
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name})
		return err == nil && !res.IsError
	}
	if !call("old") || call("new") {
		t.Fatal("before the change: want old callable, new refused")
	}
	listed.Store(true)
	clk.Advance(toolListTTL - time.Millisecond)
	if call("new") {
		t.Fatal("a miss in a list younger than toolListTTL read the list again")
	}
	clk.Advance(time.Millisecond)
	if !call("new") {
		t.Fatal("a miss in a list toolListTTL old did not read the list again")
	}
	if recs := tg.p.records("m", "new"); len(recs) != 3 || recs[1].permit.Decision.Reason != "unknown_tool" {
		t.Errorf("new: %d records, want two refusals and the call", len(recs))
	}
}

// A name outside the MCP tool-name rule is not listed to the agent: warden would refuse it.
func TestListingHidesUncallableNames(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "odd", Version: "1"}, nil)
	raw := func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	}
	for _, name := range []string{"fine", "with space", "ümlaut"} {
		s.AddTool(&mcp.Tool{Name: name, InputSchema: map[string]any{"type": "object"}}, raw)
	}
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	tg := newTestGateway(t, remoteTool("m", ts.URL))
	token, _ := tg.p.addAgent("bot")
	for _, path := range []string{"/mcp", "/mcp/m"} {
		cs := connect(t, tg.srv.URL+path, token, nil)
		res, err := cs.ListTools(ctxT(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		want := []string{"fine"}
		if path == "/mcp" {
			want = []string{"m.fine"}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: tools %q, want %q", path, names, want)
		}
		if warden.ValidateMCPToolName("with space") == nil {
			t.Fatal("the rule accepts a space")
		}
	}
}
