package replicatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/apitype"
)

// Upstream is the tool the fleet's agents call, on 127.0.0.1 in the test's process: an HTTP API
// and an MCP server (the official Go SDK) that answer at once, and a route and an MCP tool that
// block until their request is cancelled and record that they were — the proof that a kill
// aborted work in flight at the upstream.
//
//	GET /api/echo            {"ok":true}
//	GET /api/block?id=ID     blocks until cancelled
//	    /mcp                 tools echo {text} and block {id}
type Upstream struct {
	URL string

	mu        sync.Mutex
	started   map[string]time.Time
	cancelled map[string]time.Time
	changed   chan struct{}
}

// StartUpstream serves an upstream until t ends.
func StartUpstream(t testing.TB) *Upstream {
	t.Helper()
	u := &Upstream{started: map[string]time.Time{}, cancelled: map[string]time.Time{}, changed: make(chan struct{})}
	s := mcp.NewServer(&mcp.Implementation{Name: "replicatest-upstream", Version: "1"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "answers at once"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	type blockIn struct {
		ID string `json:"id"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "waits until cancelled"}, func(ctx context.Context, _ *mcp.CallToolRequest, in blockIn) (*mcp.CallToolResult, any, error) {
		u.block(ctx, in.ID)
		return nil, nil, errors.New("cancelled")
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	mux.HandleFunc("GET /api/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}` + "\n"))
	})
	mux.HandleFunc("GET /api/block", func(w http.ResponseWriter, r *http.Request) {
		u.block(r.Context(), r.URL.Query().Get("id"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	u.URL = "http://" + ln.Addr().String()
	return u
}

func (u *Upstream) note(m map[string]time.Time, id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	m[id] = time.Now()
	close(u.changed)
	u.changed = make(chan struct{})
}

func (u *Upstream) block(ctx context.Context, id string) {
	u.note(u.started, id)
	select {
	case <-ctx.Done():
		u.note(u.cancelled, id)
	case <-time.After(5 * time.Minute):
	}
}

// WaitStarted waits until the blocking call id has reached the upstream, or ctx ends.
func (u *Upstream) WaitStarted(ctx context.Context, id string) error {
	return u.wait(ctx, func() bool { _, ok := u.started[id]; return ok })
}

// WaitCancelled waits until the upstream saw the blocking call id cancelled, or ctx ends, and
// returns when it saw it.
func (u *Upstream) WaitCancelled(ctx context.Context, id string) (time.Time, error) {
	err := u.wait(ctx, func() bool { _, ok := u.cancelled[id]; return ok })
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.cancelled[id], err
}

func (u *Upstream) wait(ctx context.Context, cond func() bool) error {
	for {
		u.mu.Lock()
		ok, ch := cond(), u.changed
		u.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Agent is an agent the fleet knows, with its client credentials.
type Agent struct {
	Name, ClientID, Secret string
}

// Names of what Setup registers.
const (
	HTTPTool = "api"  // in front of Upstream /api: routes echo and block
	MCPTool  = "tool" // in front of Upstream /mcp: tools tool.echo and tool.block
)

// Setup registers the upstream's two tools through replica 0, grants them to the named agents
// and creates those agents.
func (f *Fleet) Setup(ctx context.Context, up *Upstream, agents ...string) []*Agent {
	f.t.Helper()
	c := f.Client(0)
	for _, spec := range []apitype.ToolSpec{
		{Name: HTTPTool, HTTP: up.URL + "/api", Risk: "low", Routes: []string{"GET /echo -> echo", "GET /block -> block"}},
		{Name: MCPTool, MCP: up.URL + "/mcp", Risk: "low"},
	} {
		if _, err := c.AddTool(ctx, spec); err != nil {
			f.t.Fatalf("add tool %s: %v", spec.Name, err)
		}
	}
	policy := ""
	for _, a := range agents {
		policy += fmt.Sprintf("permit(principal == Agent::%q, action in [Action::%q, Action::%q], resource);\n", a, HTTPTool, MCPTool)
	}
	if _, err := c.ApplyPolicies(ctx, apitype.PolicyApply{Files: map[string]string{"replicatest.cedar": policy}}); err != nil {
		f.t.Fatalf("apply policies: %v", err)
	}
	var out []*Agent
	for _, name := range agents {
		a, err := c.CreateAgent(ctx, apitype.AgentSpec{Name: name, Owner: "replicatest@example.invalid", TTL: "1d", Purpose: "multi-replica test"})
		if err != nil {
			f.t.Fatalf("create agent %s: %v", name, err)
		}
		out = append(out, &Agent{Name: name, ClientID: a.ClientID, Secret: a.ClientSecret})
	}
	return out
}
