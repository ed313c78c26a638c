package gateway

import (
	"context"
	"encoding/hex"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wardenhq/warden"
)

// The attributes of a call's spans: OpenTelemetry's GenAI and MCP semantic conventions where
// they name the thing, warden's own under warden. otherwise. Each value is one warden chose or
// registered (a tool's name, an agent's, a decision's reason), never what an agent sent as an
// argument; an agent-chosen name of no registered tool is left out.
const (
	attrOperation      = "gen_ai.operation.name" // always execute_tool
	attrToolName       = "gen_ai.tool.name"      // the registered tool
	attrToolCallID     = "gen_ai.tool.call.id"   // the decision's ID, as in the audit log
	attrAgentName      = "gen_ai.agent.name"     // the registered agent's name
	attrMCPMethod      = "mcp.method.name"
	attrMCPSession     = "mcp.session.id"
	attrAgent          = "warden.agent" // the registered agent's name
	attrEntry          = "warden.entry" // mcp, http or authorize
	attrAction         = "warden.tool.action"
	attrDecisionID     = "warden.decision.id"
	attrEffect         = "warden.decision.effect"
	attrReason         = "warden.decision.reason"
	attrOutcome        = "warden.outcome.status"
	attrUpstreamStatus = "http.response.status_code"

	// Span names.
	spanCall     = "execute_tool"
	spanPolicy   = "warden.policy"
	spanApproval = "warden.approval_wait"
	spanAudit    = "warden.audit_commit"
	spanUpstream = "warden.upstream"
)

// callSpan is the span of one call while it lasts, and its upstream round trip's once the call
// is allowed. A request has one only when the pipeline has a Tracer: with none, no span, no
// attribute and no allocation is made.
type callSpan struct {
	tracer   trace.Tracer
	ctx      context.Context // carries span, the parent of the call's child spans
	span     trace.Span
	upstream trace.Span // set when the call is allowed
}

// startSpan starts the call's span: the child of the caller's span when the request carried a
// traceparent, else a new trace's root. From then on the Permit's Trace is that span, which the
// call's audit event records.
func (r *request) startSpan() {
	ctx := r.ctx
	if t := r.call.Trace; t.Incoming {
		if sc := t.spanContext(); sc.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	ctx, span := r.g.Tracer.Start(ctx, spanCall, trace.WithSpanKind(trace.SpanKindServer))
	r.p.span = &callSpan{tracer: r.g.Tracer, ctx: ctx, span: span}
	r.p.Trace = traceContextOf(span.SpanContext())
	if !span.IsRecording() {
		// Not sampled: the trace context goes on upstream, and nothing else is built.
		return
	}
	span.SetAttributes(
		attribute.String(attrOperation, "execute_tool"),
		attribute.String(attrEntry, r.call.Entry),
		attribute.String(attrDecisionID, r.p.Decision.ID),
		attribute.String(attrToolCallID, r.p.Decision.ID),
		attribute.String(attrAgent, r.c.Agent.Name),
		attribute.String(attrAgentName, r.c.Agent.Name),
	)
	if r.call.Entry == EntryMCP {
		method := r.call.Method
		if method == "" {
			method = "tools/call"
		}
		span.SetAttributes(attribute.String(attrMCPMethod, method))
		if r.call.Session != "" {
			span.SetAttributes(attribute.String(attrMCPSession, r.call.Session))
		}
	}
}

// recording reports whether the call has a span that records: one the sampler kept. An
// unsampled call's span only carries the trace context on; it gets no attribute and no child.
func (s *callSpan) recording() bool { return s != nil && s.span.IsRecording() }

// resolved names the call's span after the tool it calls, when that is a registered one.
func (s *callSpan) resolved(r *request) {
	if !s.recording() || r.e == nil {
		return
	}
	s.span.SetName(spanCall + " " + r.e.tool.Name)
	s.span.SetAttributes(attribute.String(attrToolName, r.e.tool.Name))
}

// child starts a span of one step of the call; nil when the call has no span.
func (s *callSpan) child(name string) trace.Span {
	if !s.recording() {
		return nil
	}
	_, span := s.tracer.Start(s.ctx, name)
	return span
}

// endSpan ends a span child returned.
func endSpan(span trace.Span) {
	if span != nil {
		span.End()
	}
}

// decided records the decision on the call's span; a call that is not allowed ends there. An
// allowed one has begun its upstream span (startUpstream) and ends with Done.
func (s *callSpan) decided(p *Permit) {
	if s == nil {
		return
	}
	if !s.span.IsRecording() {
		s.span.End()
		return
	}
	s.span.SetAttributes(attribute.String(attrEffect, p.Decision.Effect), attribute.String(attrReason, p.Decision.Reason))
	if p.Decision.Effect == warden.EffectError {
		// warden could not decide (audit, approvals, flow state or the kill state unavailable)
		s.span.SetStatus(codes.Error, p.Decision.Reason)
	}
	if s.upstream == nil {
		s.span.End()
	}
}

// startUpstream starts the span of an allowed call's upstream round trip, a client span under
// the call's; the Permit's Trace becomes it, so that the traceparent the upstream gets names it.
func (s *callSpan) startUpstream(p *Permit) {
	if !s.recording() {
		return // unsampled: the upstream gets the call span's context
	}
	_, s.upstream = s.tracer.Start(s.ctx, spanUpstream, trace.WithSpanKind(trace.SpanKindClient))
	p.Trace = traceContextOf(s.upstream.SpanContext())
}

// done ends the upstream span with the outcome, then the call's.
func (s *callSpan) done(o Outcome) {
	if s == nil || s.upstream == nil {
		return
	}
	s.upstream.SetAttributes(attribute.String(attrOutcome, o.Status))
	if o.UpstreamStatus != 0 {
		s.upstream.SetAttributes(attribute.Int(attrUpstreamStatus, o.UpstreamStatus))
	}
	if o.Status == warden.StatusError {
		s.upstream.SetStatus(codes.Error, "the upstream failed")
	}
	s.upstream.End()
	s.span.End()
	s.upstream = nil
}

// spanContext is t, received from the caller, as OpenTelemetry's remote span context; invalid
// when t is not a trace context.
func (t TraceContext) spanContext() trace.SpanContext {
	tid, err := trace.TraceIDFromHex(t.TraceID)
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(t.SpanID)
	if err != nil {
		return trace.SpanContext{}
	}
	flags, err := hex.DecodeString(t.Flags)
	if err != nil || len(flags) != 1 {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
}

// traceContextOf is a span's context as warden's TraceContext.
func traceContextOf(sc trace.SpanContext) TraceContext {
	return TraceContext{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Flags: sc.TraceFlags().String()}
}

// action records the action of a call that reached policy: one its tool's routes or listing
// named, not any string an agent sent.
func (s *callSpan) action(a string) {
	if s.recording() {
		s.span.SetAttributes(attribute.String(attrAction, a))
	}
}
