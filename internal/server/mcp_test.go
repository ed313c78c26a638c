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

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
)

// mcpUpstream is an MCP server built with the official Go SDK that records the headers of every
// request it receives and can hold a call until its context ends.
type mcpUpstream struct {
	url      string
	mu       sync.Mutex
	headers  []http.Header
	started  chan struct{} // told when a slow call begins
	canceled chan struct{}
}

func newMCPUpstream(t *testing.T) *mcpUpstream {
	u := &mcpUpstream{started: make(chan struct{}, 16), canceled: make(chan struct{}, 16)}
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1"}, nil)
	type echoArgs struct {
		Message string `json:"message"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Message}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_everything", Description: "dangerous"}, func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "waits until cancelled"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		u.started <- struct{}{}
		select {
		case <-ctx.Done():
			u.canceled <- struct{}{}
			return nil, nil, ctx.Err()
		case <-time.After(30 * time.Second):
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		}
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	u.url = ts.URL
	return u
}

func (u *mcpUpstream) allHeaders() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.headers)
}

type bearerRT struct{ token string }

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func mcpConnect(t *testing.T, url, token string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearerRT{token}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, " ")
}

// TestMCPGateway is issue 3's "done when" through /mcp with a real MCP client: an agent granted
// one tool sees only that tool, calls it, is denied another tool and out-of-grant arguments with a
// clear reason, runs into its rate limit, and the upstream receives the brokered secret and never
// the agent's token.
func TestMCPGateway(t *testing.T) {
	t.Parallel()
	up := newMCPUpstream(t)
	in := start(t, t.TempDir(), nil)
	secret := "sk-upstream-" + strings.Repeat("Z", 24)
	if _, err := in.cliStdin(in.admin, secret, "secret", "set", "notes-key"); err != nil {
		t.Fatal(err)
	}
	doc := `
agents:
  - name: notes-bot
    owner: bob@example.com
    purpose: Take notes
tools:
  - name: notes
    mcp: ` + up.url + `
    risk: low
    secret: notes-key
    inject: "X-Api-Key: {{secret}}"
grants:
  - agent: notes-bot
    tool: notes
    actions: [echo, slow]
budgets:
  - agent: notes-bot
    tool: notes
    action: echo
    rate: 3/hour
`
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	cred := plan.Credentials["notes-bot"]
	token := in.mustToken(cred.ClientID, cred.ClientSecret)

	cs := mcpConnect(t, in.url+"/mcp", token)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"notes.echo", "notes.slow"}) {
		t.Fatalf("tools/list shows %v; want only the granted tools", names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("granted call: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.delete_everything", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "decision dec_") {
		t.Fatalf("ungranted tool: %v %+v", err, res)
	}
	for i := 0; i < 2; i++ {
		if res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "again"}}); err != nil || res.IsError {
			t.Fatalf("call %d within the rate: %v %+v", i, err, res)
		}
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "too many"}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "rate 3/hour") {
		t.Fatalf("over the rate: %v %+v", err, res)
	}
	for _, h := range up.allHeaders() {
		if strings.Contains(h.Get("Authorization"), token) {
			t.Fatal("the agent's token reached the upstream")
		}
	}
	found := false
	for _, h := range up.allHeaders() {
		if h.Get("X-Api-Key") == secret && h.Get("Warden-Agent") == "notes-bot" {
			found = true
		}
	}
	if !found {
		t.Fatal("the upstream never received the brokered secret with the agent's name")
	}
	evs := in.events("type=tool.call&agent=notes-bot")
	if !hasEvent(evs, warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "notes" && ev.Target.Action == "delete_everything" && ev.Decision.Effect == warden.EffectDeny
	}) {
		t.Error("the denied MCP call is not in the audit log")
	}
	// No token: 401 pointing to the protected resource metadata.
	r := in.do("POST", "/mcp", map[string]string{"Content-Type": "application/json"}, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "oauth-protected-resource") {
		t.Fatalf("no token: %d %v", r.status, r.header)
	}
	prm := in.do("GET", "/.well-known/oauth-protected-resource", nil, "").json(t)
	if servers, _ := prm["authorization_servers"].([]any); len(servers) != 1 || servers[0] != in.url {
		t.Fatalf("protected resource metadata: %v", prm)
	}
}
