package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// The notification router: every message an upstream sends warden as its client — progress,
// logging, list-changed, resources/updated and elicitation/complete notifications, its
// cancellation of requests it sent, and its sampling, elicitation and roots requests — is
// routed to the agents here, whether it came on a relayed call's stream (relay.go), through a
// reader that keeps wire order (order.go) or through the SDK client (transport.go). A message
// related to a call goes on that call's stream: the lean relay's own (flight.out) or the SDK's
// (flight.ctx).

// relayedNotifications are the notifications warden relays itself.
var relayedNotifications = map[string]func() mcp.Params{
	"notifications/progress":               func() mcp.Params { return &mcp.ProgressNotificationParams{} },
	"notifications/message":                newLogParams,
	"notifications/tools/list_changed":     func() mcp.Params { return &mcp.ToolListChangedParams{} },
	"notifications/prompts/list_changed":   func() mcp.Params { return &mcp.PromptListChangedParams{} },
	"notifications/resources/list_changed": func() mcp.Params { return &mcp.ResourceListChangedParams{} },
	"notifications/resources/updated":      func() mcp.Params { return &mcp.ResourceUpdatedNotificationParams{} },
	"notifications/elicitation/complete":   func() mcp.Params { return &mcp.ElicitationCompleteParams{} },
}

// relayRaw relays a notification read off the wire; false means it was not one warden relays
// (or did not decode), and the SDK should have it.
func (up *upstream) relayRaw(f *flight, msg jsonrpc.Message) bool {
	req, ok := msg.(*jsonrpc.Request)
	if !ok || req.IsCall() {
		return false
	}
	newParams, ok := relayedNotifications[req.Method]
	if !ok {
		return false
	}
	params := newParams()
	if len(req.Params) > 0 {
		if err := json.Unmarshal(req.Params, params); err != nil {
			return false
		}
	}
	up.deliver(f, req.Method, params)
	return true
}

// target is where a message of this upstream that names no call goes: the one call in flight;
// else, for a session's own upstream, that session's standalone stream; else nowhere.
func (up *upstream) target() (*session, context.Context, *flight, bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.flights) == 1 {
		for f := range up.flights {
			return f.s, f.ctx, f, true
		}
	}
	if up.owner != nil {
		return up.owner, up.owner.ctx, nil, true
	}
	return nil, nil, nil, false
}

// toCall sends a notification related to a call on that call's stream: the lean relay's own,
// or, through the SDK, the stream of the agent's request.
func (up *upstream) toCall(f *flight, method string, params mcp.Params) {
	if f.out != nil {
		f.out.notify(method, params)
		return
	}
	up.notify(f.s, f.ctx, method, params)
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
	if method == "notifications/message" {
		up.relayLog(f, params)
		return
	}
	switch p := params.(type) {
	case *mcp.ProgressNotificationParams:
		up.relayProgress(p)
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
	s, tctx, f, ok := up.target()
	if !ok {
		up.g.log.Info("refused a request from a shared mcp server: no single agent call to relay it to", "tool", up.tool.Name, "method", method)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
			Message: "warden relays " + method + " from a shared server only during exactly one agent call"}
	}
	if !s.supports(method, params) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "the agent's client does not support " + method}
	}
	if method != "roots/list" && !up.observed(f, s, params) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: gateway.FlowUnrecordedMessage}
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
	if p.Message != "" && !up.observed(f, f.s, p.Message) {
		return
	}
	q := *p
	q.ProgressToken = f.token
	up.toCall(f, "notifications/progress", &q)
}

func (up *upstream) relayLog(f *flight, params mcp.Params) {
	level, logger, rename, ok := logMessage(params)
	if !ok {
		return
	}
	if f == nil {
		var s *session
		var tctx context.Context
		if s, tctx, f, ok = up.target(); !ok {
			return
		}
		if f == nil {
			f = &flight{s: s, ctx: tctx} // the session's standalone stream
		}
	}
	s := f.s
	if up.st != nil {
		// A shared server's verbosity is the most verbose any of its sessions asked for.
		lvl := s.logLevel()
		if lvl == "" || levelRank(level) < levelRank(lvl) {
			return
		}
	}
	if !up.observed(f, s, params) {
		return
	}
	if s.ep.tool == "" {
		name := up.tool.Name
		if logger != "" {
			name = joinName(up.tool.Name, logger)
		}
		params = rename(name)
	}
	up.toCall(f, "notifications/message", params)
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

// observed records what the upstream sends an agent outside a call's result — a sampling or
// elicitation request, a log message, a progress message — in the session's flow state, under
// the call it came with (f) or, with none, as output of the upstream's tool for the session. It
// reports false when that could not be recorded: the message must not reach the agent.
func (up *upstream) observed(f *flight, s *session, content any) bool {
	if raw, ok := content.(json.RawMessage); ok {
		content = gateway.DecodeOutput(raw)
	} else if _, ok := content.(string); !ok && content != nil {
		b, err := json.Marshal(content)
		if err != nil {
			return false
		}
		content = gateway.DecodeOutput(b)
	}
	var err error
	switch {
	case f != nil && f.permit != nil:
		err = f.permit.Observe(content)
	case s != nil:
		if o, ok := up.g.p.(sessionObserver); ok {
			err = o.ObserveSession(s.ctx, s.agentID, s.ss.ID(), up.tool, content)
		}
	}
	if err != nil {
		up.g.log.Error("recording an mcp upstream's message in the session's flow state failed; withheld", "tool", up.tool.Name, "err", err)
		return false
	}
	return true
}

// sessionObserver records output an upstream sends a session outside any call
// (gateway.Pipeline.ObserveSession).
type sessionObserver interface {
	ObserveSession(ctx context.Context, agentID, session string, tool *warden.Tool, content any) error
}

// notify sends a notification to the agent of a session; ctx decides which stream it joins.
func (up *upstream) notify(s *session, ctx context.Context, method string, params mcp.Params) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := serverSend(ctx, method, s.ss, params); err != nil {
		up.g.log.Debug("relaying an mcp notification failed", "tool", up.tool.Name, "method", method, "err", err)
	}
}

// handle relays a message an upstream sent on the call's stream before the response.
func (c *upstreamCall) handle(m wire.Message) {
	up, s := c.up, c.s
	if m.IsNotification() {
		if m.Method == "notifications/cancelled" {
			c.upstreamCancelled(m.Params)
			return
		}
		if newParams, ok := relayedNotifications[m.Method]; ok {
			params := newParams()
			if len(m.Params) > 0 && json.Unmarshal(m.Params, params) != nil {
				return
			}
			up.deliver(c.f, m.Method, params)
		}
		return
	}
	// A request of the server to its client.
	switch m.Method {
	case "sampling/createMessage", "elicitation/create", "roots/list":
		var params mcp.Params
		if m.Method == "elicitation/create" {
			var p mcp.ElicitParams
			if len(m.Params) > 0 && json.Unmarshal(m.Params, &p) != nil {
				c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeInvalidParams, "invalid elicitation/create params"))
				return
			}
			params = &p
		}
		if !s.supports(m.Method, params) {
			c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeMethodNotFound, "the agent's client does not support "+m.Method))
			return
		}
		if m.Method != "roots/list" && !up.observed(c.f, s, m.Params) {
			c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeInternalError, gateway.FlowUnrecordedMessage))
			return
		}
		if c.out == nil {
			c.requestViaSDK(m)
			return
		}
		id := json.RawMessage(`"warden-r` + strconv.FormatUint(s.reqSeq.Add(1), 10) + `"`)
		s.mu.Lock()
		s.pending[string(id)] = &pendingRequest{up: up, id: m.ID, ctx: c.ctx, call: c.ci, owner: c.owner}
		s.mu.Unlock()
		c.out.event(wire.Append(nil, id, m.Method, m.Params, nil, nil))
	case "ping":
		c.answer(m.ID, json.RawMessage(`{}`), nil)
	default:
		c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeMethodNotFound, "method "+strconv.Quote(m.Method)+" is not supported"))
	}
}

// answer sends the upstream an answer to one of its requests.
func (c *upstreamCall) answer(id, result, rpcErr json.RawMessage) {
	if err := c.up.post(c.ctx, c.ci, wire.Append(nil, id, "", nil, result, rpcErr), nil); err != nil {
		c.s.g.log.Debug("answering an mcp upstream request failed", "tool", c.up.tool.Name, "err", err)
	}
}

// upstreamCancelled relays the upstream's notifications/cancelled of a request it sent the agent
// on this call's stream, under the id warden gave that request. (Through the SDK, the SDK
// cancels the relayed request itself.)
func (c *upstreamCall) upstreamCancelled(params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
		Reason    string          `json:"reason,omitempty"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	if c.out == nil {
		c.mu.Lock()
		cancel := c.viaSDK[string(p.RequestID)]
		c.mu.Unlock()
		if cancel != nil {
			cancel() // the SDK tells the agent
		}
		return
	}
	s := c.s
	s.mu.Lock()
	for id, pr := range s.pending {
		if pr.owner == c.owner && wire.SameID(pr.id, p.RequestID) {
			delete(s.pending, id)
			s.mu.Unlock()
			c.out.notify("notifications/cancelled", &struct {
				RequestID json.RawMessage `json:"requestId"`
				Reason    string          `json:"reason,omitempty"`
			}{json.RawMessage(id), p.Reason})
			return
		}
	}
	s.mu.Unlock()
}

// requestViaSDK relays a request the upstream sent on the stream of a call that came through
// the SDK's server: through that server, related to the agent's request (its stream), and
// answers the upstream when the agent does. It does not wait, so that the call's stream is read
// on meanwhile; the request ends with the call or when the upstream cancels it.
func (c *upstreamCall) requestViaSDK(m wire.Message) {
	params := newRequestParams(m.Method)
	if params == nil || len(m.Params) > 0 && json.Unmarshal(m.Params, params) != nil {
		c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeInvalidParams, "invalid "+m.Method+" params"))
		return
	}
	rctx, cancel := linked(c.f.ctx, c.ctx)
	key := string(m.ID)
	c.mu.Lock()
	if c.viaSDK == nil {
		c.viaSDK = make(map[string]context.CancelFunc)
	}
	c.viaSDK[key] = cancel
	c.mu.Unlock()
	relay := func() {
		defer func() {
			c.mu.Lock()
			delete(c.viaSDK, key)
			c.mu.Unlock()
			cancel()
		}()
		res, err := serverSend(rctx, m.Method, c.s.ss, params)
		if rctx.Err() != nil {
			return // cancelled by the upstream, or the call is over: no answer
		}
		if err != nil {
			var werr *jsonrpc.Error
			if !errors.As(err, &werr) {
				werr = &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the agent did not answer " + m.Method}
			}
			data, _ := json.Marshal(werr)
			c.answer(m.ID, nil, data)
			return
		}
		data, err := json.Marshal(res)
		if err != nil {
			c.answer(m.ID, nil, wire.ErrorObject(jsonrpc.CodeInternalError, "internal error"))
			return
		}
		c.answer(m.ID, data, nil)
	}
	if !c.s.g.goOwned(relay) {
		cancel()
	}
}
