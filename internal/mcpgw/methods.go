package mcpgw

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

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

// callTool serves a tools/call that came through the SDK's server (the lean relay serves the
// others, relay.go): the core decides and forwards it over the SDK client.
func (s *session) callTool(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	p, _ := req.GetParams().(*mcp.CallToolParamsRaw)
	if p == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	a := s.call(ctx, c, &toolCall{name: p.Name, args: p.Arguments, meta: p.Meta, trace: traceOf(req)}, nil, nil)
	switch {
	case a.refusal != nil:
		return nil, a.refusal
	case a.silent:
		return nil, ctx.Err() // the agent cancelled; it expects no answer
	case a.result != nil:
		return a.result, nil
	case a.reply.rpcErr != nil:
		werr := &jsonrpc.Error{}
		if err := json.Unmarshal(a.reply.rpcErr, werr); err != nil {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the upstream MCP server answered with a malformed error"}
		}
		return nil, werr
	}
	if a.reply.typed == nil {
		// Both transports give the SDK entry a decoded result (relayTransport when it has no
		// stream of its own).
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the upstream MCP server's answer was not a tool result"}
	}
	return a.reply.typed, nil
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
	level, meta, ok := levelParams(req)
	if !ok {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "missing params"}
	}
	if levelRank(level) < 0 {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf("unknown logging level %q", level)}
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: traceOf(req).Child()})
	defer cancel()
	s.mu.Lock()
	s.level = level
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
			err = up.st.setLevel(octx, s, level)
		} else {
			err = setUpstreamLevel(octx, up.cs, meta, level)
		}
		if err != nil {
			return nil, s.answerError(tool.Name, forwarded{err: err})
		}
		return &emptyResult{}, nil
	}
	for _, up := range s.remotes() {
		if err := setUpstreamLevel(octx, up.cs, nil, level); err != nil {
			s.g.log.Debug("mcp upstream refused logging/setLevel", "tool", up.tool.Name, "err", err)
		}
	}
	for _, st := range shared {
		if err := st.setLevel(octx, s, level); err != nil {
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
		if err := rootsListChanged(octx, up.cs); err != nil {
			s.g.log.Debug("relaying roots/list_changed failed", "tool", up.tool.Name, "err", err)
		}
	}
}

// levelRank orders logging levels from debug (0) to emergency (7); -1 is not a level.
func levelRank(l logLevel) int {
	for i, x := range []logLevel{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"} {
		if l == x {
			return i
		}
	}
	return -1
}
