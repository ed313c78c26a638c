package ocsf

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var at = time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC)

var golden = map[string]*warden.AuditEvent{
	"tool_call_allow": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6C", Seq: 42, Time: at, Type: warden.EventToolCall,
		Actor: warden.EventActor{Kind: warden.ActorAgent, ID: "ag_1", Name: "triage-bot", Owner: "alice@example.com",
			OnBehalfOf: "bob@example.com", SessionID: "sess-1", Source: "127.0.0.1:50123", Replica: "r1"},
		Target: warden.EventTarget{Tool: "github", Action: "issues.create", Resource: "repo:acme/web", Risk: warden.RiskMedium,
			Arguments: json.RawMessage(`{"title":"x"}`), ArgsSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		Decision: warden.EventDecision{ID: "dec_1", Effect: warden.EffectAllow, Reason: "policy_allow", Policies: []string{"triage"}, PolicyVersion: 3},
		TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", PrevHash: "aa", Hash: "bb",
	},
	"tool_call_tainted": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6F", Seq: 45, Time: at, Type: warden.EventToolCall,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "ag_1", Name: "mail-bot", SessionID: "sess-1"},
		Target:   warden.EventTarget{Tool: "mail", Action: "send_email", Risk: warden.RiskLow, Arguments: json.RawMessage(`{"to":"mallory@evil.example"}`)},
		Decision: warden.EventDecision{ID: "dec_4", Effect: warden.EffectDeny, Reason: "forbidden_by_policy", Policies: []string{"no-tainted-destination"}},
		Flow: &warden.FlowFacts{Session: "mcp-session-1",
			Labels: warden.FlowLabels{
				Output: warden.FlowLabel{Value: warden.OutputUntrusted, Source: warden.LabelFromDefault},
				Data:   warden.FlowLabel{Value: warden.DataPublic, Source: warden.LabelFromDefault},
				Effect: warden.FlowLabel{Value: warden.EffectExternal, Source: warden.LabelFromAction}},
			UntrustedRead: true, UntrustedSources: []string{"mail", "mail:read_email"},
			Tainted: []warden.TaintedArg{{Arg: "to", Kind: "email", SourceTool: "mail", SourceAction: "read_email", SourceDecision: "dec_3"}}},
	},
	"tool_result_error": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6D", Seq: 43, Time: at, Type: warden.EventToolResult,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "ag_1", Name: "triage-bot"},
		Target:   warden.EventTarget{Tool: "github", Action: "repos.delete", Risk: warden.RiskCritical},
		Decision: warden.EventDecision{ID: "dec_2", Effect: warden.EffectAllow},
		Outcome:  warden.EventOutcome{Status: warden.StatusError, UpstreamStatus: 502, LatencyMS: 12.5, BytesIn: 10, BytesOut: 20},
	},
	"token_refuse": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6E", Seq: 44, Time: at, Type: warden.EventTokenRefuse,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, Source: "[::1]:4000"},
		Target:   warden.EventTarget{Action: "/oauth2/token", Risk: warden.RiskMedium},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: "invalid_client", Message: "unknown client"},
	},
	"token_revoke_person": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6G", Seq: 46, Time: at, Type: warden.EventTokenRevoke,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: "oncall-carol", Role: "operator", Email: "carol@example.com", Source: "127.0.0.1:5000"},
		Target:   warden.EventTarget{Resource: "token:tok_1"},
		Decision: warden.EventDecision{Effect: warden.EffectAllow},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	},
	"agent_suspend": {
		SchemaVersion: 2, ID: "01JQ8Z6Y4T3V2W1X0Y9Z8A7B6F", Seq: 45, Time: at, Type: warden.EventAgentSuspend,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: "alice", Role: "operator"},
		Target:   warden.EventTarget{Resource: "agent:triage-bot"},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: "incident 42"},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	},
}

func TestGolden(t *testing.T) {
	for name, ev := range golden {
		t.Run(name, func(t *testing.T) {
			got, err := json.MarshalIndent(Map(ev), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("OCSF of %s:\n%s\nwant (testdata/%s.json):\n%s", name, got, name, want)
			}
		})
	}
}

func TestClasses(t *testing.T) {
	for _, tt := range []struct {
		typ, action     string
		class, activity int
	}{
		{warden.EventTokenIssue, "", ClassAuthentication, 1},
		{warden.EventTokenRevoke, "", ClassAuthentication, 2},
		{warden.EventAgentCreate, "", ClassAccountChange, 1},
		{warden.EventAgentResume, "", ClassAccountChange, 2},
		{warden.EventAgentRotate, "", ClassAccountChange, 3},
		{warden.EventAdminTokenRevoke, "", ClassAccountChange, 5},
		{warden.EventAgentDelete, "", ClassAccountChange, 6},
		{warden.EventToolCall, "repos.delete", ClassAPIActivity, 4},
		{warden.EventToolCall, "issues.update_labels", ClassAPIActivity, 3},
		{warden.EventToolCall, "payments.send", ClassAPIActivity, 1},
		{warden.EventToolCall, "issues.list", ClassAPIActivity, 2},
		{warden.EventToolCall, "GET /repos/{owner}", ClassAPIActivity, 2},
		{warden.EventToolCall, "frobnicate", ClassAPIActivity, 99},
		{"kill.agent", "", ClassAPIActivity, 99},
	} {
		o := Map(&warden.AuditEvent{Type: tt.typ, Target: warden.EventTarget{Action: tt.action}})
		if o.ClassUID != tt.class || o.ActivityID != tt.activity || o.TypeUID != tt.class*100+tt.activity || o.CategoryUID != tt.class/1000 {
			t.Errorf("%s %q: class %d activity %d type %d; want %d %d", tt.typ, tt.action, o.ClassUID, o.ActivityID, o.TypeUID, tt.class, tt.activity)
		}
	}
}

func FuzzMap(f *testing.F) {
	f.Add("tool.call", "issues.create", "127.0.0.1:1", `{"a":1}`, "allow", "ok", "high", int64(1))
	f.Add("", "", "not an address", `{`, "", "", "", int64(-1))
	f.Fuzz(func(t *testing.T, typ, action, source, args, effect, status, risk string, n int64) {
		ev := &warden.AuditEvent{Type: typ, Seq: n, Time: time.Unix(n, n),
			Actor:    warden.EventActor{Kind: effect, Source: source, ID: action},
			Target:   warden.EventTarget{Tool: action, Action: action, Resource: source, Risk: warden.Risk(risk), Arguments: json.RawMessage(args)},
			Decision: warden.EventDecision{Effect: effect},
			Outcome:  warden.EventOutcome{Status: status, BytesIn: n}}
		o := Map(ev)
		if o.TypeUID != o.ClassUID*100+o.ActivityID || o.Metadata.Version != Version {
			t.Fatalf("%+v", o)
		}
		if _, err := json.Marshal(o); err != nil {
			t.Fatalf("the OCSF event does not encode: %v", err)
		}
	})
}
