package mcpgw

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// peerTool is the test binary itself as a local MCP server (see TestMain).
func peerTool(t testing.TB) *warden.Tool {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &warden.Tool{
		Name: "peer", Kind: warden.ToolMCPCommand, Risk: warden.RiskLow,
		Command:   []string{exe},
		SecretEnv: map[string]string{"MCPGW_STDIO_PEER": "peer-switch", "PEER_TOKEN": "peer-token"},
	}
}

func newPeerGateway(t testing.TB) *testGateway {
	tg := newTestGateway(t, peerTool(t))
	tg.p.env["peer-switch"] = "1"
	tg.p.env["peer-token"] = "peer-secret-value"
	return tg
}

func TestStdioEnvironmentIsMinimal(t *testing.T) {
	t.Setenv("WARDEN_CANARY", "warden's own environment")
	tg := newPeerGateway(t)
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp", token, nil)
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "peer.whoami"})
	if err != nil || res.IsError {
		t.Fatalf("whoami: %+v, %v", res, err)
	}
	var who struct {
		Env []string
		WD  string
	}
	if err := json.Unmarshal([]byte(text(t, res)), &who); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range who.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var keys []string
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"HOME", "MCPGW_STDIO_PEER", "PATH", "PEER_TOKEN", "TMPDIR"}; !slices.Equal(keys, want) {
		t.Errorf("environment = %v, want exactly %v", keys, want)
	}
	if env["PEER_TOKEN"] != "peer-secret-value" {
		t.Errorf("PEER_TOKEN = %q", env["PEER_TOKEN"])
	}
	home, _ := os.UserHomeDir()
	if env["HOME"] == home || !strings.Contains(filepath.Base(env["HOME"]), "warden-mcp-peer-") || who.WD != env["HOME"] {
		t.Errorf("HOME %q, working directory %q: want a private directory", env["HOME"], who.WD)
	}
}

func TestSharedStdioRelaysWithinOneCall(t *testing.T) {
	tg := newPeerGateway(t)
	token, _ := tg.p.addAgent("alice")
	var mu sync.Mutex
	var sampled int
	var logs, progress []string
	opts := &mcp.ClientOptions{
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			mu.Lock()
			sampled++
			mu.Unlock()
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "hi"}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			mu.Lock()
			logs = append(logs, req.Params.Logger+":"+req.Params.Data.(string))
			mu.Unlock()
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, req.Params.ProgressToken.(string))
			mu.Unlock()
		},
	}
	cs := connect(t, tg.srv.URL+"/mcp", token, opts)
	ctx := ctxT(t)
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ListTools(ctx, nil); err != nil { // attaches the session to the server
		t.Fatal(err)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "peer.interact", Meta: mcp.Meta{"progressToken": "p1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, res); got != "sampled=hi elicited=Ada roots-refused=false" {
		t.Errorf("interact = %q", got)
	}
	eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(logs) == 1 && len(progress) == 1
	})
	mu.Lock()
	if !slices.Equal(logs, []string{"peer:peer working"}) || !slices.Equal(progress, []string{"p1"}) {
		t.Errorf("logs %v, progress %v", logs, progress)
	}
	mu.Unlock()

	// A request the server makes when no call is in flight has no agent to go to: refused.
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "peer.later"}); err != nil {
		t.Fatal(err)
	}
	// (No call of ours may be in flight when it asks: that call would be the one to attribute
	// it to. So look only after it has surely asked.)
	var lastErr string
	for range 10 {
		time.Sleep(500 * time.Millisecond)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "peer.last-error"})
		if err == nil {
			lastErr = textOf(res)
		}
		if lastErr != "" {
			break
		}
	}
	if !strings.Contains(lastErr, "only during exactly one agent call") {
		t.Errorf("sampling outside a call: %q, want it refused", lastErr)
	}
	mu.Lock()
	if sampled != 1 {
		t.Errorf("the agent was asked to sample %d times, want 1", sampled)
	}
	mu.Unlock()
}

func TestSharedStdioRefusesAmbiguousRequests(t *testing.T) {
	tg := newPeerGateway(t)
	aliceToken, _ := tg.p.addAgent("alice")
	bobToken, _ := tg.p.addAgent("bob")
	var asked sync.Map
	handler := func(name string) *mcp.ClientOptions {
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		return &mcp.ClientOptions{CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			asked.Store(name, true)
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: name}}, nil
		}}
	}
	alice := connect(t, tg.srv.URL+"/mcp/peer", aliceToken, handler("alice"))
	bob := connect(t, tg.srv.URL+"/mcp/peer", bobToken, handler("bob"))
	ctx := ctxT(t)

	// Bob's call is in flight when the server asks for sampling during Alice's: it cannot tell
	// whose model to use, so warden refuses rather than guess.
	bobDone := make(chan error, 1)
	go func() {
		_, err := bob.CallTool(ctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 2500}})
		bobDone <- err
	}()
	tg.g.mu.Lock()
	st := tg.g.stdio["peer"]
	tg.g.mu.Unlock()
	eventually(t, func() bool {
		st.mu.Lock()
		up := st.up
		st.mu.Unlock()
		if up == nil {
			return false
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		return len(up.flights) == 1
	})
	res, err := alice.CallTool(ctx, &mcp.CallToolParams{Name: "sample-after", Arguments: map[string]any{"ms": 300}})
	if err != nil {
		t.Fatal(err)
	}
	if got := text(t, res); !strings.HasPrefix(got, "refused:") {
		t.Errorf("sampling with two calls in flight: %q, want refused", got)
	}
	if err := <-bobDone; err != nil {
		t.Fatal(err)
	}
	// Alone, the same call is attributed to Alice, and only Alice is asked.
	res, err = alice.CallTool(ctx, &mcp.CallToolParams{Name: "sample-after", Arguments: map[string]any{"ms": 0}})
	if err != nil || text(t, res) != "sampled: alice" {
		t.Errorf("sampling alone: %+v, %v", res, err)
	}
	if _, ok := asked.Load("bob"); ok {
		t.Error("bob's client was asked to sample for alice's call")
	}
}

func TestListChangedAndResourceUpdatesAreRelayed(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("alice")
	changed := make(chan string, 4)
	updated := make(chan string, 4)
	cs := connect(t, tg.srv.URL+"/mcp", token, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- "tools" },
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	ctx := ctxT(t)
	if err := cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "up+test://doc"}); err != nil {
		t.Fatal(err)
	}
	if r := tg.p.records("up", "resources/subscribe"); len(r) != 1 || r[0].call.Resource != "test://doc" {
		t.Errorf("subscribe decisions = %+v", r)
	}
	up.server.AddTool(&mcp.Tool{Name: "new", InputSchema: map[string]any{"type": "object"}}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{}, nil
	})
	if err := up.server.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "test://doc"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		ch   chan string
		want string
	}{{changed, "tools"}, {updated, "up+test://doc"}} {
		select {
		case got := <-want.ch:
			if got != want.want {
				t.Errorf("got %q, want %q", got, want.want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("no %s notification", want.want)
		}
	}
	if err := cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "up+test://doc"}); err != nil {
		t.Fatal(err)
	}
}

// TestNotificationsPrecedeTheResponse reads a tools/call's SSE stream as sent: what the upstream
// said during the call arrives, and before the call's result.
func TestNotificationsPrecedeTheResponse(t *testing.T) {
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp/up", token, nil)
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	if err := cs.SetLoggingLevel(ctxT(t), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		body := `{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"chatty","arguments":{},"_meta":{"progressToken":"raw"}}}`
		req, _ := http.NewRequest("POST", tg.srv.URL+"/mcp/up", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", cs.ID())
		req.Header.Set("Mcp-Protocol-Version", cs.InitializeResult().ProtocolVersion)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		all, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var events []string
		for _, line := range strings.Split(string(all), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var m struct{ Method string }
				_ = json.Unmarshal([]byte(data), &m)
				if m.Method == "" {
					m.Method = "response"
				}
				events = append(events, m.Method)
			}
		}
		want := []string{"notifications/progress", "notifications/message", "notifications/progress", "notifications/message",
			"notifications/progress", "notifications/message", "response"}
		if !slices.Equal(events, want) {
			t.Fatalf("events on the call's stream = %v, want %v", events, want)
		}
	}
}

// A local server that stops is restarted after a backoff on the server's clock: minBackoff,
// doubling while it keeps stopping, back to minBackoff once it ran for stableRun. A fake clock
// shows each wait armed and released exactly at its length; nothing sleeps.
func TestStdioRestartBackoffOnTheClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tg := newTestGatewayWith(t, Options{Clock: clk}, peerTool(t))
	tg.p.env["peer-switch"] = "1"
	tg.p.env["peer-token"] = "peer-secret-value"
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp", token, nil)
	call := func() {
		t.Helper()
		res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "peer.whoami"})
		if err != nil || res.IsError {
			t.Fatalf("whoami: %+v, %v", res, err)
		}
	}
	// stopServer kills the running server and waits until its restart waits on the clock.
	stopServer := func() {
		t.Helper()
		tg.g.mu.Lock()
		st := tg.g.stdio["peer"]
		tg.g.mu.Unlock()
		st.mu.Lock()
		up := st.up
		st.mu.Unlock()
		if up == nil || up.proc == nil {
			t.Fatal("the local server is not running")
		}
		_ = up.proc.Process.Kill()
		if err := clk.WaitForTimers(1); err != nil {
			t.Fatal(err)
		}
	}
	// waitsFor checks that the restart is released by advancing exactly d, not a moment less.
	waitsFor := func(d time.Duration) {
		t.Helper()
		clk.Advance(d - time.Millisecond)
		if n := clk.Timers(); n != 1 {
			t.Fatalf("the restart was released %v early (%d timers armed)", time.Millisecond, n)
		}
		clk.Advance(time.Millisecond)
		if n := clk.Timers(); n != 0 {
			t.Fatalf("the restart still waits after %v (%d timers armed)", d, n)
		}
		call() // the restarted server answers
	}

	call()
	stopServer()
	waitsFor(minBackoff)
	stopServer() // at once again: the backoff doubles
	waitsFor(2 * minBackoff)
	clk.Advance(stableRun + time.Second) // a run this long resets it
	stopServer()
	waitsFor(minBackoff)
}
