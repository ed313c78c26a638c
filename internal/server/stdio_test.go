package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/cli"
)

// stdioUpstream is an MCP server built with the official Go SDK behind warden: a plain tool, a
// tool that asks the client for sampling, elicitation and roots during the call with progress
// and logging, and a tool that waits until it is cancelled.
type stdioUpstream struct {
	url       string
	server    *mcp.Server
	started   chan struct{}
	cancelled chan struct{}
}

func newStdioUpstream(t *testing.T) *stdioUpstream {
	u := &stdioUpstream{started: make(chan struct{}, 4), cancelled: make(chan struct{}, 4)}
	s := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	type echoArgs struct {
		Message string `json:"message"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "echo: " + in.Message}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_everything", Description: "not granted"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "interact", Description: "asks the client during the call"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
		}
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
		el, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: "your name?", RequestedSchema: map[string]any{
			"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}},
		}})
		if err != nil {
			return nil, nil, fmt.Errorf("elicitation: %w", err)
		}
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		roots, err := req.Session.ListRoots(ctx, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("roots: %w", err)
		}
		text := fmt.Sprintf("sampled=%s elicited=%v roots=%d", msg.Content.(*mcp.TextContent).Text, el.Content["name"], len(roots.Roots))
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "waits until cancelled"}, func(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		u.started <- struct{}{}
		select {
		case <-ctx.Done():
			u.cancelled <- struct{}{}
			return nil, nil, ctx.Err()
		case <-time.After(30 * time.Second):
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		}
	})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	u.url, u.server = ts.URL, s
	return u
}

// stdioSetup applies an agent notes-bot granted echo, interact and slow of the upstream's tool
// notes, and returns its client credentials.
func stdioSetup(t *testing.T, in *instance, up *stdioUpstream) (id, secret string) {
	t.Helper()
	doc := `
agents:
  - name: notes-bot
    owner: bob@example.com
    purpose: Take notes
tools:
  - name: notes
    mcp: ` + up.url + `
    risk: low
grants:
  - agent: notes-bot
    tool: notes
    actions: [echo, interact, slow]
`
	plan := in.apply(doc)
	c := plan.Credentials["notes-bot"]
	return c.ClientID, c.ClientSecret
}

// stdioRun is `warden connect --stdio` running in this process on pipes, as a desktop client
// runs it: the client writes its stdin and reads its stdout.
type stdioRun struct {
	stdin  *io.PipeWriter // the client's end of connect's stdin
	stdout *io.PipeReader // the client's end of connect's stdout
	out    *syncBuffer    // everything connect wrote to stdout
	stderr *syncBuffer
	done   chan error // connect's result
}

func startStdio(t *testing.T, addr, id, secret string, args ...string) *stdioRun {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	r := &stdioRun{stdin: inW, stdout: outR, out: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	env := cli.Env{Stdin: inR, Stdout: io.MultiWriter(outW, r.out), Stderr: r.stderr, Getenv: func(k string) string {
		switch k {
		case "WARDEN_ADDR":
			return addr
		case "WARDEN_CLIENT_ID":
			return id
		case "WARDEN_CLIENT_SECRET":
			return secret
		}
		return ""
	}}
	go func() {
		err := cli.Run(context.Background(), append([]string{"connect", "--stdio", "--log-level", "debug"}, args...), env)
		_ = outW.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		_ = inW.Close()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("connect --stdio did not end after its stdin closed")
		}
	})
	return r
}

// wait returns connect's result, failing the test when it does not end within 10 s.
func (r *stdioRun) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("connect --stdio did not end; stderr:\n%s", r.stderr)
		return nil
	}
}

// onlyJSONRPC fails unless every line connect wrote to stdout is one JSON-RPC message.
func (r *stdioRun) onlyJSONRPC(t *testing.T) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader([]byte(r.out.String())))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if _, err := jsonrpc.DecodeMessage(sc.Bytes()); err != nil {
			t.Errorf("stdout line %d is not a JSON-RPC message: %q", lines, sc.Text())
		}
	}
	if lines == 0 {
		t.Error("nothing on stdout")
	}
}

// stdioClient connects an SDK client to r, answering sampling, elicitation and roots, and
// recording the progress and log notifications it gets.
type stdioClient struct {
	cs       *mcp.ClientSession
	mu       sync.Mutex
	progress []string
	logs     []string
	sampled  int
	elicited int
	changed  chan struct{} // told of notifications/tools/list_changed
}

func connectStdioClient(t *testing.T, r *stdioRun) *stdioClient {
	t.Helper()
	c := &stdioClient{changed: make(chan struct{}, 4)}
	client := mcp.NewClient(&mcp.Implementation{Name: "desktop", Version: "1"}, &mcp.ClientOptions{
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			c.mu.Lock()
			c.sampled++
			c.mu.Unlock()
			//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "hi from the client"}}, nil
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			c.mu.Lock()
			c.elicited++
			c.mu.Unlock()
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": "Ada"}}, nil
		},
		//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
		LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			c.mu.Lock()
			c.logs = append(c.logs, fmt.Sprintf("%s:%v", req.Params.Logger, req.Params.Data))
			c.mu.Unlock()
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			c.changed <- struct{}{}
		},
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			c.mu.Lock()
			c.progress = append(c.progress, fmt.Sprintf("%v:%v", req.Params.ProgressToken, req.Params.Progress))
			c.mu.Unlock()
		},
	})
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	client.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.IOTransport{Reader: r.stdout, Writer: r.stdin}, nil)
	if err != nil {
		t.Fatalf("initialize through connect --stdio: %v; stderr:\n%s", err, r.stderr)
	}
	c.cs = cs
	return c
}

// TestConnectStdio drives `warden connect --stdio` with the Go SDK's client over pipes, as a
// desktop client does, against a real warden and a real SDK upstream: initialize, tools/list,
// a call, a denial, the upstream's sampling, elicitation and roots requests answered by the
// client, progress and logging notifications, cancellation reaching the upstream, a token
// that died early replaced, and the end of stdin ending the session at warden (DELETE).
// Nothing but JSON-RPC reaches stdout.
func TestConnectStdio(t *testing.T) {
	t.Parallel()
	up := newStdioUpstream(t)
	in := start(t, t.TempDir(), nil)
	id, secret := stdioSetup(t, in, up)
	// connect reaches warden through a proxy that notes the agent's last token.
	var mu sync.Mutex
	var lastToken string
	var deleted []string  // the sessions connect ended
	var versions []string // MCP-Protocol-Version of each request in the session
	target, _ := url.Parse(in.url)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			lastToken = tok
		}
		if r.Method == http.MethodDelete {
			deleted = append(deleted, r.Header.Get("Mcp-Session-Id"))
		}
		if r.Header.Get("Mcp-Session-Id") != "" {
			versions = append(versions, r.Header.Get("Mcp-Protocol-Version"))
		}
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close) // after connect's end (cleanups run last first)
	run := startStdio(t, proxy.URL, id, secret, "--agent", "notes-bot")
	c := connectStdioClient(t, run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tools, err := c.cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"notes.echo", "notes.interact", "notes.slow"}) {
		t.Fatalf("tools/list = %v", names)
	}
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("granted call: %v %+v", err, res)
	}
	res, err = c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.delete_everything", Arguments: map[string]any{}})
	if err != nil || !res.IsError || !strings.Contains(resultText(res), "decision dec_") {
		t.Fatalf("denied call: %v %+v", err, res)
	}

	// The upstream asks the client during the call; the client answers through the relay.
	//lint:ignore SA1019 the test drives what warden relays for clients on protocol versions before 2026-07-28 (SEP-2577)
	if err := c.cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "debug"}); err != nil {
		t.Fatal(err)
	}
	res, err = c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.interact", Arguments: map[string]any{}, Meta: mcp.Meta{"progressToken": "p-7"}})
	if err != nil || res.IsError || resultText(res) != "sampled=hi from the client elicited=Ada roots=1" {
		t.Fatalf("interact: %v %+v", err, res)
	}
	eventuallyTrue(t, "the progress and log notifications", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.progress) == 1 && len(c.logs) == 1
	})
	c.mu.Lock()
	if c.sampled != 1 || c.elicited != 1 || c.progress[0] != "p-7:1" || c.logs[0] != "notes.interact:working" {
		t.Errorf("sampled %d, elicited %d, progress %v, logs %v", c.sampled, c.elicited, c.progress, c.logs)
	}
	c.mu.Unlock()

	// A notification outside any call comes on the session's standalone stream.
	mcp.AddTool(up.server, &mcp.Tool{Name: "new_tool", Description: "added later"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{}, nil, nil
	})
	select {
	case <-c.changed:
	case <-time.After(10 * time.Second):
		t.Fatalf("notifications/tools/list_changed did not reach the client; stderr:\n%s", run.stderr)
	}

	// Cancellation: the client gives up on a call; the upstream's handler sees it.
	cctx, ccancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := c.cs.CallTool(cctx, &mcp.CallToolParams{Name: "notes.slow", Arguments: map[string]any{}})
		errc <- err
	}()
	select {
	case <-up.started:
	case <-ctx.Done():
		t.Fatal("the slow call never started")
	}
	ccancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled call succeeded")
	}
	select {
	case <-up.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("notifications/cancelled did not reach the upstream through warden")
	}

	// The token connect holds is revoked: warden answers 401, connect fetches a new token and
	// the call goes through.
	mu.Lock()
	tok := lastToken
	mu.Unlock()
	if r := in.do("POST", "/oauth2/revoke", withHeader(formCT, "Authorization", "Bearer "+in.admin), form("token", tok)); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := in.self(tok); r.status != 401 {
		t.Fatalf("a revoked token: %d", r.status)
	}
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
	defer tcancel()
	res, err = c.cs.CallTool(tctx, &mcp.CallToolParams{Name: "notes.echo", Arguments: map[string]any{"message": "later"}})
	if err != nil || res.IsError || resultText(res) != "echo: later" {
		t.Fatalf("after the token expired: %v %+v; stderr:\n%s", err, res, run.stderr)
	}

	// EOF on stdin: connect ends the session at warden (DELETE) and exits 0.
	_ = run.stdin.Close()
	if err := run.wait(t); err != nil {
		t.Fatalf("connect after EOF: %v", err)
	}
	mu.Lock()
	if len(deleted) != 1 || deleted[0] == "" {
		t.Errorf("DELETEs %q, want one naming the session", deleted)
	}
	// Every request after initialize names the negotiated version, as the transport requires.
	if v := c.cs.InitializeResult().ProtocolVersion; len(versions) < 5 || slices.ContainsFunc(versions, func(got string) bool { return got != v }) {
		t.Errorf("MCP-Protocol-Version of the session's requests: %q, want %q on each", versions, v)
	}
	mu.Unlock()
	run.onlyJSONRPC(t)
}

// TestConnectStdioKilled: when the agent is killed mid-session, its pending call ends with an
// error, the next request gets a JSON-RPC error naming the agent and the kill, and connect
// ends with that error (a non-zero exit).
func TestConnectStdioKilled(t *testing.T) {
	t.Parallel()
	up := newStdioUpstream(t)
	in := start(t, t.TempDir(), nil)
	id, secret := stdioSetup(t, in, up)
	run := startStdio(t, in.url, id, secret)
	c := connectStdioClient(t, run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type result struct {
		res *mcp.CallToolResult
		err error
	}
	pending := make(chan result, 1)
	go func() {
		res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.slow", Arguments: map[string]any{}})
		pending <- result{res, err}
	}()
	select {
	case <-up.started:
	case <-ctx.Done():
		t.Fatal("the slow call never started")
	}
	if _, err := in.cli(in.admin, "kill", "notes-bot", "--reason", "leaked its key"); err != nil {
		t.Fatal(err)
	}
	// Warden ends the call itself (a tool error) or connect does (a JSON-RPC error).
	// Either way the answer says the agent was killed, not only that the call was cancelled.
	switch p := <-pending; {
	case p.err == nil && !p.res.IsError:
		t.Fatalf("the pending call of a killed agent succeeded: %+v", p.res)
	case p.err == nil && !strings.Contains(resultText(p.res), "killed"):
		t.Fatalf("the pending call's answer does not say the agent was killed: %s", resultText(p.res))
	case p.err != nil && !strings.Contains(p.err.Error(), "killed"):
		t.Fatalf("the pending call's error does not say the agent was killed: %v", p.err)
	}
	_, err := c.cs.ListTools(ctx, nil)
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Message != "agent notes-bot may no longer act: agent is killed (warden refused a token: invalid_client: invalid client credentials)" {
		t.Fatalf("a request after the kill: %v, want a JSON-RPC error naming the agent and the kill", err)
	}
	err = run.wait(t)
	if err == nil || cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(cli.ErrorLine(err), "agent is killed") {
		t.Fatalf("connect after the kill: %v (exit %d), want exit 3 saying why", err, cli.ExitCode(err))
	}
	run.onlyJSONRPC(t)
}

// TestConnectStdioRefusals: connect --stdio stops before reading stdin, with the reason on
// stderr (the error) and nothing on stdout, when warden is unreachable, when the credentials
// file is readable by others, and when the credentials are wrong.
func TestConnectStdioRefusals(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	c := createAgent(t, in, "bot")
	dir := t.TempDir()
	open := filepath.Join(dir, "open.json")
	if err := os.WriteFile(open, []byte(`{"client_id":"`+c.ClientID+`","client_secret":"`+c.ClientSecret+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln := httptest.NewServer(http.NotFoundHandler())
	closed := ln.URL
	ln.Close()

	for _, tc := range []struct {
		name, addr, id, secret string
		args                   []string
		want                   string
		code                   int
	}{
		{"unreachable", closed, c.ClientID, c.ClientSecret, nil, "cannot reach warden", cli.ExitUnavailable},
		{"open credentials file", in.url, "", "", []string{"--credentials", open}, "chmod 600", cli.ExitUsage},
		{"wrong secret", in.url, c.ClientID, "nope", nil, "warden refused a token", cli.ExitUnauthorized},
		{"other agent", in.url, c.ClientID, c.ClientSecret, []string{"--agent", "someone-else"}, `not "someone-else"'s`, cli.ExitUsage},
		{"bad tool", in.url, c.ClientID, c.ClientSecret, []string{"--tool", "../admin"}, "--tool", cli.ExitUsage},
		{"listen too", in.url, c.ClientID, c.ClientSecret, []string{"--listen", "127.0.0.1:0"}, "give one", cli.ExitUsage},
		{"log level not one of config's words", in.url, c.ClientID, c.ClientSecret, []string{"--log-level", "WARN+2"}, "--log-level", cli.ExitUsage},
	} {
		var stdout, stderr bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
			switch k {
			case "WARDEN_ADDR":
				return tc.addr
			case "WARDEN_CLIENT_ID":
				return tc.id
			case "WARDEN_CLIENT_SECRET":
				return tc.secret
			}
			return ""
		}}
		err := cli.Run(context.Background(), append([]string{"connect", "--stdio"}, tc.args...), env)
		if err == nil || !strings.Contains(cli.ErrorLine(err), tc.want) || cli.ExitCode(err) != tc.code {
			t.Errorf("%s: %v (exit %d), want %q and exit %d", tc.name, err, cli.ExitCode(err), tc.want, tc.code)
		}
		if stdout.Len() != 0 {
			t.Errorf("%s: stdout %q, want nothing", tc.name, stdout.String())
		}
	}
}

// TestConnectStdioOneTool: with --tool, connect relays to /mcp/<tool>, the tool's server with
// its own names.
func TestConnectStdioOneTool(t *testing.T) {
	t.Parallel()
	up := newStdioUpstream(t)
	in := start(t, t.TempDir(), nil)
	id, secret := stdioSetup(t, in, up)
	run := startStdio(t, in.url, id, secret, "--tool", "notes")
	c := connectStdioClient(t, run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if name := c.cs.InitializeResult().ServerInfo.Name; name != "notes" {
		t.Errorf("server %q, want the upstream's own", name)
	}
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "one"}})
	if err != nil || res.IsError || resultText(res) != "echo: one" {
		t.Fatalf("call through /mcp/notes: %v %+v", err, res)
	}
}

// TestConnectStdioScripted: a client that writes its messages at once and closes stdin (a
// script: printf … | warden connect --stdio) gets every answer, in order of the lifecycle —
// nothing is sent before initialize is answered, and the answers to the calls in flight at EOF
// still reach stdout before connect ends the session and exits 0 (fails when EOF ends the relay
// at once, or when tools/list may overtake initialize).
func TestConnectStdioScripted(t *testing.T) {
	t.Parallel()
	up := newStdioUpstream(t)
	in := start(t, t.TempDir(), nil)
	id, secret := stdioSetup(t, in, up)
	script := strings.Join([]string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"script","version":"1"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"notes.echo","arguments":{"message":"piped"}}}`,
	}, "\n") + "\n"
	var stdout, stderr syncBuffer
	env := cli.Env{Stdin: strings.NewReader(script), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		return map[string]string{"WARDEN_ADDR": in.url, "WARDEN_CLIENT_ID": id, "WARDEN_CLIENT_SECRET": secret}[k]
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cli.Run(ctx, []string{"connect", "--stdio"}, env); err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	answers := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON-RPC on stdout: %q", line)
		}
		if m.Error != nil {
			t.Fatalf("request %s answered with an error: %s", m.ID, m.Error)
		}
		answers[string(m.ID)] = string(m.Result)
	}
	if !strings.Contains(answers["1"], `"protocolVersion"`) || !strings.Contains(answers["2"], `"notes.echo"`) || !strings.Contains(answers["3"], "echo: piped") {
		t.Fatalf("answers: %v\nstderr:\n%s", answers, stderr.String())
	}
}
