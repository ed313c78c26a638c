package warden

import "time"

// The tool.call and tool.result events are made here and only here, whoever decided the call
// (the gateway's pipeline, or a local MCP server's egress proxy): a reader of the log, a sink
// or `warden audit` joins a result to its call by decision.id and filters both by tool and
// risk, so the two must carry the same fields whichever enforcement point wrote them.

// NewToolCallEvent returns the tool.call event of a call: who made it (actor), what it is on
// (target, with the tool's risk and the redacted arguments), what was decided (decision, whose
// ID is the one the caller is given) and the trace it belongs to. at is when the call was
// decided; the zero time lets the audit log stamp it when it records it. A producer that
// starts the event before the decision is taken fills Decision in once it is.
func NewToolCallEvent(at time.Time, actor EventActor, target EventTarget, decision EventDecision, traceID, spanID string) *AuditEvent {
	return &AuditEvent{
		Type:     EventToolCall,
		Time:     at,
		Actor:    actor,
		Target:   target,
		Decision: decision,
		TraceID:  traceID,
		SpanID:   spanID,
	}
}

// NewToolResultEvent returns the tool.result event of the call recorded as call: its actor,
// its target without the arguments (their digest matches them), its decision's ID, effect and
// policy version, and its trace, with what came of it. The audit log stamps its time.
func NewToolResultEvent(call *AuditEvent, o EventOutcome) *AuditEvent {
	return &AuditEvent{
		Type:  EventToolResult,
		Actor: call.Actor,
		Target: EventTarget{
			Tool: call.Target.Tool, Action: call.Target.Action, Resource: call.Target.Resource,
			Risk: call.Target.Risk, ArgsSHA256: call.Target.ArgsSHA256,
		},
		Decision: EventDecision{ID: call.Decision.ID, Effect: call.Decision.Effect, PolicyVersion: call.Decision.PolicyVersion},
		Outcome:  o,
		TraceID:  call.TraceID,
		SpanID:   call.SpanID,
	}
}
