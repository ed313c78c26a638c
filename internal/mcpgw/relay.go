package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/loopback"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// The lean relay. Through the SDK, one tools/call is decoded and encoded a dozen times on its
// way through warden's server half and client half, which costs several times what the
// pipeline does. So warden relays tools/call to a remote (streamable HTTP) upstream itself,
// when it can do so with the same meaning: the call is a plain JSON-RPC request on a session
// warden knows, of the agent that owns it, with nothing the SDK would refuse. Anything else — a
// local server, another method, a call with members the relay does not know — goes through the
// SDK as before; the choice is made before the call is decided. The agent's upstream session is
// the SDK client session the rest of its traffic uses (connected by the relay if it is the
// first use), so the upstream sees one session either way.
//
// The relay is an entry and a transport, not a second call path: the name check, the
// decision, the permit and the outcome are the forwarding core's (core.go), as for a call
// through the SDK. The relay transport adds the brokered headers to its upstream request and
// sends warden's progress token in place of the agent's; the notification router (notify.go)
// puts the upstream's progress and log notifications related to the call on the call's own
// stream, and the relay passes on the upstream's sampling, elicitation and roots requests there
// too, whose answers the agent POSTs back and warden forwards upstream. The agent gets a JSON response
// when nothing else travels with the answer, else an SSE stream. The agent's
// notifications/cancelled for a relayed call cancels it, upstream too.

// relayLimit bounds one message of a relayed upstream response.
const relayLimit = 32 << 20

// A pendingRequest is a server→client request of an upstream that warden relayed to the agent
// on a call's stream, waiting for the agent's answer.
type pendingRequest struct {
	up    *upstream
	id    json.RawMessage // the upstream's id
	ctx   context.Context // the call's upstream context
	call  callInfo
	owner *relayedCall
}

// A relayedCall is a tools/call the relay is serving.
type relayedCall struct {
	cancel context.CancelFunc
}

// relay serves a POST that the lean relay can take, and reports whether it did; false means
// nothing was written or sent, and the SDK should have the request.
func (g *Server) relay(w http.ResponseWriter, r *http.Request, s *session, c *gateway.Caller, msg wire.Message) bool {
	if !g.relayable(r, s) {
		return false
	}
	switch {
	case msg.Method == "tools/call" && msg.IsRequest():
		return s.relayCall(w, r, c, msg)
	case msg.Method == "notifications/cancelled" && msg.IsNotification():
		return s.relayCancel(w, msg)
	case msg.IsResponse():
		return s.relayAnswer(w, msg)
	}
	return false
}

// relayable reports whether the request has nothing the SDK's handler would refuse or treat
// differently.
func (g *Server) relayable(r *http.Request, s *session) bool {
	if !wire.Stateful(s.version) {
		return false
	}
	if v := r.Header.Get("Mcp-Protocol-Version"); v != "" && v != s.version {
		return false
	}
	if wire.MediaType(r.Header.Get("Content-Type")) != "application/json" {
		return false
	}
	if jsonOK, streamOK := wire.Accepts(r.Header.Values("Accept")); !jsonOK || !streamOK {
		return false
	}
	if !g.opts.DisableLocalhostProtection {
		// The SDK's DNS rebinding check: a loopback listener takes loopback Host names only.
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && addr != nil &&
			loopback.Host(addr.String()) && !loopback.Host(r.Host) {
			return false
		}
	}
	return true
}

// relayCall serves a tools/call (see the top of this file): the core decides and forwards it
// over the raw relay transport, and the answer is written here.
func (s *session) relayCall(w http.ResponseWriter, r *http.Request, c *gateway.Caller, msg wire.Message) bool {
	p, ok := wire.ParseCallParams(msg.Params)
	if !ok {
		return false
	}
	server, _ := s.route(p.Name)
	tool := s.g.tool(server)
	if tool == nil || tool.Kind != warden.ToolMCP {
		return false
	}
	key := string(msg.ID)
	callCtx, cancelCall := context.WithCancel(r.Context())
	defer cancelCall()
	rc := &relayedCall{cancel: cancelCall}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	if _, dup := s.calls[key]; dup {
		s.mu.Unlock()
		writeRPCError(w, http.StatusBadRequest, msg.ID, jsonrpc.CodeInvalidRequest, "duplicate in-flight request ID "+key)
		return true
	}
	s.calls[key] = rc
	s.mu.Unlock()
	defer s.endCall(key, rc)
	s.caller.Store(c)

	out := &replier{w: w, id: msg.ID, sessionID: s.ss.ID()}
	defer out.end() // nothing reaches w once this handler returns
	var meta mcp.Meta
	if bytes.Contains(p.Meta, []byte(`"progressToken"`)) {
		if err := json.Unmarshal(p.Meta, &meta); err != nil {
			meta = nil
		}
	}
	a := s.call(callCtx, c, &toolCall{
		name: p.Name, args: p.Args, meta: meta, rawMeta: p.Meta,
		trace: gateway.ParseTraceparent(r.Header.Get("Traceparent")),
	}, out, rc)
	switch {
	case a.refusal != nil:
		data, _ := json.Marshal(a.refusal)
		out.final(wire.Append(nil, msg.ID, "", nil, nil, data))
	case a.silent:
		out.end() // the agent cancelled or went away; it expects no answer
	case a.result != nil:
		out.toolResult(a.result)
	case a.reply.rpcErr != nil:
		out.final(wire.Append(nil, msg.ID, "", nil, nil, a.reply.rpcErr))
	default:
		out.final(wire.Append(nil, msg.ID, "", nil, a.reply.raw, nil))
	}
	return true
}

// relayTransport carries a tools/call to a remote upstream: a POST on the agent's upstream
// session, whose answer it reads itself, relaying what comes before the response to the agent:
// on the call's own stream (out) when the lean relay serves the call, else through the SDK's
// server on the stream of the agent's request.
type relayTransport struct {
	s     *session
	out   *replier
	owner *relayedCall
}

func (t *relayTransport) stream() *replier { return t.out }

func (t *relayTransport) callTool(ctx context.Context, up *upstream, server, name string, tc *toolCall, meta mcp.Meta) (toolReply, error) {
	f, _ := ctx.Value(flightKey{}).(*flight)
	ci, _ := ctx.Value(callInfoKey{}).(callInfo)
	rawMeta := tc.rawMeta
	if meta != nil {
		rawMeta, _ = json.Marshal(meta) // with warden's progress token
	}
	call := &upstreamCall{s: t.s, up: up, f: f, ci: ci, ctx: ctx, out: t.out, owner: t.owner}
	res, rpcErr, err := call.run(name, wire.CallParams{Name: name, Args: tc.args, Meta: rawMeta})
	f.bytesIn.Store(int64(len(res) + len(rpcErr)))
	switch {
	case err != nil:
		if ctx.Err() != nil {
			call.cancelUpstream()
		}
		return toolReply{}, err
	case rpcErr != nil:
		return toolReply{rpcErr: rpcErr}, nil
	}
	if t.out == nil {
		// The SDK's server sends the answer, and can send only what it decodes: decode here,
		// so a result it cannot carry is this call's recorded error, not an ok the agent never got.
		var full mcp.CallToolResult
		if err := json.Unmarshal(res, &full); err != nil {
			return toolReply{}, fmt.Errorf("the result is not a tool result: %w", err)
		}
		if full.Content == nil {
			full.Content = []mcp.Content{}
		}
		t.s.namer(server).contents(full.Content)
		return toolReply{typed: &full, isError: full.IsError}, nil
	}
	result, isError, ok := t.s.callResult(server, res)
	if !ok {
		return toolReply{}, errors.New("the result is not a tool result")
	}
	return toolReply{raw: result, isError: isError}, nil
}

// callResult checks an upstream's tool result and makes it what the agent gets: content always
// present and, on /mcp, the URIs in it named for the agent. The common result passes as it
// came.
func (s *session) callResult(server string, res json.RawMessage) (json.RawMessage, bool, bool) {
	var head struct {
		Content json.RawMessage `json:"content"`
		IsError bool            `json:"isError"`
	}
	if len(res) == 0 || res[0] != '{' || json.Unmarshal(res, &head) != nil {
		return nil, false, false
	}
	if len(head.Content) > 0 && head.Content[0] == '[' && (s.ep.tool != "" || !bytes.Contains(res, []byte(`"uri"`))) {
		return res, head.IsError, true
	}
	var full mcp.CallToolResult
	if err := json.Unmarshal(res, &full); err != nil {
		return nil, false, false
	}
	if full.Content == nil {
		full.Content = []mcp.Content{}
	}
	s.namer(server).contents(full.Content)
	data, err := json.Marshal(&full)
	if err != nil {
		return nil, false, false
	}
	return data, full.IsError, true
}

func (s *session) endCall(key string, rc *relayedCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[key] == rc {
		delete(s.calls, key)
	}
	for id, p := range s.pending {
		if p.owner == rc {
			delete(s.pending, id)
		}
	}
}

// relayCancel serves the agent's notifications/cancelled for a call the relay is serving.
func (s *session) relayCancel(w http.ResponseWriter, msg wire.Message) bool {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if err := json.Unmarshal(msg.Params, &p); err != nil || p.RequestID == nil {
		return false
	}
	s.mu.Lock()
	rc := s.calls[string(p.RequestID)]
	s.mu.Unlock()
	if rc == nil {
		return false
	}
	rc.cancel()
	w.WriteHeader(http.StatusAccepted)
	return true
}

// relayAnswer forwards the agent's answer to a server→client request the relay passed on.
func (s *session) relayAnswer(w http.ResponseWriter, msg wire.Message) bool {
	s.mu.Lock()
	p := s.pending[string(msg.ID)]
	delete(s.pending, string(msg.ID))
	s.mu.Unlock()
	if p == nil {
		return false
	}
	body := wire.Append(nil, p.id, "", nil, msg.Result, msg.Error)
	if err := p.up.post(p.ctx, p.call, body, nil); err != nil {
		s.g.log.Debug("relaying an answer upstream failed", "tool", p.up.tool.Name, "err", err)
	}
	w.WriteHeader(http.StatusAccepted)
	return true
}

// An upstreamCall is one relayed tools/call on its way upstream and back.
type upstreamCall struct {
	s     *session
	up    *upstream
	f     *flight
	ci    callInfo
	ctx   context.Context
	out   *replier
	owner *relayedCall
	id    json.RawMessage // warden's id of the upstream request

	mu     sync.Mutex
	viaSDK map[string]context.CancelFunc // the upstream's requests relayed through the SDK, by its id
}

// run sends the call upstream and reads the upstream's answer: its result or JSON-RPC error,
// relaying what comes before it.
func (c *upstreamCall) run(name string, p wire.CallParams) (result, rpcErr json.RawMessage, err error) {
	c.id = json.RawMessage(`"warden-` + strconv.FormatUint(c.up.callSeq.Add(1), 10) + `"`)
	params := wire.AppendCallParams(make([]byte, 0, 64+len(name)+len(p.Args)+len(p.Meta)), name, p.Args, p.Meta)
	body := wire.Append(make([]byte, 0, len(params)+64), c.id, "tools/call", params, nil, nil)

	var answer wire.Message
	found := false
	err = c.up.send(c.ctx, c.ci, body, c.f, func(data []byte) error {
		m, ok := wire.Read(data)
		if !ok {
			return errors.New("an upstream message is not JSON-RPC")
		}
		if m.IsResponse() {
			if wire.SameID(m.ID, c.id) {
				answer, found = m, true
				return wire.ErrStop
			}
			return nil
		}
		c.handle(m)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if !found {
		return nil, nil, errors.New("the upstream answered without a response to the call")
	}
	return answer.Result, answer.Error, nil
}

// cancelUpstream tells the upstream that warden gave up the call, as the SDK does.
func (c *upstreamCall) cancelUpstream() {
	if c.id == nil {
		return
	}
	params, _ := json.Marshal(struct {
		RequestID json.RawMessage `json:"requestId"`
		Reason    string          `json:"reason"`
	}{c.id, "cancelled"})
	body := wire.Append(nil, nil, "notifications/cancelled", params, nil, nil)
	up, ci := c.up, c.ci
	send := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
		defer cancel()
		_ = up.post(ctx, ci, body, nil)
	}
	up.g.goOwned(send)
}

// post sends one message to the upstream session and reads the answer off its stream, if any,
// passing each message to each (nil: discard).
func (up *upstream) post(ctx context.Context, ci callInfo, body []byte, each func([]byte) error) error {
	return up.send(ctx, ci, body, nil, each)
}

// send POSTs body to the upstream session with the brokered headers and passes every message of
// the answer (a JSON body or an SSE stream) to each until it returns an error; wire.ErrStop ends it
// without one.
func (up *upstream) send(ctx context.Context, ci callInfo, body []byte, f *flight, each func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, up.tool.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if err := up.g.broker(ctx, ci, up.tool, req.Header); err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if id := up.cs.ID(); id != "" {
		req.Header.Set("Mcp-Session-Id", id)
	}
	if ir := up.cs.InitializeResult(); ir != nil {
		req.Header.Set("Mcp-Protocol-Version", ir.ProtocolVersion)
	}
	resp, err := up.g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if f != nil {
		f.status.Store(int32(resp.StatusCode))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// The upstream ended the session: as through the SDK, it is gone for this agent session.
		if !up.g.goOwned(up.close) {
			up.close()
		}
		return errors.New("the upstream MCP session ended (404)")
	case resp.StatusCode == http.StatusAccepted && each == nil:
		return nil
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("the upstream answered %s", resp.Status)
	case each == nil:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, relayLimit))
		return nil
	}
	switch wire.MediaType(resp.Header.Get("Content-Type")) {
	case "application/json":
		data, err := io.ReadAll(io.LimitReader(resp.Body, relayLimit+1))
		if err != nil {
			return err
		}
		if len(data) > relayLimit {
			return wire.ErrTooLarge
		}
		if err := each(data); err != nil && err != wire.ErrStop {
			return err
		}
		return nil
	case "text/event-stream":
		return wire.ReadSSE(resp.Body, relayLimit, each)
	}
	return fmt.Errorf("the upstream answered with content type %q", resp.Header.Get("Content-Type"))
}

// A replier writes the answer to an agent's POST: a JSON response when the answer travels
// alone, an SSE stream once something travels before it. The notification router may write on
// it from another goroutine than the call's; nothing is written once the answer is done.
type replier struct {
	w         http.ResponseWriter
	id        json.RawMessage
	sessionID string

	mu   sync.Mutex
	sse  bool
	done bool
	err  error
}

func (o *replier) header(contentType string) {
	h := o.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache, no-transform")
	if o.sessionID != "" {
		h.Set("Mcp-Session-Id", o.sessionID)
	}
	o.w.WriteHeader(http.StatusOK)
}

// event writes one message on the SSE stream, starting it if need be.
func (o *replier) event(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.eventLocked(msg)
}

func (o *replier) eventLocked(msg []byte) {
	if o.err != nil || o.done {
		return
	}
	if !o.sse {
		o.header("text/event-stream")
		o.sse = true
	}
	buf := wire.AppendEvent(make([]byte, 0, len(msg)+24), msg)
	if _, o.err = o.w.Write(buf); o.err == nil {
		o.err = http.NewResponseController(o.w).Flush()
	}
}

// notify sends a notification on the call's stream.
func (o *replier) notify(method string, params any) {
	data, err := json.Marshal(params)
	if err != nil {
		return
	}
	o.event(wire.Append(nil, nil, method, data, nil, nil))
}

// final writes the answer.
func (o *replier) final(msg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	if o.sse {
		o.eventLocked(msg)
		o.done = true
		return
	}
	o.done = true
	o.header("application/json")
	_, o.err = o.w.Write(msg)
}

// toolResult answers with a tool result.
func (o *replier) toolResult(res *mcp.CallToolResult) {
	data, err := json.Marshal(res)
	if err != nil {
		o.final(wire.Append(nil, o.id, "", nil, nil, wire.ErrorObject(jsonrpc.CodeInternalError, "internal error")))
		return
	}
	o.final(wire.Append(nil, o.id, "", nil, data, nil))
}

// end closes the answer without a response (the agent cancelled the call).
func (o *replier) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return
	}
	o.done = true
	if !o.sse {
		o.header("text/event-stream")
	}
}

// writeRPCError answers a request with a JSON-RPC error.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int64, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(wire.Append(nil, id, "", nil, nil, wire.ErrorObject(code, msg)))
}
