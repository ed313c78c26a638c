package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/npmpkg"
	"github.com/wardenhq/warden/internal/sandbox"
)

// SandboxMode says whether local MCP servers run in warden's sandbox.
type SandboxMode string

const (
	// SandboxRequired runs every local MCP server in warden's Linux sandbox (docs/sandbox.md);
	// where there is none, a local server does not start.
	SandboxRequired SandboxMode = "required"
	// SandboxOff runs local MCP servers as plain processes, with a warning at each start.
	SandboxOff SandboxMode = "off"
)

// ParseSandboxMode validates a mode; "" is required.
func ParseSandboxMode(s string) (SandboxMode, error) {
	switch SandboxMode(s) {
	case "", SandboxRequired:
		return SandboxRequired, nil
	case SandboxOff:
		return SandboxOff, nil
	}
	return "", fmt.Errorf("unknown sandbox mode %q: use required or off", s)
}

// SandboxOptions configure the sandbox of local MCP servers.
type SandboxOptions struct {
	// Mode: SandboxRequired or SandboxOff. Anything but SandboxOff, the zero value included,
	// sandboxes (fail closed); embedders and tests that want plain processes say SandboxOff.
	Mode SandboxMode
	// Dir holds each server's persistent workspace, Dir/<tool> (mode 0700): its HOME and working
	// directory, so that caches (npx's) survive restarts. Empty: a temporary directory per
	// server, removed when it stops.
	Dir string
	// Limits default to 1 GiB of memory and 256 processes.
	Limits sandbox.Limits
	// AllowWeaker names the mechanisms a server's sandbox may run without.
	AllowWeaker []sandbox.Mechanism
	// Audit records the egress decisions of servers given allowed hosts, and the starts refused
	// because a server's files changed (tool.package_changed); nil logs them instead.
	Audit Auditor
	// Proxy overrides parts of the egress proxy (tests: Reachable, Resolver).
	Proxy func() *egress.Proxy
}

// Auditor appends an event to the audit log; *audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, ev *warden.AuditEvent) error
}

// Defaults of a local server's sandbox.
const (
	defaultSandboxMemory = 1 << 30
	defaultSandboxPids   = 256
)

func (o SandboxOptions) limits() sandbox.Limits {
	l := o.Limits
	if l.Memory == 0 {
		l.Memory = defaultSandboxMemory
	}
	if l.Pids == 0 {
		l.Pids = defaultSandboxPids
	}
	return l
}

// errNoSandbox is returned where warden has no sandbox for a local server.
var errNoSandbox = errors.New("local MCP servers run in warden's Linux sandbox, which this system lacks; set mcp.sandbox: off to run them unsandboxed")

// workspace returns the server's HOME and working directory, and whether it is temporary.
func (g *Server) workspace(tool string) (string, bool, error) {
	dir := g.opts.Sandbox.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "warden-mcp-"+tool+"-")
		return d, true, err
	}
	abs, err := g.workspacePath(tool)
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", false, err
	}
	return abs, false, os.Chmod(abs, 0o700)
}

// workspacePath is the persistent workspace of a tool's server under SandboxOptions.Dir, which
// must be set, whether or not it exists yet.
func (g *Server) workspacePath(tool string) (string, error) {
	if !filepath.IsLocal(tool) || strings.ContainsRune(tool, filepath.Separator) {
		return "", fmt.Errorf("tool name %q cannot name a directory", tool)
	}
	return filepath.Abs(filepath.Join(g.opts.Sandbox.Dir, tool))
}

// readOnlyPaths are the host paths a server needs to read: the directory of its command, the
// node_modules its command or a script argument resolves into, and the tool's own --ro paths.
func readOnlyPaths(path string, args []string, tool *warden.Tool, workspace string) []string {
	var out []string
	add := func(p string) {
		p = filepath.Clean(p)
		if !filepath.IsAbs(p) || p == "/" || p == workspace || strings.HasPrefix(p, workspace+"/") || sandbox.InSystemDir(p) {
			return
		}
		if _, err := os.Stat(p); err == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	addFile := func(p string) {
		for _, q := range []string{p, realPath(p)} {
			if q == "" {
				continue
			}
			add(filepath.Dir(q))
			if i := strings.LastIndex(q, "/node_modules/"); i >= 0 {
				add(q[:i+len("/node_modules")])
			}
		}
	}
	addFile(path)
	for _, a := range args {
		if filepath.IsAbs(a) {
			if fi, err := os.Stat(a); err == nil && fi.Mode().IsRegular() {
				addFile(a)
			}
		}
	}
	if tool.Sandbox != nil {
		for _, p := range tool.Sandbox.ReadOnly {
			add(p)
		}
	}
	return out
}

func realPath(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil || r == p {
		return ""
	}
	return r
}

// boxedServer is a local server running in a sandbox, with its egress proxy.
type boxedServer struct {
	sb     *sandbox.Sandbox
	stdin  *os.File // warden's end of the server's standard input
	stdout *os.File // warden's end of its standard output
	done   chan struct{}
	exit   sandbox.Exit
	cancel context.CancelFunc // stops the egress proxy
	proxy  sync.WaitGroup
	once   sync.Once
	clk    clock.Clock // times the grace of stop
}

// startSandboxed starts the server in a sandbox over workspace, with PATH, HOME, TMPDIR, the
// proxy variables when the tool may reach hosts, and the tool's secrets: nothing of warden's.
func (st *stdioServer) startSandboxed(ctx context.Context, path string, secrets []string, stderr io.Writer) (*boxedServer, error) {
	if runtime.GOOS != "linux" {
		return nil, errNoSandbox
	}
	o := st.g.opts.Sandbox
	argv := st.tool.Command
	env := []string{"PATH=" + st.g.opts.CommandPath, "HOME=" + st.home, "TMPDIR=/tmp"}
	var allow []egress.HostPattern
	if st.tool.Sandbox != nil {
		for _, h := range st.tool.Sandbox.AllowHosts {
			hp, err := egress.ParseHostPattern(h)
			if err != nil {
				return nil, fmt.Errorf("allowed host %q: %w", h, err)
			}
			allow = append(allow, hp)
		}
	}
	spec := &sandbox.Spec{
		Command:     append([]string{path}, argv[1:]...),
		Workspace:   st.home,
		ReadOnly:    readOnlyPaths(path, argv[1:], st.tool, st.home),
		Limits:      o.limits(),
		AllowWeaker: o.AllowWeaker,
		Hostname:    "warden-mcp",
		Stderr:      stderr,
	}
	if npmPackage(st.tool) {
		// The installed package is read-only to the server: it cannot rewrite the code that
		// runs on its next start (which checks the entry point's digest again).
		spec.Protected = append(slices.Clone(sandbox.DefaultProtected), npmpkg.InstallDir+"/")
	}
	if len(allow) > 0 {
		spec.Listeners = []sandbox.Listener{{Name: "proxy", Port: egress.SandboxPort}}
		env = append(env, egress.ProxyEnv(egress.SandboxPort)...)
	}
	spec.Env = append(env, secrets...)

	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	spec.Stdin, spec.Stdout = inR, outW
	sb, err := sandbox.Start(ctx, spec)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	if len(sb.Weakened) > 0 {
		st.g.log.Warn("local mcp server runs in a weaker sandbox", "tool", st.tool.Name, "without", sb.Weakened)
	}
	b := &boxedServer{sb: sb, stdin: inW, stdout: outR, done: make(chan struct{}), clk: st.g.opts.Clock}
	go func() {
		b.exit, _ = sb.Wait()
		close(b.done)
	}()
	pctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	if len(allow) > 0 {
		p := &egress.Proxy{}
		if o.Proxy != nil {
			p = o.Proxy()
		}
		p.AllowHosts = allow
		te := &toolEgress{tool: st.tool.Name, audit: o.Audit, log: st.g.log}
		p.Decider = te
		p.Refused = te.refused
		p.Log = st.g.log.With("tool", st.tool.Name)
		b.proxy.Add(1)
		go func() {
			defer b.proxy.Done()
			_ = p.Serve(pctx, sb.Listeners["proxy"])
		}()
	}
	return b, nil
}

// transport speaks MCP over the server's standard streams. Closing it closes the server's
// standard input, gives it two seconds to exit, then kills the sandbox; it returns once every
// process of the sandbox is reaped.
func (b *boxedServer) transport() mcp.Transport {
	return &mcp.IOTransport{Reader: io.NopCloser(b.stdout), Writer: boxedStdin{b}}
}

type boxedStdin struct{ b *boxedServer }

func (w boxedStdin) Write(p []byte) (int, error) { return w.b.stdin.Write(p) }
func (w boxedStdin) Close() error {
	w.b.stop(2 * time.Second)
	return nil
}

// stop ends the server: its standard input closed, grace to exit, then the whole sandbox
// killed and reaped, and the egress proxy stopped.
func (b *boxedServer) stop(grace time.Duration) {
	b.once.Do(func() {
		b.stdin.Close()
		// Kill only a sandbox still running: once reaped, its pidfd is closed and its number
		// may belong to another file.
		if grace > 0 {
			wait := b.clk.NewTimer(grace)
			select {
			case <-b.done:
			case <-wait.C():
			}
			wait.Stop()
		}
		select {
		case <-b.done:
		default:
			b.sb.Kill()
			<-b.done
		}
		b.stdout.Close()
		b.cancel()
		b.proxy.Wait()
	})
}

// toolEgress decides the egress of a local server: exactly the hosts the tool was given (the
// proxy refuses every other before asking). Each allowed connection is audited, with the
// tool as a system actor, before it is made.
type toolEgress struct {
	tool  string
	audit Auditor
	log   *slog.Logger
	// calls holds the tool.call event of each allowed connection until its outcome is
	// recorded (the proxy reports one for every allowed decision): the tool.result is made
	// from it, so that it names the same target, risk and decision.
	calls sync.Map // decision id → *warden.AuditEvent
}

var _ egress.Decider = (*toolEgress)(nil)

func (d *toolEgress) actor() warden.EventActor {
	return warden.EventActor{Kind: warden.ActorSystem, Name: "tool:" + d.tool}
}

func (d *toolEgress) Decide(ctx context.Context, r egress.Request) (egress.Decision, error) {
	// A probe (is this IP literal named?) matches no list entry, so it is denied, which is what
	// lets a literal the tool was given through.
	if !r.AllowHost || r.Probe {
		return egress.Decision{Allowed: false, Reason: warden.ReasonNotInAllowHost, Message: "not among the tool's allowed hosts"}, nil
	}
	id := warden.NewID("dec_")
	args, _ := json.Marshal(egress.Arguments(r))
	ev := d.callEvent(r.Target, args, warden.EventDecision{ID: id, Effect: warden.EffectAllow, Reason: warden.ReasonToolAllowHost,
		Message: "the tool's --allow-host list names " + r.Target.Resource()})
	if err := d.append(ctx, ev); err != nil {
		return egress.Decision{}, err
	}
	d.calls.Store(id, ev)
	return egress.Decision{ID: id, Allowed: true, Reason: warden.ReasonToolAllowHost}, nil
}

// callEvent is the tool.call event of a connection to t: the tool as a system actor, calling
// the egress tool.
func (d *toolEgress) callEvent(t egress.Target, args []byte, decision warden.EventDecision) *warden.AuditEvent {
	return warden.NewToolCallEvent(time.Time{}, d.actor(),
		warden.EventTarget{Tool: warden.EgressTool.Name, Action: warden.EgressConnect, Resource: t.Resource(), Risk: warden.EgressTool.Risk, Arguments: args},
		decision, "", "")
}

// refused records a connection the proxy refused: not among the tool's hosts, or resolving
// to an address it never dials. The refusal has a decision id of its own, as every tool.call
// has, though the proxy's answer does not quote it.
func (d *toolEgress) refused(ctx context.Context, t egress.Target, reason, message string) {
	ev := d.callEvent(t, nil, warden.EventDecision{ID: warden.NewID("dec_"), Effect: warden.EffectDeny, Reason: reason, Message: message})
	if err := d.append(ctx, ev); err != nil {
		d.log.Error("audit append failed", "type", ev.Type, "tool", d.tool, "err", err)
	}
}

func (d *toolEgress) Outcome(ctx context.Context, id string, o egress.Outcome) error {
	var call *warden.AuditEvent
	if v, ok := d.calls.LoadAndDelete(id); ok {
		call = v.(*warden.AuditEvent)
	} else {
		// Not a decision of this tool's (the proxy reports only those): record what is known.
		call = warden.NewToolCallEvent(time.Time{}, d.actor(),
			warden.EventTarget{Tool: warden.EgressTool.Name, Action: warden.EgressConnect, Risk: warden.EgressTool.Risk},
			warden.EventDecision{ID: id, Effect: warden.EffectAllow}, "", "")
	}
	return d.append(ctx, warden.NewToolResultEvent(call, warden.EventOutcome{Status: o.Status, LatencyMS: float64(o.Duration.Microseconds()) / 1000,
		BytesIn: o.BytesIn, BytesOut: o.BytesOut, RemoteAddr: o.Addr}))
}

func (d *toolEgress) append(ctx context.Context, ev *warden.AuditEvent) error {
	if d.audit == nil {
		d.log.Info("local mcp server egress", "tool", d.tool, "type", ev.Type, "resource", ev.Target.Resource,
			"decision", ev.Decision.ID, "status", ev.Outcome.Status)
		return nil
	}
	return d.audit.Append(ctx, ev)
}
