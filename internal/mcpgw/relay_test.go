package mcpgw

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/mcpgw/wire"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// contentTypes records the content type of the answer to each tools/call POST.
type contentTypes struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (c *contentTypes) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := c.base.RoundTrip(r)
	if err == nil && bytes.Contains(body, []byte(`"tools/call"`)) {
		c.mu.Lock()
		c.seen = append(c.seen, wire.MediaType(resp.Header.Get("Content-Type")))
		c.mu.Unlock()
	}
	return resp, err
}

func (c *contentTypes) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// A call to a remote upstream is relayed by warden itself and answered as JSON, the first one
// on /mcp (which connects the upstream session) too, with the URIs in the result named for /mcp.
func TestRelayServesConnectedCalls(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("bot")
	ct := &contentTypes{base: http.DefaultTransport}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	cs, err := c.Connect(ctxT(t), &mcp.StreamableClientTransport{
		Endpoint:   tg.srv.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{token, ct}},
		MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	var results []string
	for range 3 {
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "up.echo", Arguments: map[string]any{"text": "hi"}})
		if err != nil || res.IsError {
			t.Fatalf("call: %v %+v", err, res)
		}
		link, _ := res.Content[1].(*mcp.ResourceLink)
		if link == nil || link.URI != "up+test://doc" {
			t.Fatalf("content = %+v, want the resource link named up+test://doc", res.Content)
		}
		results = append(results, text(t, res))
	}
	if got := ct.list(); len(got) != 3 || got[0] != "application/json" || got[1] != "application/json" || got[2] != "application/json" {
		t.Errorf("answers = %v, want the relay's JSON three times", got)
	}
	for _, r := range results {
		if r != "echo: hi" {
			t.Errorf("result %q, want echo: hi", r)
		}
	}
	// Each call, relayed or not, has one permit and one ok outcome, and the upstream got the
	// brokered credential and never the agent's token.
	recs := tg.p.records("up", "echo")
	if len(recs) != 3 {
		t.Fatalf("%d permits, want 3", len(recs))
	}
	for _, r := range recs {
		if o := waitOutcomes(t, r, 1); len(o) != 1 || o[0].Status != warden.StatusOK || o[0].BytesIn == 0 || o[0].UpstreamStatus != http.StatusOK {
			t.Errorf("outcomes %+v, want one ok with the upstream's status and size", o)
		}
	}
	for _, h := range up.headers() {
		if strings.Contains(h.Get("Authorization"), token) {
			t.Fatalf("the agent's token reached the upstream: %v", h)
		}
	}
}

// rawSession opens a session with the Go SDK client and returns what a raw POST on it needs.
func rawSession(t *testing.T, tg *testGateway, path, token string) (post func(body string) *http.Response) {
	t.Helper()
	cs := connect(t, tg.srv.URL+path, token, nil)
	return func(body string) *http.Response {
		req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, tg.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Mcp-Protocol-Version", cs.InitializeResult().ProtocolVersion)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
}

// The relay refuses a second call with the id of one in flight, as the SDK does; the agent's
// notifications/cancelled ends a relayed call, upstream too, with a canceled outcome.
func TestRelayDuplicateIDAndCancel(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("bot")
	post := rawSession(t, tg, "/mcp/up", token)

	first := make(chan *http.Response, 1)
	go func() { first <- post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow"}}`) }()
	waitFor(t, up.started, "slow")
	dup := post(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)
	body, _ := io.ReadAll(dup.Body)
	if dup.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "duplicate in-flight request ID 7") {
		t.Errorf("duplicate id: %d %s", dup.StatusCode, body)
	}
	if resp := post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`); resp.StatusCode != http.StatusAccepted {
		t.Errorf("cancel: %d", resp.StatusCode)
	}
	waitFor(t, up.cancelled, "slow")
	resp := <-first
	data, _ := io.ReadAll(resp.Body)
	if bytes.Contains(data, []byte(`"result"`)) {
		t.Errorf("a cancelled call got an answer: %s", data)
	}
	if o := onlyOutcome(t, tg.p, "up", "slow"); o.Status != warden.StatusCanceled {
		t.Errorf("outcome %+v, want canceled", o)
	}
}

// A session that only the relay serves stays open while it is used and closes once idle, on
// the server's clock: a fake one, moved by the test, so that no timer races the machine's load.
func TestRelayKeepsSessionsAliveAndClosesIdleOnes(t *testing.T) {
	up := startUpstream(t)
	p := newFakePipeline(remoteTool("up", up.URL))
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	const idle = time.Minute
	g := New(p, testLog(), Options{SessionIdle: idle, Clock: clk, Sandbox: SandboxOptions{Mode: SandboxOff}})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		_ = g.Close()
		srv.Close()
	})
	token, _ := p.addAgent("bot")
	cs := connect(t, srv.URL+"/mcp/up", token, nil)
	call := func() error {
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
		if err == nil && res.IsError {
			err = fmt.Errorf("tool error: %+v", res.Content)
		}
		return err
	}
	// waitIdle waits until the session's idle timer is armed again after a call (the call's end
	// restarts it, which may come after the agent has its answer).
	waitIdle := func() {
		t.Helper()
		if err := clk.WaitForTimers(1); err != nil {
			t.Fatal(err)
		}
	}
	// Used more often than idle, for five times idle: each call starts the idle time afresh.
	for range 5 {
		waitIdle()
		clk.Advance(idle - time.Second)
		if err := call(); err != nil {
			t.Fatalf("a session in use closed: %v", err)
		}
	}
	waitIdle()
	clk.Advance(idle - time.Second)
	g.mu.Lock()
	open := len(g.byID)
	g.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d sessions open just before SessionIdle, want the one", open)
	}
	clk.Advance(time.Second) // the idle timer's close runs inside Advance
	if err := call(); err == nil {
		t.Fatal("an idle session still answers")
	}
}

// A call the relay cannot take with certainty of the same meaning goes through the SDK: here a
// params member the relay does not know.
func TestRelayLeavesUnknownCallsToTheSDK(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("bot")
	post := rawSession(t, tg, "/mcp/up", token)
	plain := post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a"}}}`)
	other := post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"b"},"x-extra":1}}`)
	if got := wire.MediaType(plain.Header.Get("Content-Type")); got != "application/json" {
		t.Errorf("plain call answered as %q, want the relay's JSON", got)
	}
	if got := wire.MediaType(other.Header.Get("Content-Type")); got != "text/event-stream" {
		t.Errorf("call with an unknown member answered as %q, want the SDK's stream", got)
	}
	for _, resp := range []*http.Response{plain, other} {
		data, _ := io.ReadAll(resp.Body)
		if !bytes.Contains(data, []byte("echo: ")) {
			t.Errorf("answer %s", data)
		}
	}
}

// A loopback listener takes loopback Host names only (DNS rebinding), on the relay's path as on
// the SDK's: both judge by package loopback's rule.
func TestRelayRefusesForeignHostOnLoopback(t *testing.T) {
	bank := startBankUpstream(t)
	tg := newTestGateway(t, remoteTool("m", bank.URL))
	token, _ := tg.p.addAgent("bot")
	cs := connect(t, tg.srv.URL+"/mcp/m", token, nil)
	for _, host := range []string{"evil.example.com", "evil.example.com:80", "localhost.evil.example.com"} {
		for _, extra := range []string{"", `,"x-extra":1`} {
			req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, tg.srv.URL+"/mcp/m",
				strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"`+extra+`}}`))
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", cs.ID())
			req.Header.Set("Mcp-Protocol-Version", cs.InitializeResult().ProtocolVersion)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("Host %q%s: %d, want 403", host, extra, resp.StatusCode)
			}
		}
	}
	if got := bank.received(); len(got) != 0 {
		t.Fatalf("the upstream received %q", got)
	}
}

// A call that entered through the SDK's server travels over the raw transport too; the agent's
// notifications/cancelled (which the SDK handles) ends it, upstream too, with a canceled
// outcome and no answer.
func TestCancelOfACallThroughTheSDK(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("bot")
	post := rawSession(t, tg, "/mcp/up", token)

	first := make(chan *http.Response, 1)
	go func() {
		first <- post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","x-extra":1}}`)
	}()
	waitFor(t, up.started, "slow")
	if resp := post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}`); resp.StatusCode != http.StatusAccepted {
		t.Errorf("cancel: %d", resp.StatusCode)
	}
	waitFor(t, up.cancelled, "slow")
	resp := <-first
	data, _ := io.ReadAll(resp.Body)
	if bytes.Contains(data, []byte(`"result"`)) {
		t.Errorf("a cancelled call got an answer: %s", data)
	}
	if o := onlyOutcome(t, tg.p, "up", "slow"); o.Status != warden.StatusCanceled {
		t.Errorf("outcome %+v, want canceled", o)
	}
}
