package warden

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestToolResultEventIsItsCalls pins that a tool.result is made from its call: everything a
// reader joins or filters on is the call's, the arguments stay on the call alone.
func TestToolResultEventIsItsCalls(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	actor := EventActor{Kind: ActorAgent, ID: "agt_1", Name: "alice", Owner: "a@example.com", OnBehalfOf: "bob", SessionID: "ses_1", Source: "127.0.0.1:1"}
	target := EventTarget{Tool: "github", Action: "create_issue", Resource: "repo:acme/web", Risk: RiskHigh,
		Arguments: json.RawMessage(`{"title":"x"}`), ArgsSHA256: "ab12"}
	decision := EventDecision{ID: "dec_1", Effect: EffectAllow, Reason: ReasonPolicyAllow, Message: "allowed",
		Policies: []string{"p#0"}, PolicyVersion: 7}
	call := NewToolCallEvent(at, actor, target, decision, "trace", "span")
	if call.Type != EventToolCall || !call.Time.Equal(at) || call.Actor != actor || !reflect.DeepEqual(call.Target, target) ||
		!reflect.DeepEqual(call.Decision, decision) || call.TraceID != "trace" || call.SpanID != "span" {
		t.Fatalf("NewToolCallEvent = %+v", call)
	}
	o := EventOutcome{Status: StatusOK, UpstreamStatus: 200, LatencyMS: 1.5, BytesIn: 1, BytesOut: 2, RemoteAddr: "192.0.2.1:443"}
	got := NewToolResultEvent(call, o)
	want := &AuditEvent{
		Type:     EventToolResult,
		Actor:    actor,
		Target:   EventTarget{Tool: "github", Action: "create_issue", Resource: "repo:acme/web", Risk: RiskHigh, ArgsSHA256: "ab12"},
		Decision: EventDecision{ID: "dec_1", Effect: EffectAllow, PolicyVersion: 7},
		Outcome:  o,
		TraceID:  "trace",
		SpanID:   "span",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewToolResultEvent =\n%+v\nwant\n%+v", got, want)
	}
}
