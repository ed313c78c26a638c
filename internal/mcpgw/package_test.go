package mcpgw

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/toolpkg"
)

// pinnedPeer is the sandbox peer with a script argument (which it ignores) and the package
// PinCommand pins, as tool add does.
func pinnedPeer(t *testing.T, f *sandboxFixture, tool *warden.Tool) (script string) {
	t.Helper()
	script = filepath.Join(t.TempDir(), "server.js")
	if err := os.WriteFile(script, []byte("serve()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tool.Command = append(tool.Command, script)
	pkg, err := f.tg.g.PinCommand(tool.Name, tool.Command)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Files) != 2 || pkg.Files[1].Path != script || pkg.Source != warden.PackageCommand {
		t.Fatalf("pinned %+v: want the program and the script", pkg)
	}
	tool.Package = pkg
	return script
}

func callErr(cs *mcp.ClientSession, name, arg string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"arg": arg}})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", errors.New(textOf(res))
	}
	return textOf(res), nil
}

// unavailable reports whether a call failed because its local server is not running: the call
// finds no tool list, or no server, to call.
func unavailable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "could not be listed") || strings.Contains(err.Error(), "unavailable"))
}

func stdioOf(g *Server, tool string) *stdioServer {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stdio[tool]
}

// TestQuarantinedPackageStopsTheServer: a local server in its sandbox runs a pinned package.
// Quarantined, the running server is stopped at once (its sandbox reaped, the call in flight
// ended), and it is not started again, by a call or a listing, until the quarantine is lifted.
func TestQuarantinedPackageStopsTheServer(t *testing.T) {
	tool := sandboxPeer(t, "pinned", nil)
	f := newSandboxGateway(t, netip.AddrPort{}, tool)
	pinnedPeer(t, f, tool)
	g, p := f.tg.g, f.tg.p
	cs := connect(t, f.tg.srv.URL+"/mcp/pinned", f.token, nil)
	if _, err := callErr(cs, "whoami", "", 10*time.Second); err != nil {
		t.Fatalf("the pinned server does not serve: %v", err)
	}

	started := filepath.Join(f.dir, "pinned", "hang-started")
	done := make(chan error, 1)
	go func() {
		_, err := callErr(cs, "hang", started, 30*time.Second)
		done <- err
	}()
	eventually(t, func() bool { _, err := os.Stat(started); return err == nil })
	box := runningBox(t, g, "pinned")

	p.mu.Lock()
	p.quarantined[tool.Package.Digest] = true
	p.mu.Unlock()
	if got := g.StopPackage("sha256:" + strings.Repeat("0", 64)); got != nil {
		t.Errorf("another digest stopped %v", got)
	}
	if got := g.StopPackage(tool.Package.Digest); len(got) != 1 || got[0] != "pinned" {
		t.Fatalf("StopPackage = %v, want [pinned]", got)
	}
	select {
	case <-box.done: // every process of the sandbox is reaped
	default:
		t.Fatal("StopPackage returned with the sandbox still running")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("the call in flight to the stopped server succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight did not end with its server")
	}

	// Neither a call nor a listing starts it again.
	if _, err := callErr(cs, "whoami", "", 10*time.Second); !unavailable(err) {
		t.Errorf("a call to the quarantined server: %v, want it unavailable", err)
	}
	agg := connect(t, f.tg.srv.URL+"/mcp", f.token, nil)
	if res, err := agg.ListTools(ctxT(t), nil); err != nil || len(res.Tools) != 0 {
		t.Errorf("listing with the package quarantined: %v, %v", res, err)
	}
	if st := stdioOf(g, "pinned"); st != nil {
		t.Fatal("a server whose package is quarantined was started again")
	}

	// Lifted, it starts again.
	p.mu.Lock()
	delete(p.quarantined, tool.Package.Digest)
	p.mu.Unlock()
	if _, err := callErr(cs, "whoami", "", 10*time.Second); err != nil {
		t.Fatalf("after the quarantine was lifted: %v", err)
	}

	// Quarantined while it runs, and its process exits before anything stops it: the restart
	// is refused.
	p.mu.Lock()
	p.quarantined[tool.Package.Digest] = true
	p.mu.Unlock()
	st := stdioOf(g, "pinned")
	runningBox(t, g, "pinned").sb.Kill()
	eventually(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		var q errQuarantined
		return errors.As(st.err, &q)
	})
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.up != nil {
		t.Error("the quarantined server was restarted")
	}
}

// TestChangedPackageIsNotStarted: the script a server's command names changes after the tool
// was added. The restart that follows is refused — the agent's call finds the server
// unavailable — and recorded once as tool.package_changed, not at every retry; the file put back,
// the next retry starts it.
func TestChangedPackageIsNotStarted(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	tool := sandboxPeer(t, "pinned", nil)
	f := newSandboxGatewayOn(t, clk, netip.AddrPort{}, tool)
	script := pinnedPeer(t, f, tool)
	g := f.tg.g
	cs := connect(t, f.tg.srv.URL+"/mcp/pinned", f.token, nil)
	if _, err := callErr(cs, "whoami", "", 10*time.Second); err != nil {
		t.Fatalf("the pinned server does not serve: %v", err)
	}

	if err := os.WriteFile(script, []byte("exfiltrate()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runningBox(t, g, "pinned").sb.Kill()
	st := stdioOf(g, "pinned")
	waitRestartArmed(t, g, "pinned", clk)
	for range 3 { // the restart and two retries, all refused
		clk.Advance(maxBackoff)
		eventually(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.err != nil })
		if err := clk.WaitForTimers(1); err != nil {
			t.Fatal(err)
		}
	}
	var changed *toolpkg.ChangedError
	st.mu.Lock()
	err := st.err
	st.mu.Unlock()
	if !errors.As(err, &changed) || changed.Path != script {
		t.Fatalf("start error %v, want the script changed", err)
	}
	if _, err := callErr(cs, "whoami", "", 10*time.Second); !unavailable(err) {
		t.Errorf("a call to the changed server: %v, want it unavailable", err)
	}
	var events []*warden.AuditEvent
	for _, ev := range f.audit.list() {
		if ev.Type == warden.EventToolPackageChanged {
			events = append(events, ev)
		}
	}
	if len(events) != 1 {
		t.Fatalf("%d tool.package_changed events, want one", len(events))
	}
	ev := events[0]
	if ev.Target.Tool != "pinned" || ev.Decision.Reason != warden.ReasonPackageChanged || ev.Decision.Effect != warden.EffectDeny ||
		!strings.Contains(ev.Decision.Message, script) || !strings.Contains(ev.Decision.Message, tool.Package.Digest) {
		t.Errorf("event %+v", ev)
	}

	// The pinned content back: the next retry starts it.
	if err := os.WriteFile(script, []byte("serve()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clk.Advance(maxBackoff)
	eventually(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.up != nil })
	if _, err := callErr(cs, "whoami", "", 10*time.Second); err != nil {
		t.Errorf("with the pinned files back: %v", err)
	}
}

// TestPinCommandResolvesInTheWorkspace: a relative script argument is pinned where the server's
// start finds it, in the tool's workspace; with temporary workspaces nothing relative is a file.
func TestPinCommandResolvesInTheWorkspace(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "notes")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "server.js"), []byte("serve()"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := New(newFakePipeline(), testLog(), Options{CommandPath: "/bin:/usr/bin", Sandbox: SandboxOptions{Mode: SandboxOff, Dir: dir}})
	defer g.Close()
	pkg, err := g.PinCommand("notes", []string{"sh", "server.js"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Files) != 2 || pkg.Files[1].Path != filepath.Join(ws, "server.js") {
		t.Errorf("pinned %+v: want sh and the workspace's server.js", pkg.Files)
	}
	if _, err := g.PinCommand("../escape", []string{"sh"}); err == nil {
		t.Error("a tool name outside the workspaces was pinned")
	}
	temp := New(newFakePipeline(), testLog(), Options{CommandPath: "/bin:/usr/bin", Sandbox: SandboxOptions{Mode: SandboxOff}})
	defer temp.Close()
	if pkg, err := temp.PinCommand("notes", []string{"sh", "server.js"}); err != nil || len(pkg.Files) != 1 {
		t.Errorf("with temporary workspaces: %+v, %v", pkg, err)
	}
}
