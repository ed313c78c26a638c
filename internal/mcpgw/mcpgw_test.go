package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// testLog is where the Gateway logs in tests: nowhere, unless MCPGW_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("MCPGW_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// upstreamServer is a real MCP server (the official Go SDK over streamable HTTP on 127.0.0.1)
// that records the HTTP requests it gets.
type upstreamServer struct {
	URL       string
	server    *mcp.Server
	mu        sync.Mutex
	requests  []http.Header
	started   chan string // a tool call began
	cancelled chan string // a tool call saw its context cancelled
}

func (u *upstreamServer) headers() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.requests)
}

func startUpstream(t testing.TB) *upstreamServer {
	t.Helper()
	u := &upstreamServer{started: make(chan string, 16), cancelled: make(chan string, 16)}
	s := mcp.NewServer(&mcp.Implementation{Name: "test-upstream", Version: "1.2.3"}, &mcp.ServerOptions{
		Instructions: "upstream instructions",
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "-done"}}}, nil
		},
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
	})
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes text"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.TextContent{Text: "echo: " + in.Text},
			&mcp.ResourceLink{URI: "test://doc", Name: "doc"},
		}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "secret", Description: "policy denies it"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		u.started <- "secret"
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "should not run"}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "hidden", Description: "not listed"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "hidden ran"}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "returns an error result"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		return nil, nil, errors.New("it failed")
	})
	s.AddTool(&mcp.Tool{Name: "rpc-error", Description: "answers a JSON-RPC error", InputSchema: map[string]any{"type": "object"}},
		func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, &jsonrpc.Error{Code: -32001, Message: "rpc-error refused the call"}
		})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "waits to be cancelled"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
		u.started <- "slow"
		select {
		case <-ctx.Done():
			u.cancelled <- "slow"
			return nil, nil, ctx.Err()
		case <-time.After(20 * time.Second):
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slow finished"}}}, nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "chatty", Description: "notifications, then the result at once"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			for i := range 3 {
				if tok := req.Params.GetProgressToken(); tok != nil {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i)})
				}
				//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
				_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Data: i})
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "said it all"}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "interact", Description: "progress, logging, sampling and elicitation during the call"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ any) (*mcp.CallToolResult, any, error) {
			tok := req.Params.GetProgressToken()
			progress := func(n float64) {
				if tok != nil {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: n, Total: 2, Message: fmt.Sprintf("step %v", n)})
				}
			}
			progress(1)
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			_ = req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: "info", Logger: "interact", Data: "working"})
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			msg, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
				//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
				Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "say hi"}}},
				MaxTokens: 10,
			})
			if err != nil {
				return nil, nil, fmt.Errorf("sampling: %w", err)
			}
			el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
				Message: "your name?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{
					"name": map[string]any{"type": "string"},
				}},
			})
			if err != nil {
				return nil, nil, fmt.Errorf("elicitation: %w", err)
			}
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			roots, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return nil, nil, fmt.Errorf("roots: %w", err)
			}
			progress(2)
			sampled := msg.Content.(*mcp.TextContent).Text
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{
				Text: fmt.Sprintf("sampled=%s elicited=%v roots=%d", sampled, el.Content["name"], len(roots.Roots)),
			}}}, nil, nil
		})
	s.AddResource(&mcp.Resource{URI: "test://doc", Name: "doc", MIMEType: "text/plain"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "the doc"}}}, nil
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "test://items/{id}", Name: "item"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "item " + strings.TrimPrefix(req.Params.URI, "test://items/")}}}, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who", Required: true}}}, func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"]}}}}, nil
	})
	u.server = s
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests = append(u.requests, r.Header.Clone())
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	u.URL = ts.URL
	return u
}

// testGateway is a Gateway on a real HTTP server, with the fake pipeline behind it.
type testGateway struct {
	g   *Server
	p   *fakePipeline
	srv *httptest.Server
}

func newTestGateway(t testing.TB, tools ...*warden.Tool) *testGateway {
	t.Helper()
	return newTestGatewayWith(t, Options{}, tools...)
}

// newTestGatewayWith is newTestGateway with opts (Clock, for one) on top of its defaults.
func newTestGatewayWith(t testing.TB, opts Options, tools ...*warden.Tool) *testGateway {
	t.Helper()
	p := newFakePipeline(tools...)
	opts.Issuer, opts.SessionIdle, opts.Sandbox = "https://issuer.example", -1, SandboxOptions{Mode: SandboxOff}
	g := New(p, testLog(), opts)
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.Handler())
	mux.Handle("/mcp/", g.Handler())
	mux.Handle("/.well-known/oauth-protected-resource", g.ProtectedResourceMetadata())
	mux.Handle("/.well-known/oauth-protected-resource/", g.ProtectedResourceMetadata())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = g.Close()
		srv.Close()
	})
	return &testGateway{g: g, p: p, srv: srv}
}

// bearer adds an agent's token to every request, as an agent's MCP client does.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

func connect(t testing.TB, url, token string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: bearer{token, http.DefaultTransport}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func remoteTool(name, url string) *warden.Tool {
	return &warden.Tool{Name: name, Kind: warden.ToolMCP, URL: url, Risk: warden.RiskLow}
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

func TestAggregateListsVisibleToolsAndCalls(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	tg.p.hidden["up/hidden"] = true
	tg.p.hidden["up/prompts/get"] = true
	token, alice := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp", token, nil)
	ctx := ctxT(t)

	if got := cs.InitializeResult().ServerInfo.Name; got != "warden" {
		t.Errorf("serverInfo.name = %q, want warden", got)
	}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	want := []string{"up.chatty", "up.echo", "up.fail", "up.interact", "up.rpc-error", "up.secret", "up.slow"}
	if !slices.Equal(names, want) {
		t.Errorf("tools/list = %v, want %v (up.hidden is not visible)", names, want)
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up.echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || !strings.Contains(text(t, res), "echo: hi") {
		t.Fatalf("call = %+v", res)
	}
	// A resource link in a result is renamed so the agent can read it back through /mcp.
	if link, ok := res.Content[1].(*mcp.ResourceLink); !ok || link.URI != "up+test://doc" {
		t.Errorf("resource link = %#v, want URI up+test://doc", res.Content[1])
	}

	recs := tg.p.records("up", "echo")
	if len(recs) != 1 {
		t.Fatalf("Authorize called %d times for up/echo, want 1", len(recs))
	}
	if c := recs[0].call; c.Entry != gateway.EntryMCP || string(c.Arguments) != `{"text":"hi"}` {
		t.Errorf("call = %+v (arguments %s)", c, c.Arguments)
	}
	outs := waitOutcomes(t, recs[0], 1)
	if len(outs) != 1 || outs[0].Status != warden.StatusOK || outs[0].BytesIn == 0 || outs[0].BytesOut == 0 || outs[0].UpstreamStatus != 200 {
		t.Errorf("outcomes = %+v, want one ok with bytes", outs)
	}

	// The upstream got the brokered credential and who acted, on every request, and never the
	// agent's token.
	hs := up.headers()
	if len(hs) == 0 {
		t.Fatal("the upstream got no requests")
	}
	for i, h := range hs {
		if got := h.Get("Authorization"); got != "Bearer upstream-secret-value" {
			t.Errorf("request %d: Authorization = %q, want the brokered secret", i, got)
		}
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, token) {
					t.Errorf("request %d: header %s carries the agent's token", i, k)
				}
			}
		}
		if h.Get("Warden-Agent") != "alice" || h.Get("Warden-Session") != alice.Claims.SessionID {
			t.Errorf("request %d: Warden-Agent %q, Warden-Session %q", i, h.Get("Warden-Agent"), h.Get("Warden-Session"))
		}
		if !traceparentRE.MatchString(h.Get("Traceparent")) {
			t.Errorf("request %d: traceparent %q", i, h.Get("Traceparent"))
		}
	}
	// The call's own request carries the permit's span.
	found := false
	for _, h := range hs {
		if h.Get("Traceparent") == recs[0].permit.Trace.Traceparent() {
			found = true
		}
	}
	if !found {
		t.Errorf("no upstream request carried the call's traceparent %s", recs[0].permit.Trace.Traceparent())
	}

	// Resources, templates and prompts, named to route back.
	rs, err := cs.ListResources(ctx, nil)
	if err != nil || len(rs.Resources) != 1 || rs.Resources[0].URI != "up+test://doc" {
		t.Fatalf("resources/list = %+v, %v", rs, err)
	}
	rts, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(rts.ResourceTemplates) != 1 || rts.ResourceTemplates[0].URITemplate != "up+test://items/{id}" {
		t.Fatalf("resources/templates/list = %+v, %v", rts, err)
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "up+test://items/7"})
	if err != nil || rr.Contents[0].Text != "item 7" || rr.Contents[0].URI != "up+test://items/7" {
		t.Fatalf("resources/read = %+v, %v", rr, err)
	}
	if r := tg.p.records("up", "resources/read"); len(r) != 1 || r[0].call.Resource != "test://items/7" {
		t.Errorf("resources/read decisions = %+v", r)
	}
	ps, err := cs.ListPrompts(ctx, nil)
	if err != nil || len(ps.Prompts) != 0 {
		t.Errorf("prompts/list = %+v, %v; want none (prompts/get is hidden)", ps, err)
	}
	cr, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "up.greet"}, Argument: mcp.CompleteParamsArgument{Name: "who", Value: "wor"}})
	if err != nil || len(cr.Completion.Values) != 1 || cr.Completion.Values[0] != "wor-done" {
		t.Errorf("completion/complete = %+v, %v", cr, err)
	}
	if r := tg.p.records("up", "completion/complete"); len(r) != 1 || r[0].call.Resource != "greet" {
		t.Errorf("completion decisions = %+v", r)
	}
}

func TestDeniedCallIsAToolError(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	tg.p.deny["up/secret"] = "not granted"
	tg.p.deny["up/prompts/get"] = "prompts are off"
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp", token, nil)
	ctx := ctxT(t)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up.secret"})
	if err != nil {
		t.Fatalf("a denied call must be a tool result, not an error: %v", err)
	}
	recs := tg.p.records("up", "secret")
	if len(recs) != 1 {
		t.Fatalf("decisions = %d", len(recs))
	}
	id := recs[0].permit.Decision.ID
	if !res.IsError || text(t, res) != "not granted (decision "+id+")" {
		t.Errorf("denied result = %+v, text %q", res, text(t, res))
	}
	if res.Meta["warden/decision"] != id {
		t.Errorf("_meta = %v", res.Meta)
	}
	select {
	case name := <-up.started:
		t.Errorf("the upstream ran %s although it was denied", name)
	default:
	}

	// An unknown tool-server is denied by the pipeline too, and audited: an unknown tool is
	// a JSON-RPC invalid params error, as the MCP specification has it.
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "nope.echo"})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != jsonrpc.CodeInvalidParams || !strings.Contains(rpcErr.Message, "(decision dec_") {
		t.Errorf("unknown tool: %v", err)
	}

	// Other methods get a JSON-RPC error with the same text.
	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "up.greet", Arguments: map[string]string{"who": "x"}})
	if err == nil || !strings.Contains(err.Error(), "prompts are off (decision dec_") {
		t.Errorf("denied prompts/get: %v", err)
	}
}

func TestUnauthenticated(t *testing.T) {
	tg := newTestGateway(t)
	for _, path := range []string{"/mcp", "/mcp/up"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic abc"} {
			method := map[string]string{"": "POST", "Bearer wrong": "GET", "Basic abc": "DELETE"}[auth]
			req, _ := http.NewRequest(method, tg.srv.URL+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := `Bearer resource_metadata="` + tg.srv.URL + `/.well-known/oauth-protected-resource` + path + `"`
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != want {
				t.Errorf("%s %s with %q: %d %q, want 401 %q", method, path, auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
			}
		}
	}
	for path, resource := range map[string]string{
		"/.well-known/oauth-protected-resource":            "/mcp",
		"/.well-known/oauth-protected-resource/mcp":        "/mcp",
		"/.well-known/oauth-protected-resource/mcp/github": "/mcp/github",
	} {
		resp, err := http.Get(tg.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var meta map[string]any
		err = json.NewDecoder(resp.Body).Decode(&meta)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		if meta["resource"] != tg.srv.URL+resource ||
			fmt.Sprint(meta["authorization_servers"]) != "[https://issuer.example]" ||
			fmt.Sprint(meta["bearer_methods_supported"]) != "[header]" || meta["scopes_supported"] == nil {
			t.Errorf("%s: %v", path, meta)
		}
	}
	resp, err := http.Get(tg.srv.URL + "/.well-known/oauth-protected-resource/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("metadata of an unknown path: %d", resp.StatusCode)
	}
}

func TestSessionBelongsToItsAgent(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	aliceToken, _ := tg.p.addAgent("alice")
	bobToken, _ := tg.p.addAgent("bob")
	cs := connect(t, tg.srv.URL+"/mcp", aliceToken, nil)

	for _, method := range []string{"POST", "GET", "DELETE"} {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
		}
		req, _ := http.NewRequest(method, tg.srv.URL+"/mcp", body)
		req.Header.Set("Authorization", "Bearer "+bobToken)
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s with bob's token on alice's session: %d, want 403 or 404", method, resp.StatusCode)
		}
	}
	// Alice's session is still hers and still works.
	if _, err := cs.ListTools(ctxT(t), nil); err != nil {
		t.Errorf("alice after the attempt: %v", err)
	}
	// A session of /mcp is unknown at /mcp/up.
	req, _ := http.NewRequest("POST", tg.srv.URL+"/mcp/up", strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`))
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	req.Header.Set("Mcp-Session-Id", cs.ID())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an /mcp session at /mcp/up: %d, want 404", resp.StatusCode)
	}
}

// Progress, logging, sampling, elicitation and roots reach the agent during a call to a remote
// upstream, whichever entry the call took: the lean relay, or the SDK's server (a call with a
// params member the relay does not take) — both carried by the raw transport.
func TestSingleServerRelaysServerToClient(t *testing.T) {
	t.Run("relay", func(t *testing.T) { testSingleServerRelaysServerToClient(t, http.DefaultTransport) })
	t.Run("sdk", func(t *testing.T) { testSingleServerRelaysServerToClient(t, sdkEntry{http.DefaultTransport}) })
}

// sdkEntry adds a params member the lean relay does not take to every tools/call, so that the
// call enters through the SDK's server.
type sdkEntry struct{ base http.RoundTripper }

func (e sdkEntry) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"method":"tools/call"`)) {
			body = bytes.Replace(body, []byte(`"params":{`), []byte(`"params":{"x-extra":1,`), 1)
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return e.base.RoundTrip(r)
}

func testSingleServerRelaysServerToClient(t *testing.T, rt http.RoundTripper) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("alice")

	var mu sync.Mutex
	var logs []string
	var progress []string
	var sampled, elicited int
	opts := &mcp.ClientOptions{
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			mu.Lock()
			sampled++
			mu.Unlock()
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "hello from the agent's model"}}, nil
		},
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			mu.Lock()
			elicited++
			mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf("%s:%v", req.Params.Logger, req.Params.Data))
			mu.Unlock()
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, fmt.Sprintf("%v:%v", req.Params.ProgressToken, req.Params.Progress))
			mu.Unlock()
		},
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, opts)
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	c.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"})
	ctx := ctxT(t)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   tg.srv.URL + "/mcp/up",
		HTTPClient: &http.Client{Transport: bearer{token, rt}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	// An unchanged server: the upstream's identity, instructions and names.
	ir := cs.InitializeResult()
	if ir.ServerInfo.Name != "test-upstream" || ir.Instructions != "upstream instructions" || ir.Capabilities.Completions == nil {
		t.Errorf("initialize = %+v", ir)
	}
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "interact", Meta: mcp.Meta{"progressToken": "agent-token-42"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || text(t, res) != "sampled=hello from the agent's model elicited=Ada roots=1" {
		t.Fatalf("interact = %q (isError %v)", text(t, res), res.IsError)
	}
	// The SDK client runs notification handlers on a queue of their own: give them a moment.
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 2 && len(logs) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if sampled != 1 || elicited != 1 {
		t.Errorf("sampling %d, elicitation %d; want 1 each", sampled, elicited)
	}
	if !slices.Equal(logs, []string{"interact:working"}) {
		t.Errorf("logs = %v", logs)
	}
	if !slices.Equal(progress, []string{"agent-token-42:1", "agent-token-42:2"}) {
		t.Errorf("progress = %v, want the agent's own token", progress)
	}
	if o := onlyOutcome(t, tg.p, "up", "interact"); o.Status != warden.StatusOK {
		t.Errorf("outcome = %+v", o)
	}
}

func TestOutcomeStatuses(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp/up", token, nil)
	ctx := ctxT(t)

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "fail"})
	if err != nil || !res.IsError {
		t.Fatalf("fail = %+v, %v", res, err)
	}
	if o := onlyOutcome(t, tg.p, "up", "fail"); o.Status != warden.StatusError {
		t.Errorf("isError result: outcome %+v, want error", o)
	}

	// An upstream JSON-RPC error reaches the agent as it was, and counts as an error.
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "rpc-error"})
	if err == nil || !strings.Contains(err.Error(), "rpc-error refused the call") {
		t.Errorf("upstream JSON-RPC error: %v", err)
	}
	if o := onlyOutcome(t, tg.p, "up", "rpc-error"); o.Status != warden.StatusError {
		t.Errorf("upstream error: outcome %+v, want error", o)
	}

	// The agent cancelling its call cancels it upstream; the outcome is canceled.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "slow"})
		done <- err
	}()
	waitFor(t, up.started, "slow")
	cancel()
	<-done
	waitFor(t, up.cancelled, "slow")
	if o := onlyOutcome(t, tg.p, "up", "slow"); o.Status != warden.StatusCanceled {
		t.Errorf("agent cancel: outcome %+v, want canceled", o)
	}
}

// eventually waits for cond to hold, and fails the test if it does not within 10 seconds (as
// long as waitFor waits): a condition that never comes is a failure, not a pass.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if !time.Now().Before(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitFor(t *testing.T, ch chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", want)
	}
}

func TestPermitCancellationAbortsUpstream(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp", token, nil)
	ctx := ctxT(t)

	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "up.slow"})
		done <- result{res, err}
	}()
	waitFor(t, up.started, "slow")
	recs := tg.p.records("up", "slow")
	recs[0].cancel() // what a kill does to the permit's context
	waitFor(t, up.cancelled, "slow")
	r := <-done
	if r.err != nil || !r.res.IsError || !strings.Contains(text(t, r.res), "cancelled by warden") {
		t.Errorf("killed call = %+v, %v", r.res, r.err)
	}
	if outs := waitOutcomes(t, recs[0], 1); len(outs) != 1 || outs[0].Status != warden.StatusCanceled {
		t.Errorf("outcomes %+v, want exactly one canceled", outs)
	}
}

func TestCloseAgentSessions(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	aliceToken, alice := tg.p.addAgent("alice")
	bobToken, _ := tg.p.addAgent("bob")
	a1 := connect(t, tg.srv.URL+"/mcp", aliceToken, nil)
	a2 := connect(t, tg.srv.URL+"/mcp/up", aliceToken, nil)
	b := connect(t, tg.srv.URL+"/mcp", bobToken, nil)
	ctx := ctxT(t)
	if _, err := a1.ListTools(ctx, nil); err != nil { // opens an upstream session for a1
		t.Fatal(err)
	}

	if n := tg.g.CloseAgentSessions(alice.Agent.ID); n != 2 {
		t.Errorf("CloseAgentSessions = %d, want 2", n)
	}
	for i, cs := range []*mcp.ClientSession{a1, a2} {
		waited := make(chan struct{})
		go func() {
			_ = cs.Wait()
			close(waited)
		}()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Errorf("alice's session %d did not see its end", i)
		}
		if _, err := cs.ListTools(ctx, nil); err == nil {
			t.Errorf("alice's session %d still answers", i)
		}
	}
	if _, err := b.ListTools(ctx, nil); err != nil {
		t.Errorf("bob's session was affected: %v", err)
	}
}

func TestMalformedRequests(t *testing.T) {
	tg := newTestGateway(t)
	token, _ := tg.p.addAgent("alice")
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", tg.srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	for body, code := range map[string]float64{
		`{`:                                     -32700,
		`not json`:                              -32700,
		`{"jsonrpc":"2.0"}`:                     -32600,
		`[]`:                                    -32600,
		`{"jsonrpc":"1.0","id":1,"method":"x"}`: -32600,
	} {
		status, m := post(body)
		e, _ := m["error"].(map[string]any)
		if status != http.StatusBadRequest || e == nil || e["code"] != code {
			t.Errorf("%q: %d %v, want 400 with JSON-RPC error %v", body, status, m, code)
		}
	}
	status, _ := post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 5<<20) + `"}}`)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", status)
	}
}

func FuzzJSONRPC(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"up.echo","arguments":{"text":1}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":null,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{"sampling":{}}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"up+x"}}`,
		`{`, ``, `null`, `[]`, `"\u0000"`,
	} {
		f.Add([]byte(seed))
	}
	p := newFakePipeline(&warden.Tool{Name: "up", Kind: warden.ToolMCP, URL: "http://127.0.0.1:1/mcp"})
	token, _ := p.addAgent("fuzz")
	g := New(p, testLog(), Options{UpstreamTimeout: time.Second, SessionIdle: -1, Sandbox: SandboxOptions{Mode: SandboxOff}})
	f.Cleanup(func() { _ = g.Close() })
	h := g.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/mcp", "/mcp/up"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			w := httptest.NewRecorder()
			served := make(chan struct{})
			go func() {
				defer close(served)
				h.ServeHTTP(w, req)
			}()
			select {
			case <-served:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s %q: no answer after 10s", path, body)
			}
			if w.Code >= 500 {
				t.Errorf("%s %q: status %d: %s", path, body, w.Code, w.Body)
			}
		}
	})
}
