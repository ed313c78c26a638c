package detect

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// withArgs sets a call's recorded arguments.
func withArgs(ev *warden.AuditEvent, args string) *warden.AuditEvent {
	ev.Target.Arguments = []byte(args)
	return ev
}

// read is the bot's call that reads message n: a resource with an id, arguments with keys.
func read(at time.Time, n int, effect string) *warden.AuditEvent {
	return withArgs(call(at, "mail", "read", fmt.Sprintf("/v1/messages/%d", n), warden.RiskLow, effect), `{"id":"[redacted]","format":"full"}`)
}

// withBurn sets the share of a budget's limit a call took.
func withBurn(ev *warden.AuditEvent, burn float64) *warden.AuditEvent {
	ev.Decision.BudgetBurn = burn
	return ev
}

// sent is the tool.result of an egress call that sent n bytes upstream.
func sent(at time.Time, n int64) *warden.AuditEvent {
	ev := call(at, "egress", "connect", "api.example.com:443", warden.RiskMedium, warden.EffectAllow)
	ev.Type, ev.Outcome.BytesIn = warden.EventToolResult, n
	return ev
}

// approvalRequested is the event of the bot asking a person to approve a mail send.
func approvalRequested(at time.Time) *warden.AuditEvent {
	ev := call(at, "mail", "send", "/v1/outbox", warden.RiskHigh, warden.EffectApprovalRequired)
	ev.Type = warden.EventApprovalRequested
	return ev
}

// workday is one day of the bot's normal traffic: from 09:00 to 17:00 UTC, every five minutes,
// it lists the mailbox, reads a message (a new id each time; each read takes 0.2% of its daily
// quota) and calls its API host, sending 2 KiB, within the same minute; once an hour it asks for
// an approval.
func workday(day int) []*warden.AuditEvent {
	var out []*warden.AuditEvent
	start := day0.AddDate(0, 0, day).Add(9 * time.Hour)
	for m := 0; m < 8*60; m += 5 {
		at := start.Add(time.Duration(m) * time.Minute)
		out = append(out,
			withArgs(call(at, "mail", "list", "mailbox:bot/inbox", warden.RiskLow, warden.EffectAllow), `{"folder":"inbox"}`),
			withBurn(read(at.Add(10*time.Second), day*1000+m, warden.EffectAllow), 0.002),
			call(at.Add(20*time.Second), "egress", "connect", "api.example.com:443", warden.RiskMedium, warden.EffectAllow),
			sent(at.Add(25*time.Second), 2048))
		if m%60 == 30 {
			out = append(out, approvalRequested(at.Add(30*time.Second)))
		}
	}
	return out
}

// calls counts the tool.call events of evs.
func calls(evs []*warden.AuditEvent) int64 {
	var n int64
	for _, ev := range evs {
		if ev.Type == warden.EventToolCall {
			n++
		}
	}
	return n
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
	if burn := d.Baseline("bot").BudgetBurn; burn.Mean < 0.0019 || burn.Mean > 0.0021 {
		t.Fatalf("learned budget burn %+v, want 0.2%% of a limit an active minute", burn)
	}
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
		burst = append(burst, read(night.Add(time.Duration(i)*time.Second), 50_000+i, warden.EffectAllow))
	}
	var denials []*warden.AuditEvent
	for i := range 8 {
		denials = append(denials, read(at.Add(time.Duration(i)*time.Second), 60_000+i, warden.EffectDeny))
	}
	var approvals []*warden.AuditEvent
	for i := range 10 { // ten approval requests in a minute, where one an hour is normal
		approvals = append(approvals, approvalRequested(at.Add(time.Duration(i)*time.Second)))
	}
	for _, tc := range []struct {
		name string
		evs  []*warden.AuditEvent
		want []string // the kinds found, in order, over all the events
		risk warden.Risk
	}{
		{"new tool", []*warden.AuditEvent{withArgs(call(at, "repo", "delete", "repo:acme/app", warden.RiskHigh, warden.EffectAllow), `{"force":true}`)}, []string{FirstSeenAction}, warden.RiskHigh},
		{"new egress host", []*warden.AuditEvent{call(at, "egress", "connect", "paste.evil.example:443", warden.RiskMedium, warden.EffectAllow)}, []string{FirstSeenHost}, warden.RiskMedium},
		{"new transition", []*warden.AuditEvent{
			read(at, 70_000, warden.EffectAllow),
			withArgs(call(at.Add(time.Second), "mail", "list", "mailbox:bot/inbox", warden.RiskLow, warden.EffectAllow), `{"folder":"inbox"}`)}, []string{FirstSeenTransition}, warden.RiskLow},
		{"new resource pattern", []*warden.AuditEvent{
			withArgs(call(at, "mail", "read", "/v1/admin/export", warden.RiskLow, warden.EffectAllow), `{"id":"x"}`)}, []string{FirstSeenResource}, warden.RiskLow},
		{"new resource pattern of a named resource", []*warden.AuditEvent{
			withArgs(call(at, "mail", "list", "mailbox:ceo/inbox", warden.RiskLow, warden.EffectAllow), `{"folder":"inbox"}`)}, []string{FirstSeenResource}, warden.RiskLow},
		{"new argument key", []*warden.AuditEvent{
			withArgs(call(at, "mail", "list", "mailbox:bot/inbox", warden.RiskLow, warden.EffectAllow), `{"folder":"inbox","forward_to":"[redacted]"}`)}, []string{FirstSeenArgument}, warden.RiskLow},
		{"bytes spike", []*warden.AuditEvent{sent(at, 2048), sent(at.Add(time.Second), 8<<20)}, []string{BytesSpike}, warden.RiskHigh},
		{"approval burst", approvals, []string{ApprovalBurst}, warden.RiskHigh},
		{"budget spike", []*warden.AuditEvent{ // two reads that take 15% of a limit each, where 0.2% is normal
			withBurn(read(at, 80_000, warden.EffectAllow), 0.15), withBurn(read(at.Add(time.Second), 80_001, warden.EffectAllow), 0.15)}, []string{BudgetSpike}, warden.RiskHigh},
		{"denied calls burn nothing", []*warden.AuditEvent{
			withBurn(read(at, 80_000, warden.EffectDeny), 0.3), withBurn(read(at.Add(time.Second), 80_001, warden.EffectDeny), 0.3)}, nil, ""},
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
			if len(tc.want) == 0 {
				return
			}
			if got[0].Risk != tc.risk || got[0].Agent != "bot" || got[0].Baseline == "" || got[0].Observed == "" || got[0].Source != tc.evs[0] && tc.want[0] != RateSpike && tc.want[0] != DenialSpike && tc.want[0] != FirstSeenTransition &&
				tc.want[0] != BytesSpike && tc.want[0] != ApprovalBurst && tc.want[0] != BudgetSpike {
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

// TestKindsAreConfigurable: every detector can be named in the ladder, and only those.
func TestKindsAreConfigurable(t *testing.T) {
	if !slices.Equal(slices.Sorted(slices.Values(Kinds)), slices.Sorted(slices.Values(config.DetectKinds))) {
		t.Fatalf("detect.Kinds %v, config.DetectKinds %v", Kinds, config.DetectKinds)
	}
	for _, k := range Kinds {
		d := config.Detect{Ladder: []config.DetectRule{{Detector: k, Step: "approve"}}}
		if err := d.Validate(); err != nil {
			t.Errorf("the ladder refuses %s: %v", k, err)
		}
	}
}

// TestLearnsPatternsKeysNotValues: a week of traffic is learned as resource patterns (a new
// message id each call is one pattern) and argument keys, and no argument value reaches the
// baseline.
func TestLearnsPatternsKeysNotValues(t *testing.T) {
	d := learnedDetector(t, Config{})
	at := day0.AddDate(0, 0, 7).Add(11 * time.Hour)
	fs := d.Observe(withArgs(call(at, "mail", "read", "/v1/messages/1", warden.RiskLow, warden.EffectAllow),
		`{"id":"x","a1":"secret-value-1","a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9}`))
	if len(fs) != 1 || fs[0].Kind != FirstSeenArgument || strings.Count(fs[0].Observed, ",") != maxNewKeys-1 {
		t.Fatalf("nine new keys: %+v", fs)
	}
	b := d.Baseline("bot")
	if len(b.Resources) != 2 || b.Resources["mail/read /v1/messages/*"] != 7*96+1 || b.Resources["mail/list mailbox:bot/*"] != 7*96 {
		t.Fatalf("resources %v", b.Resources)
	}
	if _, ok := b.Resources["egress/connect api.example.com:*"]; ok {
		t.Fatal("an egress host was learned as a resource: hosts are learned apart")
	}
	for _, k := range []string{"mail/read id", "mail/read format", "mail/list folder", "mail/read a9"} {
		if _, ok := b.ArgumentKeys[k]; !ok {
			t.Errorf("argument key %q not learned: %v", k, b.ArgumentKeys)
		}
	}
	body, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "secret-value") || strings.Contains(string(body), "inbox\"") {
		t.Fatalf("an argument value is in the baseline: %s", body)
	}
	if b.BytesSent.Mean < 1000 || b.Approvals.Mean <= 0 || b.ActiveMinutes == 0 {
		t.Fatalf("bytes sent %+v, approvals %+v over %d minutes", b.BytesSent, b.Approvals, b.ActiveMinutes)
	}
}

func keysOf(args string) []string {
	var out []string
	argumentKeys([]byte(args), func(k string) { out = append(out, k) })
	return out
}

func TestArgumentKeys(t *testing.T) {
	for _, tt := range []struct {
		args string
		want []string
	}{
		{``, nil},
		{`[1,2]`, nil},
		{`"x"`, nil},
		{`{"a":1,"b":{"c":2,"d":[{"e":3}]},"f":"g,\"h\":{"}`, []string{"a", "b", "f"}},
		{`{ "a" : [ "x" , {"y":1} ] , "b\u0041\"" : null }`, []string{"a", `bA"`}},
		{`{}`, nil},
		{`{"a":1`, nil}, // not JSON: nothing
	} {
		if got := keysOf(tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("keys of %s: %q, want %q", tt.args, got, tt.want)
		}
	}
}

// FuzzArgumentKeys: the scanner finds exactly the keys json.Unmarshal finds in any JSON object.
func FuzzArgumentKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":{"c":[1,"}"]}}`, `{"\"":{"\\":"{"}}`, `{"a":[],"a":{}}`, `{"\u00e9":"x","z":true}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]json.RawMessage
		if len(s) == 0 || s[0] != '{' || json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		got := slices.Compact(slices.Sorted(slices.Values(keysOf(s))))
		want := slices.Sorted(maps.Keys(m))
		if !slices.Equal(got, want) {
			t.Fatalf("keys of %s: %q, want %q", s, got, want)
		}
	})
}

// TestClip: an item is learned at most maxItemLen bytes long, cut on a character boundary.
func TestClip(t *testing.T) {
	long := "a" + strings.Repeat("é", maxItemLen) // two bytes each after one: the cut falls inside one
	if got := clip(long); len(got) > maxItemLen+len("…") || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("clip: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if clip("short") != "short" {
		t.Fatal("a short item was cut")
	}
	// A long key or resource is learned cut.
	d := NewDetector(Config{}, nil)
	d.Observe(withArgs(call(day0, "mail", "read", "/"+strings.Repeat("r", 1000), warden.RiskLow, warden.EffectAllow), `{"`+strings.Repeat("k", 1000)+`":1}`))
	b := d.Baseline("bot")
	for _, m := range []map[string]int64{b.ArgumentKeys, b.Resources} {
		for k := range m {
			if len(k) > maxItemLen+len("…") {
				t.Fatalf("an item of %d bytes was learned", len(k))
			}
		}
	}
}
