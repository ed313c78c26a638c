package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// A session is warden's side of one downstream MCP session: the agent that owns it, what its
// client can do, and the upstream sessions it opened.
type session struct {
	g       *Gateway
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
	level  mcp.LoggingLevel      // the agent's logging/setLevel
	subs   map[resourceKey]bool  // what the agent subscribed to on remote upstreams

	// The lean relay (relay.go): the agent's calls it serves, by the agent's request id, and the
	// server→client requests it passed on, by warden's id.
	calls   map[string]*relayedCall
	pending map[string]*pendingRequest
	reqSeq  atomic.Uint64

	// Idle sessions close after Options.SessionIdle without a POST being served.
	idle     *time.Timer
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
}

// startIdle starts the idle timer of a registered session.
func (s *session) startIdle(d time.Duration) {
	if d <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.idle == nil {
		s.idle = time.AfterFunc(d, s.close)
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

func (s *session) logLevel() mcp.LoggingLevel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// upstream returns the upstream session for a tool, connecting it if need be.
func (s *session) upstream(ctx context.Context, tool *warden.Tool) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, s.g.opts.UpstreamTimeout)
	defer cancel()
	switch tool.Kind {
	case warden.ToolMCPCommand:
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
		return c.Sampling != nil
	case "roots/list":
		return c.RootsV2 != nil
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

// The agent-facing side: a receiving middleware on the endpoint's mcp.Server that answers
// every method itself (ping and the handshake excepted).

func (ep *endpoint) receive(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		ss, ok := req.GetSession().(*mcp.ServerSession)
		if !ok {
			return next(ctx, method, req)
		}
		caller := callerOf(req)
		switch method {
		case "initialize":
			return ep.initialize(ctx, next, method, ss, caller, req)
		case "ping", "notifications/initialized", "notifications/cancelled", "notifications/progress":
			return next(ctx, method, req)
		}
		s := ep.g.session(ss)
		if s == nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "the session is not initialized or has ended"}
		}
		if caller == nil || caller.Agent == nil || caller.Agent.ID != s.agentID {
			// The SDK refuses another agent's token on a session (403) before this; a second
			// check costs nothing.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "this session belongs to another agent"}
		}
		s.caller.Store(caller)
		return s.handle(ctx, method, req, caller)
	}
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
		ir.Capabilities = &mcp.ServerCapabilities{
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Completions: &mcp.CompletionCapabilities{},
			Logging:     &mcp.LoggingCapabilities{},
		}
		ir.Instructions = "Tools of several servers, named <server>.<tool>; resources are <server>+<uri>. Every call is authorized and audited by warden."
	}
	if err := ep.g.register(s); err != nil {
		s.release()
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the MCP gateway is shutting down"}
	}
	return ir, nil
}

func (s *session) handle(ctx context.Context, method string, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	switch method {
	case "tools/list":
		return s.listTools(ctx, req, c)
	case "tools/call":
		return s.callTool(ctx, req, c)
	case "resources/list":
		return s.listResources(ctx, req, c)
	case "resources/templates/list":
		return s.listTemplates(ctx, req, c)
	case "resources/read":
		return s.readResource(ctx, req, c)
	case "resources/subscribe":
		return s.subscribe(ctx, req, c)
	case "resources/unsubscribe":
		return s.unsubscribe(ctx, req, c)
	case "prompts/list":
		return s.listPrompts(ctx, req, c)
	case "prompts/get":
		return s.getPrompt(ctx, req, c)
	case "completion/complete":
		return s.complete(ctx, req, c)
	case "logging/setLevel":
		return s.setLevel(ctx, req, c)
	case "notifications/roots/list_changed":
		s.rootsChanged(ctx, c)
		return nil, nil
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: fmt.Sprintf("method %q is not supported through warden", method)}
}

// emptyResult is the {} result of methods that return nothing.
type emptyResult struct{ mcp.ResultBase }

// Calls: authorize, forward, record the outcome.

// denial is the text an agent gets for a call warden did not allow.
func denial(p *gateway.Permit) string {
	reason := p.Decision.Message
	if reason == "" {
		reason = p.Decision.Reason
	}
	if reason == "" {
		reason = "denied"
	}
	msg := fmt.Sprintf("%s (decision %s)", reason, p.Decision.ID)
	if p.RetryAfter > 0 {
		msg += fmt.Sprintf("; retry after %s", p.RetryAfter.Round(time.Second))
	}
	return msg
}

func decisionMeta(p *gateway.Permit) mcp.Meta {
	return mcp.Meta{"warden/decision": p.Decision.ID, "warden/effect": p.Decision.Effect, "warden/reason": p.Decision.Reason}
}

// codeDenied is the JSON-RPC error code of a method warden did not allow (other than tools/call,
// which gets an isError tool result). It is in the implementation-defined range.
const codeDenied = -32003

func deniedError(p *gateway.Permit) error {
	data, _ := json.Marshal(map[string]string{"decision": p.Decision.ID, "effect": p.Decision.Effect, "reason": p.Decision.Reason})
	return &jsonrpc.Error{Code: codeDenied, Message: denial(p), Data: data}
}

func toolError(msg string, p *gateway.Permit) *mcp.CallToolResult {
	res := &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
	if p != nil {
		res.Meta = decisionMeta(p)
	}
	return res
}

// callInfo is who and which span an upstream HTTP request is for.
type callInfo struct {
	caller *gateway.Caller
	trace  gateway.TraceContext
}

type callInfoKey struct{}

func traceOf(req mcp.Request) gateway.TraceContext {
	if extra := req.GetExtra(); extra != nil && extra.Header != nil {
		return gateway.ParseTraceparent(extra.Header.Get("Traceparent"))
	}
	return gateway.NewTrace()
}

// opCtx is the context of upstream work done for one agent request: the session's values (not
// the downstream request's, which belong to the agent's transport), who it is for, and the
// cancellation of the request, the session and any of extra.
func (s *session) opCtx(ctx context.Context, ci callInfo, extra ...context.Context) (context.Context, context.CancelFunc) {
	return linked(context.WithValue(s.ctx, callInfoKey{}, ci), append(extra, ctx)...)
}

// linked returns a context with parent's values that is also done when any of others is.
func linked(parent context.Context, others ...context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	stops := make([]func() bool, 0, len(others))
	for _, o := range others {
		stops = append(stops, context.AfterFunc(o, cancel))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// forwarded is what came back from one allowed call.
type forwarded struct {
	res      mcp.Result
	err      error
	canceled bool // warden (a kill, the session's end) or the agent cancelled it
}

// forward runs one allowed call upstream and ends its permit with exactly one Done. do gets the
// upstream context and the request's _meta with warden's progress token in place of the agent's.
func (s *session) forward(ctx context.Context, c *gateway.Caller, p *gateway.Permit, meta mcp.Meta, bytesOut int,
	do func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error)) forwarded {
	outcome := gateway.Outcome{Status: warden.StatusError, BytesOut: int64(bytesOut)}
	defer func() { s.g.done(p, outcome) }()
	if p.Tool == nil || p.Tool.Kind != warden.ToolMCP && p.Tool.Kind != warden.ToolMCPCommand {
		return forwarded{err: errors.New("not an MCP tool")}
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: p.Trace}, p.Ctx)
	defer cancel()
	up, err := s.upstream(octx, p.Tool)
	if err != nil {
		outcome.Status = warden.StatusError
		if octx.Err() != nil {
			outcome.Status = warden.StatusCanceled
		}
		return forwarded{err: err, canceled: octx.Err() != nil}
	}
	f, meta := up.begin(s, ctx, meta)
	defer up.end(f)
	start := time.Now()
	res, err := do(context.WithValue(octx, flightKey{}, f), up, meta)
	outcome.Latency = time.Since(start)
	outcome.UpstreamStatus = int(f.status.Load())
	if res != nil {
		if data, merr := json.Marshal(res); merr == nil {
			outcome.BytesIn = int64(len(data))
		}
	}
	switch {
	case err == nil && !isErrorResult(res):
		outcome.Status = warden.StatusOK
	case err != nil && octx.Err() != nil:
		outcome.Status = warden.StatusCanceled
		return forwarded{err: err, canceled: true}
	}
	return forwarded{res: res, err: err}
}

func isErrorResult(r mcp.Result) bool {
	res, ok := r.(*mcp.CallToolResult)
	return ok && res.IsError
}

// answerError turns what went wrong upstream into what the agent gets: the upstream's JSON-RPC
// error as it was, anything else as a short internal error.
func (s *session) answerError(tool string, f forwarded) error {
	var werr *jsonrpc.Error
	if errors.As(f.err, &werr) {
		return werr
	}
	if f.canceled {
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the call was cancelled"}
	}
	s.g.log.Warn("mcp upstream call failed", "tool", tool, "agent", s.agentID, "err", f.err)
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the upstream MCP server " + tool + " failed or is unavailable"}
}

func (s *session) callTool(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.CallToolParamsRaw)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	server, name := s.route(p.Name)
	// A call held for a person's approval waits inside Authorize; it must end with the session,
	// which the SDK's handler context does not: a kill closes the session and waits for this
	// handler to return.
	actx, stop := linked(ctx, s.ctx)
	defer stop()
	call := &gateway.Call{Entry: gateway.EntryMCP, Tool: server, Action: name, Arguments: p.Arguments, Trace: traceOf(req)}
	permit := s.checkToolName(actx, c, call, p.Name)
	if permit == nil {
		permit = s.g.p.Authorize(actx, c, call)
	}
	if !permit.Allowed() {
		res, rpcErr := deniedCall(permit)
		if rpcErr != nil {
			return nil, rpcErr
		}
		return res, nil
	}
	f := s.forward(ctx, c, permit, p.Meta, len(p.Arguments), func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error) {
		var args any
		if len(p.Arguments) > 0 {
			args = p.Arguments
		}
		return up.cs.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: name, Arguments: args})
	})
	if f.err != nil {
		var werr *jsonrpc.Error
		if errors.As(f.err, &werr) {
			return nil, werr
		}
		if ctx.Err() != nil {
			return nil, ctx.Err() // the agent cancelled; it expects no answer
		}
		return s.failedCall(server, permit, f.canceled, f.err), nil
	}
	res, _ := f.res.(*mcp.CallToolResult)
	if res == nil {
		res = &mcp.CallToolResult{}
	}
	if res.Content == nil {
		res.Content = []mcp.Content{}
	}
	s.namer(server).contents(res.Content)
	return res, nil
}

// failedCall is the tool result of an allowed call that did not complete: cancelled by warden
// (a kill, the session's end), or failed upstream, which is logged.
func (s *session) failedCall(server string, p *gateway.Permit, canceled bool, err error) *mcp.CallToolResult {
	if canceled {
		return toolError(fmt.Sprintf("the call was cancelled by warden (decision %s)", p.Decision.ID), p)
	}
	s.g.log.Warn("mcp upstream call failed", "tool", server, "agent", s.agentID, "err", err)
	return toolError(fmt.Sprintf("the upstream MCP server %s failed or is unavailable (decision %s)", server, p.Decision.ID), p)
}

// route splits an agent-facing tool or prompt name into tool-server and upstream name.
func (s *session) route(name string) (server, upstreamName string) {
	if s.ep.tool != "" {
		return s.ep.tool, name
	}
	return splitName(name)
}

func (s *session) routeURI(uri string) (server, upstreamURI string) {
	if s.ep.tool != "" {
		return s.ep.tool, uri
	}
	return splitURI(uri)
}

func (s *session) namer(server string) namer { return namer{server: server, agg: s.ep.tool == ""} }

// authorized runs a non-tool method through the pipeline and forwards it if allowed.
func (s *session) authorized(ctx context.Context, req mcp.Request, c *gateway.Caller, server, action, resource string, args json.RawMessage,
	meta mcp.Meta, do func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error)) (mcp.Result, error) {
	actx, stop := linked(ctx, s.ctx) // as in callTool: a held call ends with the session
	defer stop()
	permit := s.g.p.Authorize(actx, c, &gateway.Call{
		Entry: gateway.EntryMCP, Tool: server, Action: action, Resource: resource, Arguments: args, Trace: traceOf(req),
	})
	if !permit.Allowed() {
		return nil, deniedError(permit)
	}
	f := s.forward(ctx, c, permit, meta, len(args), do)
	if f.err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.answerError(server, f)
	}
	return f.res, nil
}

func (s *session) readResource(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.ReadResourceParams)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	server, uri := s.routeURI(p.URI)
	res, err := s.authorized(ctx, req, c, server, "resources/read", uri, nil, p.Meta,
		func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error) {
			return up.cs.ReadResource(ctx, &mcp.ReadResourceParams{Meta: meta, URI: uri})
		})
	if r, ok := res.(*mcp.ReadResourceResult); ok && err == nil {
		s.namer(server).resourceContents(r.Contents)
	}
	return res, err
}

func (s *session) getPrompt(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.GetPromptParams)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	server, name := s.route(p.Name)
	var args json.RawMessage
	if p.Arguments != nil {
		args, _ = json.Marshal(p.Arguments)
	}
	res, err := s.authorized(ctx, req, c, server, "prompts/get", name, args, p.Meta,
		func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error) {
			return up.cs.GetPrompt(ctx, &mcp.GetPromptParams{Meta: meta, Name: name, Arguments: p.Arguments})
		})
	if r, ok := res.(*mcp.GetPromptResult); ok && err == nil {
		n := s.namer(server)
		for _, m := range r.Messages {
			if m != nil && m.Content != nil {
				n.contents([]mcp.Content{m.Content})
			}
		}
	}
	return res, err
}

func (s *session) complete(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.CompleteParams)
	if p == nil || p.Ref == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing required 'ref'"}
	}
	ref := *p.Ref
	var server, resource string
	switch ref.Type {
	case "ref/prompt":
		server, ref.Name = s.route(ref.Name)
		resource = ref.Name
	case "ref/resource":
		server, ref.URI = s.routeURI(ref.URI)
		resource = ref.URI
	default:
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "unknown reference type " + ref.Type}
	}
	args, _ := json.Marshal(struct {
		Argument mcp.CompleteParamsArgument `json:"argument"`
		Context  *mcp.CompleteContext       `json:"context,omitempty"`
	}{p.Argument, p.Context})
	return s.authorized(ctx, req, c, server, "completion/complete", resource, args, p.Meta,
		func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error) {
			return up.cs.Complete(ctx, &mcp.CompleteParams{Meta: meta, Argument: p.Argument, Context: p.Context, Ref: &ref})
		})
}

func (s *session) subscribe(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.SubscribeParams)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	server, uri := s.routeURI(p.URI)
	return s.authorized(ctx, req, c, server, "resources/subscribe", uri, nil, p.Meta,
		func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error) {
			if up.st != nil {
				if err := up.st.subscribe(ctx, s, uri); err != nil {
					return nil, err
				}
				return &emptyResult{}, nil
			}
			if err := up.cs.Subscribe(ctx, &mcp.SubscribeParams{Meta: meta, URI: uri}); err != nil {
				return nil, err
			}
			s.mu.Lock()
			s.subs[resourceKey{server, uri}] = true
			s.mu.Unlock()
			return &emptyResult{}, nil
		})
}

// unsubscribe only gives something up, so it needs no decision; it reaches upstream only for
// what this session subscribed to.
func (s *session) unsubscribe(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.UnsubscribeParams)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	server, uri := s.routeURI(p.URI)
	tool := s.g.tool(server)
	if tool == nil {
		return &emptyResult{}, nil
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: traceOf(req).Child()})
	defer cancel()
	if tool.Kind == warden.ToolMCPCommand {
		s.mu.Lock()
		var st *stdioServer
		for x := range s.shared {
			if x.tool.Name == server {
				st = x
			}
		}
		s.mu.Unlock()
		if st != nil {
			st.unsubscribe(octx, s, uri)
		}
		return &emptyResult{}, nil
	}
	key := resourceKey{server, uri}
	s.mu.Lock()
	subscribed := s.subs[key]
	delete(s.subs, key)
	l := s.links[server]
	s.mu.Unlock()
	if !subscribed || l == nil {
		return &emptyResult{}, nil
	}
	up, err := s.remote(octx, tool)
	if err != nil {
		return nil, s.answerError(server, forwarded{err: err})
	}
	if err := up.cs.Unsubscribe(octx, &mcp.UnsubscribeParams{Meta: p.Meta, URI: uri}); err != nil {
		return nil, s.answerError(server, forwarded{err: err})
	}
	return &emptyResult{}, nil
}

func (s *session) setLevel(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.SetLoggingLevelParams)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	if levelRank(p.Level) < 0 {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown logging level %q", p.Level)}
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: traceOf(req).Child()})
	defer cancel()
	s.mu.Lock()
	s.level = p.Level
	var shared []*stdioServer
	for st := range s.shared {
		shared = append(shared, st)
	}
	s.mu.Unlock()
	if s.ep.tool != "" {
		// One upstream: its answer is the answer.
		tool := s.g.tool(s.ep.tool)
		if tool == nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "no MCP tool named " + s.ep.tool}
		}
		up, err := s.upstream(octx, tool)
		if err != nil {
			return nil, s.answerError(tool.Name, forwarded{err: err})
		}
		if up.st != nil {
			err = up.st.setLevel(octx, s, p.Level)
		} else {
			err = up.cs.SetLoggingLevel(octx, &mcp.SetLoggingLevelParams{Meta: p.Meta, Level: p.Level})
		}
		if err != nil {
			return nil, s.answerError(tool.Name, forwarded{err: err})
		}
		return &emptyResult{}, nil
	}
	for _, up := range s.remotes() {
		if err := up.cs.SetLoggingLevel(octx, &mcp.SetLoggingLevelParams{Level: p.Level}); err != nil {
			s.g.log.Debug("mcp upstream refused logging/setLevel", "tool", up.tool.Name, "err", err)
		}
	}
	for _, st := range shared {
		if err := st.setLevel(octx, s, p.Level); err != nil {
			s.g.log.Debug("mcp upstream refused logging/setLevel", "tool", st.tool.Name, "err", err)
		}
	}
	return &emptyResult{}, nil
}

// rootsChanged tells the session's own upstreams that the agent's roots changed. Shared servers
// are not offered roots.
func (s *session) rootsChanged(ctx context.Context, c *gateway.Caller) {
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: s.trace.Child()})
	defer cancel()
	for _, up := range s.remotes() {
		if _, err := clientSend(octx, "notifications/roots/list_changed", up.cs, &mcp.RootsListChangedParams{}); err != nil {
			s.g.log.Debug("relaying roots/list_changed failed", "tool", up.tool.Name, "err", err)
		}
	}
}

// levelRank orders logging levels from debug (0) to emergency (7); -1 is not a level.
func levelRank(l mcp.LoggingLevel) int {
	for i, x := range []mcp.LoggingLevel{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"} {
		if l == x {
			return i
		}
	}
	return -1
}
