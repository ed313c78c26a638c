package mcpgw

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden/internal/mcpgw/wire"

	"github.com/wardenhq/warden"
)

// An upstream is one client session to an upstream MCP server: either the session of one
// downstream session to a remote server (owner set) or the session to a shared local server
// (st set).
type upstream struct {
	g     *Gateway
	tool  *warden.Tool
	cs    *mcp.ClientSession
	owner *session
	st    *stdioServer
	proc  *exec.Cmd // a local server's process

	mu      sync.Mutex
	flights map[*flight]struct{} // calls in flight on this upstream session
	tokens  map[string]*flight   // warden's progress token → call
	seq     uint64

	callSeq atomic.Uint64 // ids of the calls the lean relay sends

	// The tools the upstream listed (toolnames.go), guarded by mu; listMu makes one listing
	// at a time.
	tools    *toolList
	toolsGen uint64 // raised by every notifications/tools/list_changed
	listMu   sync.Mutex
}

// flightKey marks the context of an upstream call with its flight, so that what arrives on that
// call's stream is related to it.
type flightKey struct{}

// A flight is one agent call in flight upstream.
type flight struct {
	s      *session
	ctx    context.Context // the agent request's context: what is sent with it joins that request's stream
	token  any             // the agent's progress token; nil if it gave none
	status atomic.Int32    // the HTTP status of the call's POST to a remote upstream
}

func newUpstream(g *Gateway, tool *warden.Tool) *upstream {
	return &upstream{g: g, tool: tool, flights: make(map[*flight]struct{}), tokens: make(map[string]*flight)}
}

// dial opens a session to a remote (streamable HTTP) upstream for one downstream session. The
// upstream sees the capabilities of the agent's client, and every HTTP request carries the
// brokered credential and who acts — never the agent's token.
func (g *Gateway) dial(s *session, tool *warden.Tool) (*upstream, error) {
	if tool.URL == "" {
		return nil, fmt.Errorf("tool %s has no URL", tool.Name)
	}
	up := newUpstream(g, tool)
	up.owner = s
	br := &broker{g: g, s: s, tool: tool, base: g.client.Transport, up: up}
	caps := *s.caps
	client := mcp.NewClient(&mcp.Implementation{Name: "warden", Version: g.opts.Version}, &mcp.ClientOptions{
		Logger:         g.sdkLog,
		Capabilities:   &caps,
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	})
	client.AddReceivingMiddleware(up.receive)
	transport := &mcp.StreamableClientTransport{
		Endpoint: tool.URL,
		HTTPClient: &http.Client{
			Transport:     br,
			CheckRedirect: g.client.CheckRedirect,
		},
	}
	// The connection keeps this context's values for its background requests (the standalone
	// stream, the final DELETE): the session's, not any one call's.
	ctx, cancel := context.WithTimeout(s.ctx, g.opts.UpstreamTimeout)
	defer cancel()
	cs, err := client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: wire.UpstreamVersion(s.version)})
	if err != nil {
		return nil, err
	}
	up.cs = cs
	if !g.goOwned(func() {
		_ = cs.Wait()
		s.upstreamGone(up)
	}) {
		up.close()
		return nil, errClosed
	}
	if level := s.logLevel(); level != "" {
		if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: level}); err != nil {
			g.log.Debug("mcp upstream refused logging/setLevel", "tool", tool.Name, "err", err)
		}
	}
	return up, nil
}

func (up *upstream) close() {
	if err := up.cs.Close(); err != nil {
		up.g.log.Debug("closing mcp upstream session", "tool", up.tool.Name, "err", err)
	}
}

// broker adds Pipeline.UpstreamHeaders to every HTTP request of a remote upstream session: for
// the call in flight when the request carries one, else for the session's agent.
type broker struct {
	g    *Gateway
	s    *session
	tool *warden.Tool
	base http.RoundTripper
	up   *upstream
}

func (b *broker) RoundTrip(r *http.Request) (*http.Response, error) {
	ci, ok := r.Context().Value(callInfoKey{}).(callInfo)
	if !ok || ci.caller == nil {
		ci = callInfo{caller: b.s.caller.Load(), trace: b.s.trace}
	}
	out := r.Clone(r.Context())
	if err := b.g.broker(r.Context(), ci, b.tool, out.Header); err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	resp, err := b.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK && wire.MediaType(resp.Header.Get("Content-Type")) == "text/event-stream" {
		// Relay notifications in the order they come (see order.go), related to the call
		// whose POST this stream answers.
		f, _ := r.Context().Value(flightKey{}).(*flight)
		resp.Body = newSSEFilter(resp.Body, b.up, f)
	}
	if f, ok := r.Context().Value(flightKey{}).(*flight); ok && r.Method == http.MethodPost {
		f.status.Store(int32(resp.StatusCode))
	}
	return resp, nil
}

// broker sets in h what goes upstream on a request for the call ci: the brokered credential and
// who acts (Pipeline.UpstreamHeaders). No credential but the brokered one rides along, whatever
// h held.
func (g *Gateway) broker(ctx context.Context, ci callInfo, tool *warden.Tool, h http.Header) error {
	brokered, err := g.p.UpstreamHeaders(ctx, ci.caller, tool, ci.trace)
	if err != nil {
		return err
	}
	h.Del("Authorization")
	h.Del("Cookie")
	for k, vs := range brokered {
		h[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	return nil
}

// begin records a call in flight and swaps the agent's progress token for one of warden's, so
// progress from this upstream finds its way back to exactly this call.
func (up *upstream) begin(s *session, ctx context.Context, meta mcp.Meta) (*flight, mcp.Meta) {
	f := &flight{s: s, ctx: ctx}
	up.mu.Lock()
	defer up.mu.Unlock()
	up.flights[f] = struct{}{}
	if tok, ok := meta["progressToken"]; ok && tok != nil {
		f.token = tok
		up.seq++
		wt := "warden-" + strconv.FormatUint(up.seq, 10)
		up.tokens[wt] = f
		m := make(mcp.Meta, len(meta))
		for k, v := range meta {
			m[k] = v
		}
		m["progressToken"] = wt
		meta = m
	}
	return f, meta
}

func (up *upstream) end(f *flight) {
	up.mu.Lock()
	defer up.mu.Unlock()
	delete(up.flights, f)
	for k, v := range up.tokens {
		if v == f {
			delete(up.tokens, k)
		}
	}
}

// target is where a message of this upstream that names no call goes: the one call in flight;
// else, for a session's own upstream, that session's standalone stream; else nowhere.
func (up *upstream) target() (*session, context.Context, bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.flights) == 1 {
		for f := range up.flights {
			return f.s, f.ctx, true
		}
	}
	if up.owner != nil {
		return up.owner, up.owner.ctx, true
	}
	return nil, nil, false
}

// sessions returns the downstream sessions this upstream serves.
func (up *upstream) sessions() []*session {
	if up.owner != nil {
		return []*session{up.owner}
	}
	return up.st.sessionList()
}

// receive relays what the upstream server sends to its client — warden — to the agents:
// requests here, notifications mostly where they are read (see order.go); any that reach the
// SDK's queue anyway are relayed here.
func (up *upstream) receive(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "sampling/createMessage", "elicitation/create", "roots/list":
			return up.relayRequest(ctx, method, req.GetParams())
		}
		if _, ok := relayedNotifications[method]; ok {
			up.deliver(nil, method, req.GetParams())
			return nil, nil
		}
		return next(ctx, method, req)
	}
}

// deliver relays a notification of the upstream; f is the call whose stream it came on, if
// known.
func (up *upstream) deliver(f *flight, method string, params mcp.Params) {
	switch p := params.(type) {
	case *mcp.ProgressNotificationParams:
		up.relayProgress(p)
	case *mcp.LoggingMessageParams:
		up.relayLog(f, p)
	case *mcp.ResourceUpdatedNotificationParams:
		up.relayUpdated(p)
	case *mcp.ElicitationCompleteParams:
		up.relayElicitationComplete(p)
	case *mcp.ToolListChangedParams, *mcp.PromptListChangedParams, *mcp.ResourceListChangedParams:
		if _, ok := params.(*mcp.ToolListChangedParams); ok {
			up.forgetTools()
		}
		for _, s := range up.sessions() {
			up.notify(s, s.ctx, method, params)
		}
	}
}

func (up *upstream) relayRequest(ctx context.Context, method string, params mcp.Params) (mcp.Result, error) {
	s, tctx, ok := up.target()
	if !ok {
		up.g.log.Info("refused a request from a shared mcp server: no single agent call to relay it to", "tool", up.tool.Name, "method", method)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
			Message: "warden relays " + method + " from a shared server only during exactly one agent call"}
	}
	if !s.supports(method, params) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "the agent's client does not support " + method}
	}
	if p, ok := params.(*mcp.ElicitParams); ok && p.ElicitationID != "" && up.st != nil {
		up.st.noteElicitation(p.ElicitationID, s)
	}
	// Related to the agent's call (its stream), ended by either side's cancellation.
	rctx, cancel := linked(tctx, ctx)
	defer cancel()
	return serverSend(rctx, method, s.ss, params)
}

func (up *upstream) relayProgress(p *mcp.ProgressNotificationParams) {
	tok, _ := p.ProgressToken.(string)
	up.mu.Lock()
	f := up.tokens[tok]
	up.mu.Unlock()
	if f == nil || f.token == nil {
		return
	}
	q := *p
	q.ProgressToken = f.token
	if err := f.s.ss.NotifyProgress(f.ctx, &q); err != nil {
		up.g.log.Debug("relaying progress failed", "tool", up.tool.Name, "err", err)
	}
}

func (up *upstream) relayLog(f *flight, p *mcp.LoggingMessageParams) {
	s, tctx, ok := up.target()
	if f != nil {
		s, tctx, ok = f.s, f.ctx, true
	}
	if !ok {
		return
	}
	if up.st != nil {
		// A shared server's verbosity is the most verbose any of its sessions asked for.
		lvl := s.logLevel()
		if lvl == "" || levelRank(p.Level) < levelRank(lvl) {
			return
		}
	}
	q := *p
	if s.ep.tool == "" {
		q.Logger = joinName(up.tool.Name, p.Logger)
		if p.Logger == "" {
			q.Logger = up.tool.Name
		}
	}
	up.notify(s, tctx, "notifications/message", &q)
}

func (up *upstream) relayUpdated(p *mcp.ResourceUpdatedNotificationParams) {
	var to []*session
	if up.st != nil {
		to = up.st.subscribers(p.URI)
	} else {
		to = up.sessions()
	}
	for _, s := range to {
		q := *p
		q.URI = s.namer(up.tool.Name).uri(p.URI)
		up.notify(s, s.ctx, "notifications/resources/updated", &q)
	}
}

func (up *upstream) relayElicitationComplete(p *mcp.ElicitationCompleteParams) {
	var s *session
	if up.st != nil {
		s = up.st.takeElicitation(p.ElicitationID)
	} else {
		s = up.owner
	}
	if s != nil {
		up.notify(s, s.ctx, "notifications/elicitation/complete", p)
	}
}

// notify sends a notification to the agent of a session; ctx decides which stream it joins.
func (up *upstream) notify(s *session, ctx context.Context, method string, params mcp.Params) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := serverSend(ctx, method, s.ss, params); err != nil {
		up.g.log.Debug("relaying an mcp notification failed", "tool", up.tool.Name, "method", method, "err", err)
	}
}

// The SDK sends typed messages only; a relay needs to send any method with the params it got.
// A sending middleware receives the SDK's innermost sender, which sends (method, params) on the
// request's session: capture it once, for servers and for clients.
var (
	captureOnce sync.Once
	serverRaw   mcp.MethodHandler
	clientRaw   mcp.MethodHandler
)

func capture() {
	captureOnce.Do(func() {
		s := mcp.NewServer(&mcp.Implementation{Name: "capture"}, nil)
		s.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler { serverRaw = next; return next })
		c := mcp.NewClient(&mcp.Implementation{Name: "capture"}, &mcp.ClientOptions{MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true}})
		c.AddSendingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler { clientRaw = next; return next })
	})
}

// serverSend sends method with params to the agent of ss (a request returns its result).
func serverSend(ctx context.Context, method string, ss *mcp.ServerSession, params mcp.Params) (mcp.Result, error) {
	capture()
	return serverRaw(ctx, method, &mcp.ServerRequest[mcp.Params]{Session: ss, Params: params})
}

// clientSend sends method with params to the upstream server of cs.
func clientSend(ctx context.Context, method string, cs *mcp.ClientSession, params mcp.Params) (mcp.Result, error) {
	capture()
	return clientRaw(ctx, method, &mcp.ClientRequest[mcp.Params]{Session: cs, Params: params})
}
