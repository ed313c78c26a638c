package mcpgw

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/sandbox"
)

// The test binary is also the sandbox's init (re-executed by sandbox.Start) and, with
// MCPGW_SANDBOX_PEER=1 — one of the tool's secret variables — the local MCP server inside it.
// Both are decided here, before TestMain, so that neither runs the tests.
func init() {
	sandbox.MaybeInit()
	if os.Getenv("MCPGW_SANDBOX_PEER") == "1" {
		if err := runSandboxPeer(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// runSandboxPeer serves tools that try what a sandboxed server must not do.
func runSandboxPeer() error {
	s := mcp.NewServer(&mcp.Implementation{Name: "sandbox-peer", Version: "1"}, nil)
	reply := func(format string, args ...any) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprintf(format, args...)}}}
	}
	type in struct {
		Arg string `json:"arg"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, any) (*mcp.CallToolResult, any, error) {
		wd, _ := os.Getwd()
		data, _ := json.Marshal(map[string]any{"env": os.Environ(), "wd": wd})
		return reply("%s", data), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "read"}, func(_ context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
		b, err := os.ReadFile(a.Arg)
		if err != nil {
			return reply("error: %v", err), nil, nil
		}
		return reply("read: %s", b), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "write"}, func(_ context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
		if err := os.WriteFile(a.Arg, []byte("kept"), 0o600); err != nil {
			return reply("error: %v", err), nil, nil
		}
		return reply("written"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "dial"}, func(_ context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
		c, err := net.DialTimeout("tcp", a.Arg, 2*time.Second)
		if err != nil {
			return reply("error: %v", err), nil, nil
		}
		c.Close()
		return reply("connected"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "fetch"}, func(ctx context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
		hc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}, Timeout: 5 * time.Second}
		resp, err := hc.Get(a.Arg)
		if err != nil {
			return reply("error: %v", err), nil, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return reply("%d %s", resp.StatusCode, strings.TrimSpace(string(b))), nil, nil
	})
	// hang marks its start with the file it is given, then never answers.
	mcp.AddTool(s, &mcp.Tool{Name: "hang"}, func(ctx context.Context, _ *mcp.CallToolRequest, a in) (*mcp.CallToolResult, any, error) {
		if err := os.WriteFile(a.Arg, []byte("started"), 0o600); err != nil {
			return reply("error: %v", err), nil, nil
		}
		<-ctx.Done()
		return nil, nil, ctx.Err()
	})
	return s.Run(context.Background(), &mcp.StdioTransport{})
}

// auditRecorder keeps the events a sandbox's egress proxy records.
type auditRecorder struct {
	mu     sync.Mutex
	events []*warden.AuditEvent
}

func (a *auditRecorder) Append(_ context.Context, ev *warden.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	return nil
}

func (a *auditRecorder) list() []*warden.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.events)
}

// fixedResolver answers every name with one address.
type fixedResolver netip.Addr

func (r fixedResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.Addr(r)}, nil
}

type sandboxFixture struct {
	tg    *testGateway
	dir   string // the workspaces' directory
	audit *auditRecorder
	token string
}

// newSandboxGateway is a gateway whose local servers run in the sandbox, with the tools given
// (the test binary as sandbox peer). reachable is exempted from the egress proxy's refused
// ranges: the test's upstream lives on loopback.
func newSandboxGateway(t *testing.T, reachable netip.AddrPort, tools ...*warden.Tool) *sandboxFixture {
	t.Helper()
	return newSandboxGatewayOn(t, nil, reachable, tools...)
}

// newSandboxGatewayOn is newSandboxGateway on the clock clk (nil: the real clock).
func newSandboxGatewayOn(t *testing.T, clk clock.Clock, reachable netip.AddrPort, tools ...*warden.Tool) *sandboxFixture {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("warden's sandbox is Linux only")
	}
	dir := filepath.Join(t.TempDir(), "mcp")
	rec := &auditRecorder{}
	p := newFakePipeline(tools...)
	p.env["sandbox-peer"] = "1"
	p.env["peer-token"] = "peer-secret-value"
	g := New(p, testLog(), Options{Issuer: "https://issuer.example", SessionIdle: -1, Clock: clk, Sandbox: SandboxOptions{
		Mode: SandboxRequired, Dir: dir, Audit: rec,
		Proxy: func() *egress.Proxy {
			return &egress.Proxy{Reachable: []netip.AddrPort{reachable}, Resolver: fixedResolver(reachable.Addr())}
		},
	}})
	mux := http.NewServeMux()
	mux.Handle("/mcp", g.Handler())
	mux.Handle("/mcp/", g.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = g.Close()
		srv.Close()
	})
	token, _ := p.addAgent("alice")
	return &sandboxFixture{tg: &testGateway{g: g, p: p, srv: srv}, dir: dir, audit: rec, token: token}
}

func sandboxPeer(t *testing.T, name string, sb *warden.ToolSandbox) *warden.Tool {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &warden.Tool{
		Name: name, Kind: warden.ToolMCPCommand, Risk: warden.RiskLow, Command: []string{exe}, Sandbox: sb,
		SecretEnv: map[string]string{"MCPGW_SANDBOX_PEER": "sandbox-peer", "PEER_TOKEN": "peer-token"},
	}
}

func call(t *testing.T, cs *mcp.ClientSession, name, arg string) string {
	t.Helper()
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"arg": arg}})
	if err != nil {
		t.Fatalf("%s(%s): %v", name, arg, err)
	}
	if res.IsError {
		t.Fatalf("%s(%s): %s", name, arg, text(t, res))
	}
	return text(t, res)
}

func TestSandboxedLocalServer(t *testing.T) {
	t.Setenv("WARDEN_CANARY", "warden's own environment")
	// What the server must not reach: a file outside its workspace and a listener on the
	// host's loopback. Both work from outside.
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canary, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if c, err := net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatalf("control: the host's listener is unreachable from outside: %v", err)
	} else {
		c.Close()
	}

	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) // times the restart below
	f := newSandboxGatewayOn(t, clk, netip.AddrPort{}, sandboxPeer(t, "boxed", nil))
	cs := connect(t, f.tg.srv.URL+"/mcp/boxed", f.token, nil)

	var who struct {
		Env []string
		WD  string
	}
	if err := json.Unmarshal([]byte(call(t, cs, "whoami", "")), &who); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range who.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range env {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"HOME", "MCPGW_SANDBOX_PEER", "PATH", "PEER_TOKEN", "TMPDIR"}; !slices.Equal(keys, want) {
		t.Errorf("environment = %v, want exactly %v", keys, want)
	}
	ws := filepath.Join(f.dir, "boxed")
	if env["HOME"] != ws || who.WD != ws || env["PEER_TOKEN"] != "peer-secret-value" {
		t.Errorf("HOME %q, working directory %q, PEER_TOKEN %q: want the workspace %s and the tool's secret", env["HOME"], who.WD, env["PEER_TOKEN"], ws)
	}
	if fi, err := os.Stat(ws); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("workspace %s: %v, %v; want mode 0700", ws, fi, err)
	}

	got := call(t, cs, "read", canary)
	t.Logf("reading %s inside: %s", canary, got)
	if !strings.HasPrefix(got, "error:") {
		t.Errorf("the server read a file outside its workspace: %s", got)
	}
	if got := call(t, cs, "read", fmt.Sprintf("/proc/%d/environ", os.Getpid())); strings.Contains(got, "WARDEN_CANARY") {
		t.Errorf("the server read warden's environment through /proc: %s", got)
	}
	got = call(t, cs, "dial", ln.Addr().String())
	t.Logf("dialing %s inside: %s", ln.Addr(), got)
	if !strings.HasPrefix(got, "error:") {
		t.Errorf("the server reached the host's loopback: %s", got)
	}
	if got := call(t, cs, "write", filepath.Join(ws, "cache")); got != "written" {
		t.Fatalf("writing in the workspace: %s", got)
	}

	// Killed, it comes back in a new sandbox over the same workspace.
	box := runningBox(t, f.tg.g, "boxed")
	if n := box.sb.Kill(); n < 2 {
		t.Errorf("Kill ended %d processes, want the init and the server", n)
	}
	waitRestartArmed(t, f.tg.g, "boxed", clk)
	clk.Advance(minBackoff)
	// The call waits for the restarted server (stdioServer.get).
	if got = call(t, cs, "read", filepath.Join(ws, "cache")); got != "read: kept" {
		t.Fatalf("after a restart the workspace's file reads %q", got)
	}
	_ = f.tg.g.Close()
	if _, err := os.Stat(ws); err != nil {
		t.Errorf("the workspace did not survive the server's stop: %v", err)
	}
}

func TestSandboxedLocalServerEgress(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	}))
	defer upstream.Close()
	addr := netip.MustParseAddrPort(upstream.Listener.Addr().String())
	allowed := fmt.Sprintf("allowed.test:%d", addr.Port())
	f := newSandboxGateway(t, addr, sandboxPeer(t, "netbox", &warden.ToolSandbox{AllowHosts: []string{allowed}}))
	cs := connect(t, f.tg.srv.URL+"/mcp/netbox", f.token, nil)

	if got := call(t, cs, "fetch", "http://"+allowed+"/"); got != "200 hello from "+allowed {
		t.Errorf("fetching an allowed host through the proxy: %s", got)
	}
	if got := call(t, cs, "fetch", fmt.Sprintf("http://denied.test:%d/", addr.Port())); !strings.HasPrefix(got, "403") {
		t.Errorf("fetching a host the tool was not given: %s", got)
	}
	// Around the proxy there is no way out.
	if got := call(t, cs, "dial", upstream.Listener.Addr().String()); !strings.HasPrefix(got, "error:") {
		t.Errorf("the server reached the host directly: %s", got)
	}
	// The outcome is recorded once the proxy's connection ends.
	eventually(t, func() bool { return len(f.audit.list()) >= 3 })
	var calls, denials, results int
	for _, ev := range f.audit.list() {
		if ev.Actor.Kind != warden.ActorSystem || ev.Actor.Name != "tool:netbox" || ev.Target.Tool != "egress" {
			t.Errorf("egress event %+v: want actor system tool:netbox on tool egress", ev)
		}
		switch {
		case ev.Type == warden.EventToolCall && ev.Decision.Effect == warden.EffectAllow:
			calls++
			if ev.Target.Resource != allowed {
				t.Errorf("allowed a connection to %s, want only %s", ev.Target.Resource, allowed)
			}
		case ev.Type == warden.EventToolCall && ev.Decision.Effect == warden.EffectDeny:
			denials++
			if !strings.HasPrefix(ev.Target.Resource, "denied.test:") || ev.Decision.Reason != "not_in_allow_host" {
				t.Errorf("denial %+v: want denied.test, not_in_allow_host", ev)
			}
		case ev.Type == warden.EventToolResult:
			results++
		}
	}
	if calls != 1 || denials != 1 || results != 1 {
		t.Errorf("audit: %d allowed, %d denied and %d outcomes, want one each", calls, denials, results)
	}
}

// TestSandboxedNodeServer runs a Node.js server from the repository's node_modules through its
// .bin symlink: the sandbox must see the package it resolves into, and nothing else of the repo.
func TestSandboxedNodeServer(t *testing.T) {
	dir := nodePeers(t)
	tool := &warden.Tool{
		Name: "everything", Kind: warden.ToolMCPCommand, Risk: warden.RiskLow,
		Command: []string{filepath.Join(dir, "node_modules", ".bin", "mcp-server-everything"), "stdio"},
	}
	f := newSandboxGateway(t, netip.AddrPort{}, tool)
	cs := connect(t, f.tg.srv.URL+"/mcp/everything", f.token, nil)
	res, err := cs.CallTool(ctxT(t), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello from the sandbox"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || !strings.Contains(text(t, res), "hello from the sandbox") {
		t.Errorf("echo = %q", text(t, res))
	}
	runningBox(t, f.tg.g, "everything")
}

// runningBox returns the sandbox the local server of tool runs in, failing the test if it runs
// in none.
// waitRestartArmed waits until the local server tool has stopped and its restart waits on clk:
// no server published, then one timer armed (the backoff; the stopped sandbox's grace timer is
// gone before the server is unpublished).
func waitRestartArmed(t *testing.T, g *Server, tool string, clk *clock.Fake) {
	t.Helper()
	g.mu.Lock()
	st := g.stdio[tool]
	g.mu.Unlock()
	for {
		st.mu.Lock()
		up, changed := st.up, st.changed
		st.mu.Unlock()
		if up == nil {
			break
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("the local server %s still runs", tool)
		}
	}
	if err := clk.WaitForTimers(1); err != nil {
		t.Fatal(err)
	}
}

func runningBox(t *testing.T, g *Server, tool string) *boxedServer {
	t.Helper()
	g.mu.Lock()
	st := g.stdio[tool]
	g.mu.Unlock()
	if st == nil {
		t.Fatalf("no local server %s", tool)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.box == nil {
		t.Fatalf("the server %s does not run in a sandbox", tool)
	}
	return st.box
}

func TestReadOnlyPaths(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "node_modules", "pkg", "dist")
	bin := filepath.Join(dir, "node_modules", ".bin")
	extra := filepath.Join(dir, "extra")
	for _, d := range []string{pkg, bin, extra} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(pkg, "cli.js"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../pkg/dist/cli.js", filepath.Join(bin, "pkg")); err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(dir, "ws")
	tool := &warden.Tool{Sandbox: &warden.ToolSandbox{ReadOnly: []string{extra, "/usr/share", ws + "/x"}}}
	got := readOnlyPaths(filepath.Join(bin, "pkg"), []string{"--flag", "/etc/passwd"}, tool, ws)
	want := []string{bin, filepath.Join(dir, "node_modules"), pkg, extra}
	if !slices.Equal(got, want) {
		t.Errorf("read-only paths = %v, want %v", got, want)
	}
	got = readOnlyPaths("/usr/bin/node", []string{filepath.Join(pkg, "cli.js")}, &warden.Tool{}, ws)
	if want := []string{pkg, filepath.Join(dir, "node_modules")}; !slices.Equal(got, want) {
		t.Errorf("read-only paths of node SCRIPT = %v, want %v", got, want)
	}
}
