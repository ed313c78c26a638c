package detect

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
)

// day0 is a Monday, midnight UTC.
var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func call(at time.Time, tool, action, resource string, risk warden.Risk, effect string) *warden.AuditEvent {
	return &warden.AuditEvent{Type: warden.EventToolCall, Time: at, ID: fmt.Sprintf("ev-%d", at.UnixNano()),
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: "agt_bot", Name: "bot"},
		Target:   warden.EventTarget{Tool: tool, Action: action, Resource: resource, Risk: risk},
		Decision: warden.EventDecision{Effect: effect}}
}

// workday is one day of the bot's normal traffic: from 09:00 to 17:00 UTC, every five minutes,
// it lists the mailbox, reads a message and calls its API host, within the same minute.
func workday(day int) []*warden.AuditEvent {
	var out []*warden.AuditEvent
	start := day0.AddDate(0, 0, day).Add(9 * time.Hour)
	for m := 0; m < 8*60; m += 5 {
		at := start.Add(time.Duration(m) * time.Minute)
		out = append(out,
			call(at, "mail", "list", "", warden.RiskLow, warden.EffectAllow),
			call(at.Add(10*time.Second), "mail", "read", "msg", warden.RiskLow, warden.EffectAllow),
			call(at.Add(20*time.Second), "egress", "connect", "api.example.com:443", warden.RiskMedium, warden.EffectAllow))
	}
	return out
}

// learnedDetector has seen a week of the bot's normal traffic.
func learnedDetector(t *testing.T, cfg Config) *Detector {
	t.Helper()
	d := NewDetector(cfg, nil)
	for day := range 7 {
		for _, ev := range workday(day) {
			if f := d.Observe(ev); len(f) > 0 {
				t.Fatalf("a finding while learning: %+v", f[0])
			}
		}
	}
	if b := d.Baseline("bot"); b == nil || !b.Learned(d.cfg) {
		t.Fatalf("a week of traffic did not end the learning period: %+v", b)
	}
	return d
}

func kinds(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestBenignReplayFindsNothing(t *testing.T) {
	d := learnedDetector(t, Config{})
	for _, ev := range workday(7) {
		if f := d.Observe(ev); len(f) > 0 {
			t.Fatalf("the replay of a normal day was reported: %s %s/%s at %s: %s", f[0].Kind, f[0].Tool, f[0].Action, ev.Time, f[0].Observed)
		}
	}
}

func TestAnomalies(t *testing.T) {
	at := day0.AddDate(0, 0, 7).Add(11 * time.Hour) // the next Monday, 11:00
	night := day0.AddDate(0, 0, 7).Add(3 * time.Hour)
	var burst []*warden.AuditEvent
	for i := range 30 { // ten times the normal three calls a minute, at 3 a.m.
		burst = append(burst, call(night.Add(time.Duration(i)*time.Second), "mail", "read", "msg", warden.RiskLow, warden.EffectAllow))
	}
	var denials []*warden.AuditEvent
	for i := range 8 {
		denials = append(denials, call(at.Add(time.Duration(i)*time.Second), "mail", "read", "msg", warden.RiskLow, warden.EffectDeny))
	}
	for _, tc := range []struct {
		name string
		evs  []*warden.AuditEvent
		want []string // the kinds found, in order, over all the events
		risk warden.Risk
	}{
		{"new tool", []*warden.AuditEvent{call(at, "repo", "delete", "acme/app", warden.RiskHigh, warden.EffectAllow)}, []string{FirstSeenAction}, warden.RiskHigh},
		{"new egress host", []*warden.AuditEvent{call(at, "egress", "connect", "paste.evil.example:443", warden.RiskMedium, warden.EffectAllow)}, []string{FirstSeenHost}, warden.RiskMedium},
		{"new transition", []*warden.AuditEvent{
			call(at, "mail", "read", "msg", warden.RiskLow, warden.EffectAllow),
			call(at.Add(time.Second), "mail", "list", "", warden.RiskLow, warden.EffectAllow)}, []string{FirstSeenTransition}, warden.RiskLow},
		{"10x burst at 3 a.m.", burst, []string{OffHours, RateSpike}, warden.RiskMedium},
		{"denial spike", denials, []string{DenialSpike}, warden.RiskHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := learnedDetector(t, Config{})
			var got []Finding
			for _, ev := range tc.evs {
				got = append(got, d.Observe(ev)...)
			}
			if !slices.Equal(kinds(got), tc.want) {
				t.Fatalf("found %v, want %v: %+v", kinds(got), tc.want, got)
			}
			if got[0].Risk != tc.risk || got[0].Agent != "bot" || got[0].Baseline == "" || got[0].Observed == "" || got[0].Source != tc.evs[0] && tc.want[0] != RateSpike && tc.want[0] != DenialSpike && tc.want[0] != FirstSeenTransition {
				t.Fatalf("finding %+v", got[0])
			}
		})
	}
}

func TestLearningPeriod(t *testing.T) {
	d := NewDetector(Config{LearningCalls: 10, LearningPeriod: time.Hour}, nil)
	at := day0.Add(10 * time.Hour)
	for i := range 9 {
		if f := d.Observe(call(at.Add(time.Duration(i)*time.Minute), "mail", "read", "", warden.RiskLow, warden.EffectAllow)); f != nil {
			t.Fatalf("finding while learning: %+v", f)
		}
	}
	if f := d.Observe(call(at.Add(9*time.Minute), "repo", "delete", "", warden.RiskHigh, warden.EffectAllow)); f != nil {
		t.Fatalf("the tenth call is still learned, not judged: %+v", f)
	}
	if f := d.Observe(call(at.Add(10*time.Minute), "repo", "push", "", warden.RiskHigh, warden.EffectAllow)); len(f) != 1 || f[0].Kind != FirstSeenAction {
		t.Fatalf("after learning: %+v", f)
	}
}

func TestOnlyAgentCallsAreJudged(t *testing.T) {
	d := learnedDetector(t, Config{})
	at := day0.AddDate(0, 0, 7).Add(11 * time.Hour)
	for _, ev := range []*warden.AuditEvent{
		{Type: warden.EventToolResult, Time: at, Actor: warden.EventActor{Kind: warden.ActorAgent, Name: "bot"}, Target: warden.EventTarget{Tool: "repo", Action: "delete"}},
		{Type: warden.EventToolCall, Time: at, Actor: warden.EventActor{Kind: warden.ActorSystem, Name: "tool:x"}, Target: warden.EventTarget{Tool: "egress", Action: "connect", Resource: "x:1"}},
		{Type: "detect.first_seen_action", Time: at, Actor: warden.EventActor{Kind: warden.ActorSystem}, Target: warden.EventTarget{Tool: "repo", Action: "delete"}},
	} {
		if f := d.Observe(ev); f != nil {
			t.Fatalf("%s judged: %+v", ev.Type, f)
		}
	}
}

func TestLadder(t *testing.T) {
	def := NewDetector(Config{}, nil).cfg
	custom := Config{Ladder: []config.DetectRule{
		{Detector: "*", MinRisk: "low", Step: "alert"},
		{Detector: RateSpike, Step: "suspend"},
		{Detector: "*", MinRisk: "critical", Step: "kill"},
	}}.withDefaults()
	for _, tc := range []struct {
		cfg  Config
		f    Finding
		want string
	}{
		{def, Finding{Kind: FirstSeenAction, Risk: warden.RiskHigh}, "approve"},
		{def, Finding{Kind: FirstSeenAction, Risk: warden.RiskCritical}, "approve"},
		{def, Finding{Kind: FirstSeenAction, Risk: warden.RiskMedium}, "alert"},
		{def, Finding{Kind: RateSpike, Risk: warden.RiskHigh}, "alert"},
		{custom, Finding{Kind: RateSpike, Risk: warden.RiskHigh}, "suspend"},
		{custom, Finding{Kind: OffHours, Risk: warden.RiskMedium}, "alert"},
		{custom, Finding{Kind: FirstSeenHost, Risk: warden.RiskCritical}, "kill"},
	} {
		if got := tc.cfg.Step(tc.f); got != tc.want {
			t.Errorf("%s at %s: step %s, want %s", tc.f.Kind, tc.f.Risk, got, tc.want)
		}
	}
}
