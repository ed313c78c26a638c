package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// The forwarding core. Every call warden forwards — tools/call whichever entry it came by (the
// lean relay, relay.go, or the SDK's server, methods.go) and whichever transport carries it, and
// the other decided methods — is authorized, forwarded and recorded here, once.

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
	err      error
	canceled bool // warden (a kill, the session's end) or the agent cancelled it
}

// forward runs one allowed call upstream and ends its permit with exactly one Done: every call
// warden forwards, whatever its method, entry or transport, goes through here. do gets the
// upstream context (marked with the call's flight), the upstream and the request's _meta with
// warden's progress token in place of the agent's; it reports whether the upstream answered
// with a failure (a JSON-RPC error, an isError result). The outcome: Latency the upstream round
// trip, BytesOut the arguments as the agent sent them, BytesIn the upstream's result (or error)
// member as it came on the wire (flight.bytesIn, which each transport measures),
// UpstreamStatus the HTTP status of the call's POST to a remote upstream, and Status ok, error
// or canceled.
func (s *session) forward(ctx context.Context, c *gateway.Caller, p *gateway.Permit, meta mcp.Meta, bytesOut int, out *replier,
	do func(ctx context.Context, up *upstream, meta mcp.Meta) (failed bool, err error)) forwarded {
	outcome := gateway.Outcome{Status: warden.StatusError, BytesOut: int64(bytesOut)}
	defer func() { s.g.done(p, outcome) }()
	if p.Tool == nil || p.Tool.Kind != warden.ToolMCP && p.Tool.Kind != warden.ToolMCPCommand {
		return forwarded{err: errors.New("not an MCP tool")}
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: p.Trace}, p.Ctx)
	defer cancel()
	up, err := s.upstream(octx, p.Tool)
	if err != nil {
		if octx.Err() != nil {
			outcome.Status = warden.StatusCanceled
		}
		return forwarded{err: err, canceled: octx.Err() != nil}
	}
	f, meta := up.begin(s, ctx, meta, out)
	f.permit = p
	defer up.end(f)
	start := time.Now()
	failed, err := do(context.WithValue(octx, flightKey{}, f), up, meta)
	outcome.Latency = time.Since(start)
	outcome.UpstreamStatus = int(f.status.Load())
	outcome.BytesIn = f.bytesIn.Load()
	switch {
	case err == nil && !failed:
		outcome.Status = warden.StatusOK
	case err != nil && octx.Err() != nil:
		outcome.Status = warden.StatusCanceled
		return forwarded{err: err, canceled: true}
	}
	return forwarded{err: err}
}

// A toolCall is one tools/call as the core sees it, whichever entry it came by.
type toolCall struct {
	name    string               // the name as the agent sent it
	args    json.RawMessage      // the arguments as the agent sent them; nil: none
	meta    mcp.Meta             // the agent's _meta when it carries a progress token (warden swaps it)
	rawMeta json.RawMessage      // the agent's _meta as it came (the relay sends it on unchanged)
	trace   gateway.TraceContext // the span of the agent's request
}

// A callTransport carries one allowed tools/call to its upstream and back: the raw relay
// (relay.go) for a remote upstream, the SDK client (transport.go) for a local one. While the
// call runs it relays what the upstream sends about it through the notification router
// (notify.go), and it tells the upstream when warden gives the call up. The flight is in ctx.
type callTransport interface {
	// stream is the agent's call stream the transport writes on itself (nil: the SDK's).
	stream() *replier
	callTool(ctx context.Context, up *upstream, server, name string, call *toolCall, meta mcp.Meta) (toolReply, error)
}

// A toolReply is an upstream's answer to a tools/call as the agent gets it: a tool result with
// content always present and, on /mcp, the URIs in it named for the agent (raw from the relay,
// typed from the SDK); or the upstream's JSON-RPC error, unchanged.
type toolReply struct {
	raw     json.RawMessage
	typed   *mcp.CallToolResult
	rpcErr  json.RawMessage
	isError bool
}

// A callAnswer is what became of a tools/call; each entry writes it its own way.
type callAnswer struct {
	permit  *gateway.Permit
	reply   toolReply           // the upstream answered (allowed calls)
	result  *mcp.CallToolResult // warden's own tool result: denied, cancelled by warden, failed upstream
	refusal *jsonrpc.Error      // a malformed call: unknown_tool, invalid_arguments
	silent  bool                // the agent cancelled or went away; it expects no answer
}

// call is the one path of every tools/call: the listed-name check, the decision, the
// permit, the forwarding and the outcome. New checks of the call path belong here. out is the
// agent's call stream when the lean relay serves the call (owner its record), nil when the
// SDK's server does.
func (s *session) call(ctx context.Context, c *gateway.Caller, tc *toolCall, out *replier, owner *relayedCall) callAnswer {
	server, name := s.route(tc.name)
	// A call held for a person's approval waits inside Authorize; it must end with the session,
	// which the SDK's handler context does not: a kill closes the session and waits for this
	// handler to return.
	actx, stop := linked(ctx, s.ctx)
	defer stop() // the permit's context may derive from it
	gcall := &gateway.Call{Entry: gateway.EntryMCP, Tool: server, Action: name, Arguments: tc.args, Trace: tc.trace, Session: s.ss.ID()}
	permit := s.checkToolName(actx, c, gcall, tc.name)
	if permit == nil {
		permit = s.g.p.Authorize(actx, c, gcall)
	}
	if !permit.Allowed() {
		res, refusal := deniedCall(permit)
		return callAnswer{permit: permit, result: res, refusal: refusal}
	}
	var tr callTransport = sdkTransport{s}
	if permit.Tool != nil && permit.Tool.Kind == warden.ToolMCP {
		tr = &relayTransport{s: s, out: out, owner: owner}
	}
	var reply toolReply
	var unrecorded error // the answer could not be recorded in the session's flow state
	f := s.forward(ctx, c, permit, tc.meta, len(tc.args), tr.stream(), func(ctx context.Context, up *upstream, meta mcp.Meta) (bool, error) {
		var err error
		reply, err = tr.callTool(ctx, up, server, name, tc, meta)
		if err == nil {
			// Observed before the outcome (and so before the agent gets it); an answer that
			// cannot be recorded is withheld, and the call's outcome is an error.
			if unrecorded = observe(permit, reply.typed, reply.raw, reply.rpcErr); unrecorded != nil {
				return true, nil
			}
		}
		return reply.rpcErr != nil || reply.isError, err
	})
	switch {
	case f.err == nil && unrecorded != nil:
		s.g.log.Error("recording an MCP result in its session's flow state failed; withheld", "tool", server, "err", unrecorded)
		return callAnswer{permit: permit, result: toolError(gateway.FlowUnrecordedMessage+" (decision "+permit.Decision.ID+")", permit)}
	case f.err == nil:
		return callAnswer{permit: permit, reply: reply}
	case ctx.Err() != nil:
		return callAnswer{permit: permit, silent: true}
	}
	return callAnswer{permit: permit, result: s.failedCall(server, permit, f.canceled, f.err)}
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

// failedCall is the tool result of an allowed call that did not complete: cancelled by warden
// (a kill, the session's end), or failed upstream, which is logged.
func (s *session) failedCall(server string, p *gateway.Permit, canceled bool, err error) *mcp.CallToolResult {
	if canceled {
		if why := p.StopMessage(); why != "" {
			return toolError(fmt.Sprintf("the call was cancelled by warden: %s (decision %s)", why, p.Decision.ID), p)
		}
		return toolError(fmt.Sprintf("the call was cancelled by warden (decision %s)", p.Decision.ID), p)
	}
	s.g.log.Warn("mcp upstream call failed", "tool", server, "agent", s.agentID, "err", err)
	return toolError(fmt.Sprintf("the upstream MCP server %s failed or is unavailable (decision %s)", server, p.Decision.ID), p)
}

// authorized runs a non-tool method through the pipeline and forwards it if allowed.
func (s *session) authorized(ctx context.Context, req mcp.Request, c *gateway.Caller, server, action, resource string, args json.RawMessage,
	meta mcp.Meta, do func(ctx context.Context, up *upstream, meta mcp.Meta) (mcp.Result, error)) (mcp.Result, error) {
	actx, stop := linked(ctx, s.ctx) // as in callTool: a held call ends with the session
	defer stop()
	permit := s.g.p.Authorize(actx, c, &gateway.Call{
		Entry: gateway.EntryMCP, Method: action, Tool: server, Action: action, Resource: resource, Arguments: args, Trace: traceOf(req), Session: s.ss.ID(),
	})
	if !permit.Allowed() {
		return nil, deniedError(permit)
	}
	var res mcp.Result
	var unrecorded error
	f := s.forward(ctx, c, permit, meta, len(args), nil, func(ctx context.Context, up *upstream, meta mcp.Meta) (bool, error) {
		var err error
		res, err = do(ctx, up, meta)
		var werr *jsonrpc.Error
		switch {
		case err == nil:
			unrecorded = observe(permit, res)
		case errors.As(err, &werr):
			// The upstream's own error goes to the agent as it is: its message is its output.
			unrecorded = observe(permit, nil, json.RawMessage(strconv.Quote(werr.Message)))
		}
		if unrecorded != nil {
			return true, nil
		}
		return false, err
	})
	if unrecorded != nil {
		s.g.log.Error("recording an MCP result in its session's flow state failed; withheld", "tool", server, "err", unrecorded)
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: gateway.FlowUnrecordedMessage}
	}
	if f.err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.answerError(server, f)
	}
	return res, nil
}

// observe hands what an upstream answered to the call's flow state (gateway.Permit.Observe)
// before the agent gets it: the raw result and JSON-RPC error as they came, or the typed result
// (nil when there is none). Only output whose labels make it count (untrusted or private) is
// decoded.
func observe(p *gateway.Permit, typed mcp.Result, raws ...json.RawMessage) error {
	if !p.ObservesOutput() {
		return nil
	}
	for _, m := range raws {
		if len(m) > 0 {
			if err := p.Observe(gateway.DecodeOutput(m)); err != nil {
				return err
			}
		}
	}
	if typed != nil && !reflect.ValueOf(typed).IsNil() {
		b, err := json.Marshal(typed)
		if err != nil {
			return err
		}
		return p.Observe(gateway.DecodeOutput(b))
	}
	return nil
}
