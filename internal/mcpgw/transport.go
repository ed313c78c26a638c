package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// sdkTransport carries a tools/call over the SDK client session of its upstream: every call to
// a local (stdio) server (a remote one's calls go by relayTransport, whichever way they came
// in). The SDK relates what the upstream sends during the call to it; warden's
// readers relay the notifications in wire order (order.go) through the router (notify.go).
type sdkTransport struct{ s *session }

func (sdkTransport) stream() *replier { return nil }

func (t sdkTransport) callTool(ctx context.Context, up *upstream, server, name string, tc *toolCall, meta mcp.Meta) (toolReply, error) {
	var args any
	if len(tc.args) > 0 {
		args = tc.args
	}
	res, err := up.cs.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: name, Arguments: args})
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		data, merr := json.Marshal(werr)
		if merr != nil {
			return toolReply{}, err
		}
		return toolReply{rpcErr: data}, nil
	}
	if err != nil {
		return toolReply{}, err
	}
	if res == nil {
		res = &mcp.CallToolResult{}
	}
	if res.Content == nil {
		res.Content = []mcp.Content{}
	}
	t.s.namer(server).contents(res.Content)
	return toolReply{typed: res, isError: res.IsError}, nil
}

// dial opens a session to a remote (streamable HTTP) upstream for one downstream session. The
// upstream sees the capabilities of the agent's client, and every HTTP request carries the
// brokered credential and who acts — never the agent's token.
func (g *Server) dial(s *session, tool *warden.Tool) (*upstream, error) {
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
		if err := setUpstreamLevel(ctx, cs, nil, level); err != nil {
			g.log.Debug("mcp upstream refused logging/setLevel", "tool", tool.Name, "err", err)
		}
	}
	return up, nil
}

// broker adds Pipeline.UpstreamHeaders to every HTTP request of a remote upstream session: for
// the call in flight when the request carries one, else for the session's agent.
type broker struct {
	g    *Server
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
	if f, ok := r.Context().Value(flightKey{}).(*flight); ok && r.Method == http.MethodPost && resp.StatusCode == http.StatusOK &&
		wire.MediaType(resp.Header.Get("Content-Type")) == "application/json" {
		// The call's answer as one JSON body: measure it (flight.bytesIn), then hand it on.
		data, err := io.ReadAll(io.LimitReader(resp.Body, relayLimit+1))
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > relayLimit {
			return nil, wire.ErrTooLarge
		}
		if m, ok := wire.Read(data); ok && m.IsResponse() {
			f.bytesIn.Store(int64(len(m.Result) + len(m.Error)))
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
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
func (g *Server) broker(ctx context.Context, ci callInfo, tool *warden.Tool, h http.Header) error {
	brokered, err := g.p.UpstreamHeaders(ctx, ci.caller, tool, ci.trace)
	if err != nil {
		return err
	}
	h.Del("Authorization")
	h.Del("Cookie")
	gateway.StripOverrideHeaders(h)
	for k, vs := range brokered {
		h[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	return nil
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
