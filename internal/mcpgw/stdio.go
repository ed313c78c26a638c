package mcpgw

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
	"github.com/wardenhq/warden/internal/toolpkg"
)

// Restart backoff of a local MCP server that died: doubling from minBackoff to maxBackoff, back
// to minBackoff after a run of stableRun.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
	stableRun  = time.Minute
)

// A stdioServer supervises one local MCP server (kind mcp_command): one process, one client
// session, shared by every downstream session that uses the tool.
type stdioServer struct {
	g      *Server
	tool   *warden.Tool
	home   string // private HOME and working directory of the process (and TMPDIR, unsandboxed)
	temp   bool   // home is removed when the server stops
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	up       *upstream     // the live session; nil while (re)starting
	changed  chan struct{} // closed and replaced whenever up or err changes
	err      error         // why the last start failed; cleared by a good start
	sessions map[*session]bool
	subs     map[string]map[*session]bool // upstream URI → sessions subscribed to it
	levels   map[*session]logLevel
	box      *boxedServer        // the running sandbox; nil unsandboxed or while (re)starting
	level    logLevel            // what the server was last set to
	elicits  map[string]*session // URL elicitation id → the session it was relayed to
	refused  string              // the changed files last recorded (checkPackage), so each change is recorded once
}

// stdioServer returns the supervisor of a local tool, starting it on first use and replacing it
// when the tool's command, package or secret environment changed. A tool whose package is
// quarantined gets none: its server is not started.
func (g *Server) stdioServer(tool *warden.Tool) (*stdioServer, error) {
	if err := g.quarantined(tool); err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errClosed
	}
	if st := g.stdio[tool.Name]; st != nil {
		if slices.Equal(st.tool.Command, tool.Command) && maps.Equal(st.tool.SecretEnv, tool.SecretEnv) &&
			sameSandbox(st.tool.Sandbox, tool.Sandbox) && samePackage(st.tool.Package, tool.Package) {
			return st, nil
		}
		g.goOwnedLocked(st.stop)
	}
	if len(tool.Command) == 0 {
		return nil, fmt.Errorf("tool %s has no command", tool.Name)
	}
	home, temp, err := g.workspace(tool.Name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stdioServer{
		g: g, tool: tool, home: home, temp: temp, cancel: cancel, done: make(chan struct{}),
		changed:  make(chan struct{}),
		sessions: make(map[*session]bool),
		subs:     make(map[string]map[*session]bool),
		levels:   make(map[*session]logLevel),
		elicits:  make(map[string]*session),
	}
	g.stdio[tool.Name] = st
	g.goOwnedLocked(func() { st.run(ctx) })
	return st, nil
}

func (st *stdioServer) run(ctx context.Context) {
	defer close(st.done)
	backoff := minBackoff
	for {
		started := st.g.opts.Clock.Now()
		up, err := st.start(ctx)
		if err == nil {
			st.publish(up, nil)
			st.restore(ctx, up)
			stop := context.AfterFunc(ctx, func() { up.close() })
			_ = up.cs.Wait()
			stop()
			up.close() // reaps the process, or kills and reaps the sandbox
			if up.proc != nil {
				killProcessGroup(up.proc)
			}
			st.publish(nil, nil)
			if clock.Since(st.g.opts.Clock, started) > stableRun {
				backoff = minBackoff
			}
		} else if ctx.Err() == nil {
			st.publish(nil, err)
		}
		if ctx.Err() != nil {
			return
		}
		st.g.log.Warn("local mcp server stopped; restarting", "tool", st.tool.Name, "after", backoff, "err", err)
		wait := st.g.opts.Clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C():
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (st *stdioServer) publish(up *upstream, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.up = up
	if up == nil {
		st.box = nil
	}
	if up != nil || err != nil {
		st.err = err
	}
	close(st.changed)
	st.changed = make(chan struct{})
}

// start runs the command — in a sandbox unless mcp.sandbox is off — with a minimal
// environment: PATH, a private HOME and TMPDIR, and the tool's secrets, never warden's own;
// and connects to it over stdio.
func (st *stdioServer) start(ctx context.Context) (*upstream, error) {
	// A quarantined package is neither installed nor started.
	if err := st.g.quarantined(st.tool); err != nil {
		return nil, err
	}
	// Before the start's timeout: a first install may take longer (the installer bounds it).
	if err := st.preparePackage(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, st.g.opts.UpstreamTimeout)
	defer cancel()
	mode := st.g.opts.Sandbox.Mode
	if mode != SandboxOff && runtime.GOOS != "linux" {
		return nil, errNoSandbox
	}
	if err := st.checkPackage(ctx); err != nil {
		return nil, err
	}
	secrets, err := st.g.p.CommandEnv(ctx, st.tool)
	if err != nil {
		return nil, err
	}
	argv := st.tool.Command
	path, err := toolpkg.LookPath(argv[0], st.g.opts.CommandPath)
	if err != nil {
		return nil, err
	}
	stderr := &stderrLog{log: st.g.log, tool: st.tool.Name, secrets: secretValues(secrets)}

	up := newUpstream(st.g, st.tool)
	up.st = st
	client := mcp.NewClient(&mcp.Implementation{Name: "warden", Version: st.g.opts.Version}, &mcp.ClientOptions{
		Logger: st.g.sdkLog,
		// Roots belong to no one agent here: not declared, though asked during a single call they
		// are relayed like sampling.
		Capabilities:   sharedClientCapabilities(),
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	})
	client.AddReceivingMiddleware(up.receive)
	opts := &mcp.ClientSessionOptions{ProtocolVersion: wire.LatestStatefulVersion}

	if mode != SandboxOff {
		box, err := st.startSandboxed(ctx, path, secrets, stderr)
		if err != nil {
			return nil, err
		}
		cs, err := client.Connect(ctx, orderedTransport{Transport: box.transport(), up: up}, opts)
		if err != nil {
			box.stop(0)
			return nil, err
		}
		up.cs = cs
		st.mu.Lock()
		st.box = box
		st.mu.Unlock()
		st.g.log.Info("local mcp server started in a sandbox", "tool", st.tool.Name, "workspace", st.home)
		return up, nil
	}

	st.g.log.Warn("local mcp server started WITHOUT a sandbox (mcp.sandbox: off): it can reach the network and read what warden can", "tool", st.tool.Name)
	cmd := exec.Command(path, argv[1:]...)
	cmd.Env = append([]string{"PATH=" + st.g.opts.CommandPath, "HOME=" + st.home, "TMPDIR=" + st.home}, secrets...)
	cmd.Dir = st.home
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	transport := orderedTransport{Transport: &mcp.CommandTransport{Command: cmd, TerminateDuration: 2 * time.Second}, up: up}
	cs, err := client.Connect(ctx, transport, opts)
	if err != nil {
		killProcessGroup(cmd)
		return nil, err
	}
	up.cs, up.proc = cs, cmd
	st.g.log.Info("local mcp server started", "tool", st.tool.Name, "pid", cmd.Process.Pid)
	return up, nil
}

// preparePackage installs a pinned npm package that the workspace lacks and checks its entry
// point; a server whose package is not the pinned one does not start.
func (st *stdioServer) preparePackage(ctx context.Context) error {
	if !npmPackage(st.tool) {
		return nil
	}
	if st.g.opts.Packages == nil {
		return fmt.Errorf("tool %s runs an npm package and this server has no installer for it", st.tool.Name)
	}
	return st.g.opts.Packages.Prepare(ctx, st.tool, st.home)
}

func npmPackage(t *warden.Tool) bool {
	return t.Package != nil && t.Package.Source == warden.PackageNPM
}

// restore brings a restarted server back to the state its sessions had set up.
func (st *stdioServer) restore(ctx context.Context, up *upstream) {
	st.mu.Lock()
	uris := slices.Collect(maps.Keys(st.subs))
	level := st.level
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, st.g.opts.UpstreamTimeout)
	defer cancel()
	for _, uri := range uris {
		if err := up.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
			st.g.log.Warn("resubscribing after a restart failed", "tool", st.tool.Name, "err", err)
		}
	}
	if level != "" {
		if err := setUpstreamLevel(ctx, up.cs, nil, level); err != nil {
			st.g.log.Debug("mcp upstream refused logging/setLevel", "tool", st.tool.Name, "err", err)
		}
	}
}

// get returns the live session, waiting while the server (re)starts. While it is backing off
// after a failed start, it fails at once.
func (st *stdioServer) get(ctx context.Context) (*upstream, error) {
	for {
		st.mu.Lock()
		up, err, changed := st.up, st.err, st.changed
		st.mu.Unlock()
		if up != nil {
			return up, nil
		}
		if err != nil {
			return nil, fmt.Errorf("local mcp server %s: %w", st.tool.Name, err)
		}
		select {
		case <-changed:
		case <-st.done:
			return nil, errClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (st *stdioServer) stop() {
	st.cancel()
	<-st.done
	st.removeHome()
}

// kill stops the server at once, with no grace for its process to exit: what a quarantine of
// its package does.
func (st *stdioServer) kill() {
	st.cancel()
	st.mu.Lock()
	box, up := st.box, st.up
	st.mu.Unlock()
	if box != nil {
		box.stop(0)
	}
	if up != nil && up.proc != nil {
		killProcessGroup(up.proc)
	}
	<-st.done
	st.removeHome()
}

func (st *stdioServer) removeHome() {
	if !st.temp {
		return
	}
	if err := os.RemoveAll(st.home); err != nil {
		st.g.log.Warn("removing a local mcp server's home", "tool", st.tool.Name, "err", err)
	}
}

func (st *stdioServer) attach(s *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sessions[s] = true
}

// detach forgets a session that ended, and gives up upstream what only it held.
func (st *stdioServer) detach(s *session) {
	st.mu.Lock()
	delete(st.sessions, s)
	delete(st.levels, s)
	var drop []string
	for uri, subs := range st.subs {
		if subs[s] {
			delete(subs, s)
			if len(subs) == 0 {
				delete(st.subs, uri)
				drop = append(drop, uri)
			}
		}
	}
	for id, x := range st.elicits {
		if x == s {
			delete(st.elicits, id)
		}
	}
	up := st.up
	st.mu.Unlock()
	if up == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, uri := range drop {
		_ = up.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri})
	}
	_ = st.applyLevel(ctx)
}

func (st *stdioServer) sessionList() []*session {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Collect(maps.Keys(st.sessions))
}

func (st *stdioServer) subscribers(uri string) []*session {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Collect(maps.Keys(st.subs[uri]))
}

// subscribe subscribes a session to a URI; only the first subscriber reaches the server.
func (st *stdioServer) subscribe(ctx context.Context, s *session, uri string) error {
	st.mu.Lock()
	first := len(st.subs[uri]) == 0
	st.mu.Unlock()
	if first {
		up, err := st.get(ctx)
		if err != nil {
			return err
		}
		if err := up.cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
			return err
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.subs[uri] == nil {
		st.subs[uri] = make(map[*session]bool)
	}
	st.subs[uri][s] = true
	return nil
}

// unsubscribe drops a session's subscription; the last one out unsubscribes upstream.
func (st *stdioServer) unsubscribe(ctx context.Context, s *session, uri string) {
	st.mu.Lock()
	subs := st.subs[uri]
	if !subs[s] {
		st.mu.Unlock()
		return
	}
	delete(subs, s)
	last := len(subs) == 0
	if last {
		delete(st.subs, uri)
	}
	up := st.up
	st.mu.Unlock()
	if last && up != nil {
		_ = up.cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: uri})
	}
}

// setLevel records a session's logging level; the server runs at the most verbose one asked for,
// and relayLog filters per session.
func (st *stdioServer) setLevel(ctx context.Context, s *session, level logLevel) error {
	st.mu.Lock()
	st.levels[s] = level
	st.mu.Unlock()
	return st.applyLevel(ctx)
}

func (st *stdioServer) applyLevel(ctx context.Context) error {
	st.mu.Lock()
	var want logLevel
	for _, l := range st.levels {
		if want == "" || levelRank(l) < levelRank(want) {
			want = l
		}
	}
	up, same := st.up, want == st.level
	st.level = want
	st.mu.Unlock()
	if same || want == "" || up == nil {
		return nil
	}
	return setUpstreamLevel(ctx, up.cs, nil, want)
}

func (st *stdioServer) noteElicitation(id string, s *session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.elicits[id] = s
}

func (st *stdioServer) takeElicitation(id string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.elicits[id]
	delete(st.elicits, id)
	return s
}

func samePackage(a, b *warden.ToolPackage) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Digest == b.Digest && slices.Equal(a.Files, b.Files)
}

func sameSandbox(a, b *warden.ToolSandbox) bool {
	if a == nil || b == nil {
		return a == b
	}
	return slices.Equal(a.ReadOnly, b.ReadOnly) && slices.Equal(a.AllowHosts, b.AllowHosts)
}

func secretValues(env []string) []string {
	var out []string
	for _, kv := range env {
		if _, v, ok := strings.Cut(kv, "="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// stderrLog writes a local server's stderr to warden's debug log a line at a time, with the
// values of its secrets blanked out.
type stderrLog struct {
	log     *slog.Logger
	tool    string
	secrets []string
	mu      sync.Mutex
	buf     []byte
}

const (
	maxStderrLine   = 1024     // logged
	maxStderrBuffer = 64 << 10 // held to find the end of a line
)

func (w *stderrLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > maxStderrBuffer {
				// Cut anywhere, a line could cut a secret in two and show half of it.
				w.log.Debug("local mcp server stderr line too long; dropped", "tool", w.tool)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *stderrLog) emit(line []byte) {
	s := string(line)
	for _, v := range w.secrets {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	if len(s) > maxStderrLine {
		s = s[:maxStderrLine]
	}
	if s = strings.TrimSpace(s); s != "" {
		w.log.Debug("local mcp server stderr", "tool", w.tool, "line", s)
	}
}
