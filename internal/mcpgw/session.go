package mcpgw

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
)

// A session is warden's side of one downstream MCP session: the agent that owns it, what its
// client can do, and the upstream sessions it opened.
type session struct {
	g       *Server
	ep      *endpoint
	ss      *mcp.ServerSession
	agentID string
	caps    *mcp.ClientCapabilities // what the agent's client declared
	version string                  // the protocol version negotiated with the agent
	trace   gateway.TraceContext    // the span of upstream traffic no single call caused
	caller  atomic.Pointer[gateway.Caller]

	// ctx ends with the session; it carries no request's values, so messages sent with it
	// travel on the standalone SSE stream.
	ctx    context.Context
	cancel context.CancelFunc

	closing   atomic.Bool
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool
	links  map[string]*link      // remote upstreams, by tool name
	shared map[*stdioServer]bool // local servers this session uses
	level  logLevel              // the agent's logging/setLevel
	subs   map[resourceKey]bool  // what the agent subscribed to on remote upstreams

	// The lean relay (relay.go): the agent's calls it serves, by the agent's request id, and the
	// server→client requests it passed on, by warden's id.
	calls   map[string]*relayedCall
	pending map[string]*pendingRequest
	reqSeq  atomic.Uint64

	// Idle sessions close after Options.SessionIdle without a POST being served.
	idle     clock.Timer
	inFlight int
}

type resourceKey struct{ tool, uri string }

// A link is a session's (possibly still connecting) upstream session to a remote tool.
type link struct {
	ready chan struct{}
	up    *upstream
	err   error
}

func newSession(ep *endpoint, ss *mcp.ServerSession, c *gateway.Caller, params *mcp.InitializeParams) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		g:       ep.g,
		ep:      ep,
		ss:      ss,
		agentID: c.Agent.ID,
		caps:    params.Capabilities,
		version: params.ProtocolVersion,
		trace:   gateway.NewTrace(),
		ctx:     ctx,
		cancel:  cancel,
		links:   make(map[string]*link),
		shared:  make(map[*stdioServer]bool),
		subs:    make(map[resourceKey]bool),
		calls:   make(map[string]*relayedCall),
		pending: make(map[string]*pendingRequest),
	}
	if s.caps == nil {
		s.caps = &mcp.ClientCapabilities{}
	}
	s.caller.Store(c)
	return s
}

// close ends the session: its calls, its streams, its upstream sessions.
func (s *session) close() {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.mu.Lock()
		if s.idle != nil {
			s.idle.Stop()
			s.idle = nil
		}
		s.mu.Unlock()
		s.cancel() // calls in flight return, so ss.Close need not wait for them
		_ = s.ss.Close()
		s.release()
	})
}

// release lets go of everything the session holds upstream. It does not close the downstream
// session, so it is safe from inside that session's handlers.
func (s *session) release() {
	s.cancel()
	s.mu.Lock()
	s.closed = true
	links, shared := s.links, s.shared
	s.links, s.shared = nil, nil
	s.mu.Unlock()
	for _, l := range links {
		select {
		case <-l.ready:
			if l.up != nil {
				l.up.close()
			}
		default: // still connecting: the dialer sees closed and closes it
		}
	}
	for st := range shared {
		st.detach(s)
	}
	s.g.unregister(s)
	// What the session read ends with it.
	if e, ok := s.g.p.(sessionEnder); ok && s.ss != nil {
		e.EndSession(s.agentID, s.ss.ID())
	}
}

// sessionEnder forgets the flow state of a session that ended (gateway.Pipeline.EndSession).
type sessionEnder interface {
	EndSession(agentID, session string)
}

// startIdle starts the idle timer of a registered session.
func (s *session) startIdle(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.idle == nil {
		s.idle = s.g.opts.Clock.AfterFunc(d, s.close)
	}
}

// busy notes a POST of the session being served: it is not idle until rest.
func (s *session) busy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight == 0 && s.idle != nil {
		s.idle.Stop()
	}
	s.inFlight++
}

func (s *session) rest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if s.inFlight == 0 && s.idle != nil {
		s.idle.Reset(s.g.opts.SessionIdle)
	}
}

func (s *session) logLevel() logLevel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// upstream returns the upstream session for a tool, connecting it if need be.
func (s *session) upstream(ctx context.Context, tool *warden.Tool) (*upstream, error) {
	switch tool.Kind {
	case warden.ToolMCPCommand:
		ctx, cancel := context.WithTimeout(ctx, s.g.opts.UpstreamTimeout)
		defer cancel()
		st, err := s.g.stdioServer(tool)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
		}
		first := !s.shared[st]
		s.shared[st] = true
		level := s.level
		s.mu.Unlock()
		if first {
			st.attach(s)
			if level != "" {
				if err := st.setLevel(ctx, s, level); err != nil {
					s.g.log.Debug("mcp upstream refused logging/setLevel", "tool", tool.Name, "err", err)
				}
			}
		}
		return st.get(ctx)
	case warden.ToolMCP:
		// Dialing is bounded by Options.UpstreamTimeout itself (dial); waiting for a link
		// another call is dialing ends with it.
		return s.remote(ctx, tool)
	}
	return nil, fmt.Errorf("tool %s is not an MCP tool", tool.Name)
}

func (s *session) remote(ctx context.Context, tool *warden.Tool) (*upstream, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	l := s.links[tool.Name]
	if l == nil {
		l = &link{ready: make(chan struct{})}
		s.links[tool.Name] = l
		s.mu.Unlock()
		up, err := s.g.dial(s, tool)
		s.mu.Lock()
		closed := s.closed
		if err != nil || closed {
			delete(s.links, tool.Name)
		}
		if closed && err == nil {
			err = errClosed
		}
		l.up, l.err = up, err
		close(l.ready)
		s.mu.Unlock()
		if err != nil {
			if up != nil {
				up.close()
			}
			return nil, err
		}
		return up, nil
	}
	s.mu.Unlock()
	select {
	case <-l.ready:
		if l.err != nil {
			return nil, l.err
		}
		return l.up, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// upstreamGone is told that a remote upstream session ended. An agent on /mcp/<tool> saw that
// server's session, so its session ends too; on /mcp the next use reconnects.
func (s *session) upstreamGone(up *upstream) {
	if s.closing.Load() {
		return
	}
	if s.ep.tool != "" {
		s.g.log.Info("mcp upstream session ended; closing the agent's session", "tool", up.tool.Name, "agent", s.agentID)
		s.close()
		return
	}
	s.mu.Lock()
	if l := s.links[up.tool.Name]; l != nil && l.up == up {
		delete(s.links, up.tool.Name)
	}
	s.mu.Unlock()
}

// remotes returns the connected remote upstreams of the session.
func (s *session) remotes() []*upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ups []*upstream
	for _, l := range s.links {
		select {
		case <-l.ready:
			if l.up != nil {
				ups = append(ups, l.up)
			}
		default:
		}
	}
	return ups
}

// supports reports whether the agent's client declared what a server→client request needs.
func (s *session) supports(method string, params mcp.Params) bool {
	c := s.caps
	switch method {
	case "sampling/createMessage":
		return declaresSampling(c)
	case "roots/list":
		return declaresRoots(c)
	case "elicitation/create":
		if c.Elicitation == nil {
			return false
		}
		if p, ok := params.(*mcp.ElicitParams); ok && (p.Mode == "url" || p.Mode == "" && p.URL != "") {
			return c.Elicitation.URL != nil
		}
		return c.Elicitation.Form != nil || c.Elicitation.URL == nil
	}
	return false
}

func (ep *endpoint) initialize(ctx context.Context, next mcp.MethodHandler, method string, ss *mcp.ServerSession, caller *gateway.Caller, req mcp.Request) (mcp.Result, error) {
	params, _ := req.GetParams().(*mcp.InitializeParams)
	if caller == nil || caller.Agent == nil || params == nil || ep.g.session(ss) != nil {
		return next(ctx, method, req) // the SDK answers duplicates and malformed handshakes
	}
	s := newSession(ep, ss, caller, params)
	var up *upstream
	if ep.tool != "" {
		// The agent must see this server's capabilities, so its upstream session starts now.
		tool := ep.g.tool(ep.tool)
		if tool == nil {
			s.release()
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "no MCP tool named " + ep.tool}
		}
		var err error
		if up, err = s.upstream(ctx, tool); err != nil {
			s.release()
			ep.g.log.Warn("mcp upstream unavailable", "tool", tool.Name, "agent", caller.Agent.Name, "err", err)
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the upstream MCP server " + tool.Name + " is unavailable"}
		}
	}
	res, err := next(ctx, method, req)
	if err != nil {
		s.release()
		return nil, err
	}
	ir, ok := res.(*mcp.InitializeResult)
	if !ok {
		s.release()
		return res, nil
	}
	if up != nil {
		// An unchanged server: its capabilities, identity and instructions.
		u := up.cs.InitializeResult()
		ir.Capabilities, ir.ServerInfo, ir.Instructions = u.Capabilities, u.ServerInfo, u.Instructions
	} else {
		ir.Capabilities = aggregateCapabilities()
		ir.Instructions = "Tools of several servers, named <server>.<tool>; resources are <server>+<uri>. Every call is authorized and audited by warden."
	}
	if err := ep.g.register(s); err != nil {
		s.release()
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the MCP gateway is shutting down"}
	}
	return ir, nil
}
