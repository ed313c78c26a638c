package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tokenSource holds an agent's current access token and gets a new one before it expires
// (tokens live 10 minutes by default; a long run outlives several).
type tokenSource struct {
	c                *client
	clientID, secret string

	mu    sync.Mutex
	token string
	got   time.Time
}

func newTokenSource(ctx context.Context, c *client, clientID, secret string) (*tokenSource, error) {
	ts := &tokenSource{c: c, clientID: clientID, secret: secret}
	return ts, ts.refresh(ctx)
}

func (ts *tokenSource) refresh(ctx context.Context) error {
	tok, err := ts.c.agentToken(ctx, ts.clientID, ts.secret)
	if err != nil {
		return err
	}
	ts.mu.Lock()
	ts.token, ts.got = tok, time.Now()
	ts.mu.Unlock()
	return nil
}

// fresh refreshes the token when it is older than four minutes; between slices, not in a call.
func (ts *tokenSource) fresh(ctx context.Context) error {
	ts.mu.Lock()
	old := time.Since(ts.got) > 4*time.Minute
	ts.mu.Unlock()
	if old {
		return ts.refresh(ctx)
	}
	return nil
}

func (ts *tokenSource) current() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.token
}

// bearer adds the token source's current token to every request.
type bearer struct {
	ts   *tokenSource
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.ts.current())
	return b.base.RoundTrip(r)
}

// transports are the HTTP transports a run creates. When it ends their idle connections are
// closed, so that an in-process server shuts down at once: a connection a transport dialled but
// never used would hold the server's graceful shutdown for 5 seconds.
type transports struct {
	mu  sync.Mutex
	all []*http.Transport
}

func (ts *transports) new(conns int) *http.Transport {
	t := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 90 * time.Second}
	ts.mu.Lock()
	ts.all = append(ts.all, t)
	ts.mu.Unlock()
	return t
}

func (ts *transports) closeIdle() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, t := range ts.all {
		t.CloseIdleConnections()
	}
}

// httpCall sends one request and wants a 2xx answer; it reads the whole body, as a client does.
func httpCall(ctx context.Context, hc *http.Client, method, url string, body []byte, token *tokenSource) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != nil {
		req.Header.Set("Authorization", "Bearer "+token.current())
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return resp, data, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return resp, data, nil
}

// httpTarget calls GET base+path on a client shared by the target's workers.
func httpTarget(name, url string, tr *http.Transport, token *tokenSource) *target {
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return &target{name: name, worker: func(context.Context) (callFunc, func(), error) {
		return func(ctx context.Context) (func(context.Context), error) {
			_, _, err := httpCall(ctx, hc, http.MethodGet, url, nil, token)
			return nil, err
		}, func() {}, nil
	}}
}

// authorizeTarget asks for a decision (timed) and then reports its outcome (untimed, but in the
// worker's cycle, as a framework does both): base is warden or the upstream's look-alike.
func authorizeTarget(name, askURL string, outcomeURL func(id string) string, tr *http.Transport, token *tokenSource, tool string) *target {
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]any{"tool": tool, "action": "pay", "arguments": map[string]any{"n": 1}})
	return &target{name: name, worker: func(context.Context) (callFunc, func(), error) {
		return func(ctx context.Context) (func(context.Context), error) {
			_, data, err := httpCall(ctx, hc, http.MethodPost, askURL, body, token)
			if err != nil {
				return nil, err
			}
			var d struct {
				Effect     string `json:"effect"`
				DecisionID string `json:"decision_id"`
				Reason     string `json:"reason"`
			}
			if err := json.Unmarshal(data, &d); err != nil || d.Effect != "allow" || d.DecisionID == "" {
				return nil, fmt.Errorf("authorize: want allow with a decision id, got %s", strings.TrimSpace(string(data)))
			}
			return func(ctx context.Context) {
				_, _, _ = httpCall(ctx, hc, http.MethodPost, outcomeURL(d.DecisionID), []byte(`{"status":"ok"}`), token)
			}, nil
		}, func() {}, nil
	}}
}

// mcpTarget gives each worker its own MCP session (the official Go SDK client) and calls tool.
func mcpTarget(name, endpoint, tool string, trs *transports, token *tokenSource) *target {
	return &target{name: name, worker: func(ctx context.Context) (callFunc, func(), error) {
		cs, err := mcpConnect(ctx, endpoint, token, trs.new(4))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: connecting an MCP client to %s: %w", name, endpoint, err)
		}
		args := map[string]any{"text": "hello"}
		return func(ctx context.Context) (func(context.Context), error) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
			if err != nil {
				return nil, err
			}
			if res.IsError {
				return nil, fmt.Errorf("%s: %s", tool, resultText(res))
			}
			return nil, nil
		}, func() { _ = cs.Close() }, nil
	}}
}

func mcpConnect(ctx context.Context, endpoint string, token *tokenSource, base http.RoundTripper) (*mcp.ClientSession, error) {
	var rt = base
	if token != nil {
		rt = bearer{ts: token, base: base}
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "warden-bench", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: rt}, MaxRetries: -1}, nil)
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
