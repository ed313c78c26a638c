package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
)

// Pipeline is what the MCP entry point needs from the enforcement pipeline.
type Pipeline interface {
	// Authenticate checks the request's Bearer token. On failure the error is a *warden.Error
	// with code warden.EUnauthenticated.
	Authenticate(r *http.Request) (*gateway.Caller, error)
	// Authorize runs kill state, policy, budgets and the audit write for one call. Only an
	// allowed permit may be forwarded, under permit.Ctx, and it must then be ended with exactly
	// one permit.Done.
	Authorize(ctx context.Context, c *gateway.Caller, call *gateway.Call) *gateway.Permit
	// Refuse records the refusal of a call the MCP gateway resolved before policy as one it
	// will not forward (a tool name the upstream never listed: reason unknown_tool) and
	// returns the denied permit.
	Refuse(ctx context.Context, c *gateway.Caller, call *gateway.Call, reason, message string) *gateway.Permit
	// Visible reports whether listings should show this (tool, action) to the caller.
	Visible(c *gateway.Caller, tool *warden.Tool, action string) bool
	// MCPTools returns the registered, enabled tools of kind mcp and mcp_command.
	MCPTools() []*warden.Tool
	// UpstreamHeaders returns what goes upstream on every HTTP request made for this caller (nil:
	// warden itself, listing a server at registration — the credential only): the
	// brokered credential, Warden-Agent, Warden-Session and traceparent. Never the agent's token.
	UpstreamHeaders(ctx context.Context, c *gateway.Caller, tool *warden.Tool, trace gateway.TraceContext) (http.Header, error)
	// CommandEnv returns the secret environment variables of a local (stdio) MCP server.
	CommandEnv(ctx context.Context, tool *warden.Tool) ([]string, error)
	// PackageQuarantined reports whether a server package's digest is quarantined in the kill
	// state: such a local server is not started.
	PackageQuarantined(digest string) bool
}

// Options configure a Server. The zero value works; BaseURL and Issuer should be set so that
// clients can discover how to get a token.
type Options struct {
	// BaseURL is warden's external URL (scheme://host[:port]) as agents reach it. It is used in
	// the protected resource metadata and in WWW-Authenticate. Empty: taken from each request.
	BaseURL string
	// Issuer is the authorization server the protected resource metadata names.
	Issuer string
	// Scopes is what the protected resource metadata lists as scopes_supported.
	Scopes []string
	// MaxBody limits a POST body; larger ones get 413. Default 4 MiB.
	MaxBody int64
	// Version is reported as the version of the /mcp server.
	Version string
	// UpstreamTimeout bounds starting and initializing an upstream session. Default 30s.
	UpstreamTimeout time.Duration
	// SessionIdle closes a downstream session that has seen no request for this long.
	// Default 30 minutes; negative: never.
	SessionIdle time.Duration
	// CommandPath is the PATH local MCP servers get. Default: warden's own PATH.
	CommandPath string
	Sandbox     SandboxOptions // how local MCP servers are sandboxed (sandbox.go)
	// DisableLocalhostProtection turns off the DNS rebinding check the Go SDK applies when warden
	// listens on a loopback address and the Host header is not a loopback name. Only set it
	// when a reverse proxy on the same host forwards with the public Host.
	DisableLocalhostProtection bool
	// Manifests compares every full tools/list warden reads from an upstream with the pinned
	// manifests of its tools (admin.Service.ObserveManifests); nil: nothing is pinned.
	Manifests Manifests
	// Packages installs and checks the pinned npm package of a local server (tool add --npm)
	// in its workspace before every start; nil: such a server does not start.
	Packages Packages
	// Clock times idle sessions, the age of upstream tool lists, restart backoff and sandbox
	// grace; nil: the real clock. (Call latency is measured on the real monotonic clock.)
	Clock clock.Clock
}

// Manifests learns each full tools/list an upstream answers, as its raw entries: the first pins
// its tools, a later one that differs holds the changed and added ones (the registry's pins then
// hide them and refuse their calls).
type Manifests interface {
	ObserveManifests(ctx context.Context, tool string, entries []json.RawMessage) error
}

// Packages makes a local server's pinned package ready in its workspace, or refuses: installed
// when missing, its entry point the pinned one (npmpkg.Installer).
type Packages interface {
	Prepare(ctx context.Context, tool *warden.Tool, workspace string) error
}

func (o *Options) defaults() {
	if o.MaxBody <= 0 {
		o.MaxBody = 4 << 20
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 30 * time.Second
	}
	if o.SessionIdle == 0 {
		o.SessionIdle = 30 * time.Minute
	}
	if o.SessionIdle < 0 {
		o.SessionIdle = 0
	}
	o.Clock = clock.Or(o.Clock)
	if o.CommandPath == "" {
		o.CommandPath = os.Getenv("PATH")
	}
	if o.Version == "" {
		o.Version = "dev"
	}
}

// Server serves MCP to agents and relays their sessions to the upstream MCP servers.
type Server struct {
	p      Pipeline
	log    *slog.Logger
	sdkLog *slog.Logger // the SDK logs routine events at info; warden keeps its warnings only
	opts   Options
	client *http.Client // the base of every upstream HTTP client; never follows redirects

	mu        sync.Mutex
	closed    bool
	endpoints map[string]*endpoint // "" is /mcp
	sessions  map[*mcp.ServerSession]*session
	byID      map[sessionKey]*session
	stdio     map[string]*stdioServer // by tool name

	wg sync.WaitGroup // goroutines the Server owns: session watchers, stdio supervisors
}

// New returns a Server over the pipeline p.
func New(p Pipeline, log *slog.Logger, opts Options) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.defaults()
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Every upstream session of every agent shares this transport, and each keeps a standalone
	// GET stream open beside its calls: with the default of 2 idle connections per host, most
	// calls to a busy upstream would dial a new connection and close it afterwards.
	base.MaxIdleConns = 1024
	base.MaxIdleConnsPerHost = 256
	return &Server{
		p:      p,
		log:    log,
		sdkLog: slog.New(minLevel{log.Handler(), slog.LevelWarn}),
		opts:   opts,
		client: &http.Client{
			Transport: base,
			// A redirect would carry the injected credential to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		endpoints: make(map[string]*endpoint),
		sessions:  make(map[*mcp.ServerSession]*session),
		byID:      make(map[sessionKey]*session),
		stdio:     make(map[string]*stdioServer),
	}
}

// errClosed is returned for work that arrives after Close.
var errClosed = errors.New("mcp gateway is closed")

// goOwned runs f as a goroutine the Server owns: Close waits for it. After Close it runs
// nothing and reports false.
func (g *Server) goOwned(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.goOwnedLocked(f)
}

// goOwnedLocked is goOwned for a caller that holds g.mu.
func (g *Server) goOwnedLocked(f func()) bool {
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close ends every downstream session, every upstream session and every local MCP server, and
// waits for the goroutines the Server started.
func (g *Server) Close() error {
	g.mu.Lock()
	g.closed = true
	var sessions []*session
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	var servers []*stdioServer
	for _, st := range g.stdio {
		servers = append(servers, st)
	}
	g.stdio = make(map[string]*stdioServer)
	g.mu.Unlock()

	closeSessions(sessions)
	for _, st := range servers {
		st.stop()
	}
	g.wg.Wait()
	g.client.CloseIdleConnections()
	return nil
}

// Sessions counts the MCP sessions open on this server.
func (g *Server) Sessions() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sessions)
}

// CloseAgentSessions closes every open downstream MCP session of the agent: its calls in flight
// are cancelled, its upstream sessions closed, its SSE streams ended. It returns how many
// sessions it closed.
func (g *Server) CloseAgentSessions(agentID string) int {
	g.mu.Lock()
	var sessions []*session
	for _, s := range g.sessions {
		if s.agentID == agentID {
			sessions = append(sessions, s)
		}
	}
	g.mu.Unlock()
	closeSessions(sessions)
	return len(sessions)
}

// closeSessions closes sessions in parallel: closing one waits for its handlers to return.
func closeSessions(sessions []*session) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.close()
		}()
	}
	wg.Wait()
}

// register records a session and watches for its end.
func (g *Server) register(s *session) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errClosed
	}
	g.sessions[s.ss] = s
	if id := s.ss.ID(); id != "" {
		g.byID[sessionKey{s.ep.tool, id}] = s
	}
	g.goOwnedLocked(func() {
		_ = s.ss.Wait()
		s.close()
	})
	s.startIdle(g.opts.SessionIdle)
	return nil
}

func (g *Server) unregister(s *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sessions[s.ss] == s {
		delete(g.sessions, s.ss)
	}
	if key := (sessionKey{s.ep.tool, s.ss.ID()}); g.byID[key] == s {
		delete(g.byID, key)
	}
}

// sessionKey names a downstream session: its endpoint's tool ("" for /mcp) and its ID.
type sessionKey struct{ tool, id string }

// ownedSession returns the session with this ID on the endpoint of tool if it is the caller's.
// Otherwise it returns nil and the status to refuse the request with: 404 for a session warden
// does not know (never created, ended, or of another endpoint), 403 for another agent's.
func (g *Server) ownedSession(tool, id string, c *gateway.Caller) (*session, int) {
	g.mu.Lock()
	s := g.byID[sessionKey{tool, id}]
	g.mu.Unlock()
	switch {
	case s == nil:
		return nil, http.StatusNotFound
	case c == nil || c.Agent == nil || s.agentID != c.Agent.ID:
		return nil, http.StatusForbidden
	}
	return s, 0
}

func (g *Server) session(ss *mcp.ServerSession) *session {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sessions[ss]
}

// tool returns the registered, enabled MCP tool with this name.
func (g *Server) tool(name string) *warden.Tool {
	for _, t := range g.p.MCPTools() {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// done ends an allowed call's permit. The outcome's audit event waits for a durable commit of
// the log, which the agent's answer need not wait for: the decision was durable before the call
// went upstream, and the outcome only records what already happened. So the call's slot and
// cancellation are released here, and the record runs beside the answer, on a goroutine Close
// waits for (or here, once the Server is closed).
func (g *Server) done(p *gateway.Permit, o gateway.Outcome) {
	if record := p.End(o); record != nil && !g.goOwned(record) {
		record()
	}
}

// minLevel is a slog.Handler that drops records below a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
