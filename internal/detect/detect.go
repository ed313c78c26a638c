package detect

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/respattern"
)

// Kinds of finding; each is the audit event type detect.<kind>.
const (
	FirstSeenAction     = "first_seen_action"
	FirstSeenResource   = "first_seen_resource"
	FirstSeenArgument   = "first_seen_argument"
	FirstSeenHost       = "first_seen_host"
	FirstSeenTransition = "first_seen_transition"
	RateSpike           = "rate_spike"
	DenialSpike         = "denial_spike"
	BytesSpike          = "bytes_spike"
	BudgetSpike         = "budget_spike"
	ApprovalBurst       = "approval_burst"
	OffHours            = "off_hours"
)

// Kinds lists every kind; the configuration's ladder accepts exactly these
// (config.DetectKinds, TestKindsAreConfigurable).
var Kinds = []string{FirstSeenAction, FirstSeenResource, FirstSeenArgument, FirstSeenHost, FirstSeenTransition,
	RateSpike, DenialSpike, BytesSpike, BudgetSpike, ApprovalBurst, OffHours}

// maxNewKeys bounds the new argument keys one finding names.
const maxNewKeys = 8

// transitionGap: two calls further apart than this are not a transition.
const transitionGap = 10 * time.Minute

// Finding is one thing an agent did that its baseline says is not normal.
type Finding struct {
	Kind     string
	Agent    string
	AgentID  string
	Tool     string
	Action   string
	Resource string
	Risk     warden.Risk
	Source   *warden.AuditEvent // the call that showed it
	Baseline string             // what is normal, in words and figures
	Observed string             // what was seen
}

// Detector keeps every agent's baseline and judges each call against it. It is not safe for
// concurrent use: one Runner feeds it.
type Detector struct {
	cfg       Config
	baselines map[string]*Baseline
	dirty     map[string]bool
}

// NewDetector returns a detector with the baselines given (nil: none yet).
func NewDetector(cfg Config, baselines map[string]*Baseline) *Detector {
	if baselines == nil {
		baselines = map[string]*Baseline{}
	}
	return &Detector{cfg: cfg.withDefaults(), baselines: baselines, dirty: map[string]bool{}}
}

// Baseline returns an agent's baseline, nil if it has none.
func (d *Detector) Baseline(agent string) *Baseline { return d.baselines[agent] }

// Observe learns from one audit event and returns what it found. An agent's tool.call events
// are judged; its tool.result events (bytes sent) and approval.requested events (approval
// bursts) feed the per-minute figures; everything else passes unseen.
func (d *Detector) Observe(ev *warden.AuditEvent) []Finding {
	if ev.Actor.Kind != warden.ActorAgent || ev.Actor.Name == "" {
		return nil
	}
	switch ev.Type {
	case warden.EventToolCall:
		if ev.Target.Tool == "" {
			return nil
		}
		return d.observeCall(ev)
	case warden.EventToolResult, warden.EventApprovalRequested:
		return d.observeMinute(ev)
	}
	return nil
}

// baseline returns the agent's baseline, made at the event when it has none, marked changed.
func (d *Detector) baseline(ev *warden.AuditEvent) *Baseline {
	agent := ev.Actor.Name
	b := d.baselines[agent]
	if b == nil {
		b = newBaseline(agent, ev.Time)
		d.baselines[agent] = b
	}
	d.dirty[agent] = true
	return b
}

// finder returns the function that reports a finding in ev once the learning period is over.
func (d *Detector) finder(b *Baseline, ev *warden.AuditEvent, out *[]Finding) func(kind string, risk warden.Risk, baseline, observed string) {
	learned := b.Learned(d.cfg)
	return func(kind string, risk warden.Risk, baseline, observed string) {
		if !learned {
			return
		}
		*out = append(*out, Finding{Kind: kind, Agent: b.Agent, AgentID: ev.Actor.ID, Tool: ev.Target.Tool, Action: ev.Target.Action,
			Resource: ev.Target.Resource, Risk: risk, Source: ev, Baseline: baseline, Observed: observed})
	}
}

func (d *Detector) observeCall(ev *warden.AuditEvent) []Finding {
	b := d.baseline(ev)
	learned := b.Learned(d.cfg)
	b.roll(ev.Time)
	var out []Finding
	find := d.finder(b, ev, &out)
	risk := ev.Target.Risk
	if risk == "" {
		risk = warden.RiskMedium
	}

	action := ev.Target.Tool + "/" + ev.Target.Action
	_, knownAction := b.Actions[action]
	if !knownAction {
		find(FirstSeenAction, risk, fmt.Sprintf("%d distinct actions in %d calls, never %s", len(b.Actions), b.Calls, action), action)
	}
	if ev.Target.Tool == warden.EgressTool.Name {
		if ev.Target.Resource != "" {
			if _, ok := b.Hosts[ev.Target.Resource]; !ok {
				find(FirstSeenHost, risk, fmt.Sprintf("%d distinct egress hosts, never %s", len(b.Hosts), ev.Target.Resource), ev.Target.Resource)
			}
			learn(b.Hosts, ev.Target.Resource)
		}
	} else if ev.Target.Resource != "" {
		// An egress call's resource is its host, judged above. Only a known action's new
		// pattern is a finding of its own; a new action's says it all.
		key := clip(action + " " + respattern.Of(ev.Target.Resource))
		if _, ok := b.Resources[key]; !ok && knownAction {
			find(FirstSeenResource, risk, fmt.Sprintf("%d resource patterns of %s, never %s", b.patterns(action), action, key[len(action)+1:]), key)
		}
		learn(b.Resources, key)
	}
	var fresh []string
	argumentKeys(ev.Target.Arguments, func(k string) {
		key := clip(action + " " + k)
		if _, ok := b.ArgumentKeys[key]; !ok && len(fresh) < maxNewKeys {
			fresh = append(fresh, key[len(action)+1:])
		}
		learn(b.ArgumentKeys, key)
	})
	if len(fresh) > 0 && knownAction {
		find(FirstSeenArgument, risk, fmt.Sprintf("%s called %d times, never with %s", action, b.Actions[action], strings.Join(fresh, ", ")),
			action+" with "+strings.Join(fresh, ", "))
	}
	// A transition is the next action of the same session within transitionGap; a repeat of
	// the same action is no transition (the rate detector watches repetition).
	if b.LastAction != "" && b.LastAction != action && ev.Time.Sub(b.LastTime) <= transitionGap && b.LastSession == ev.Actor.SessionID {
		tr := b.LastAction + " -> " + action
		_, known := b.Transitions[tr]
		// A first-seen action is a new transition too; its own finding says it.
		if !known && knownAction {
			find(FirstSeenTransition, risk, fmt.Sprintf("%d distinct transitions, never %s", len(b.Transitions), tr), tr)
		}
		learn(b.Transitions, tr)
	}
	learn(b.Actions, action)
	b.LastAction, b.LastTime, b.LastSession = action, ev.Time, ev.Actor.SessionID

	b.MinuteCalls++
	if denied(ev) {
		b.MinuteDenials++
		b.Denials++
	} else if burn := ev.Decision.BudgetBurn; burn > 0 && burn <= maxBurn {
		b.MinuteBurn += burn
	}
	if learned && b.RateAlerted != b.Minute {
		if limit := d.spikeLimit(float64(d.cfg.RateFloor), b.Rate); b.MinuteCalls >= limit {
			b.RateAlerted = b.Minute
			find(RateSpike, warden.RiskHigh, fmt.Sprintf("%.1f calls a minute (sd %.1f) over %d active minutes", b.Rate.Mean, b.Rate.SD(), b.Minutes),
				fmt.Sprintf("%.0f calls in the minute from %s", b.MinuteCalls, minuteTime(b.Minute)))
		}
	}
	// Budget burn: the shares of budget limits the minute's calls took, against the usual
	// minute's. Its spread is floored at 1% of a limit, not at 1 as counts are: a limit is 1.
	if learned && b.BurnAlerted != b.Minute && b.MinuteBurn > 0 {
		limit := max(d.cfg.BudgetFloor, b.BudgetBurn.Mean+d.cfg.ZScore*max(b.BudgetBurn.SD(), b.BudgetBurn.Mean/4, 0.01))
		if b.MinuteBurn >= limit {
			b.BurnAlerted = b.Minute
			find(BudgetSpike, warden.RiskHigh, fmt.Sprintf("%.1f%% of a budget's limit an active minute (sd %.1f%%)", 100*b.BudgetBurn.Mean, 100*b.BudgetBurn.SD()),
				fmt.Sprintf("%.1f%% of budget limits taken in the minute from %s", 100*b.MinuteBurn, minuteTime(b.Minute)))
		}
	}
	if learned && b.DenialAlerted != b.Minute && b.MinuteDenials >= float64(d.cfg.DenialFloor) {
		share := b.MinuteDenials / b.MinuteCalls
		limit := min(1, b.DenialShare.Mean+d.cfg.ZScore*max(b.DenialShare.SD(), 0.05))
		if share >= limit {
			b.DenialAlerted = b.Minute
			find(DenialSpike, warden.RiskHigh, fmt.Sprintf("%.0f%% of calls denied a minute (sd %.0f%%)", 100*b.DenialShare.Mean, 100*b.DenialShare.SD()),
				fmt.Sprintf("%.0f of %.0f calls denied in the minute from %s", b.MinuteDenials, b.MinuteCalls, minuteTime(b.Minute)))
		}
	}
	hour := ev.Time.Unix() / 3600
	if learned && b.OffHourAlerted != hour {
		if share := b.hourShare(ev.Time); share < d.cfg.OffHoursShare {
			b.OffHourAlerted = hour
			find(OffHours, warden.RiskMedium, fmt.Sprintf("%.2f%% of %d calls in hour %02d UTC", 100*share, b.Calls, ev.Time.UTC().Hour()),
				"a call at "+ev.Time.UTC().Format(time.RFC3339))
		}
	}
	b.HourOfWeek[hourOfWeek(ev.Time)]++
	b.Calls++
	if ev.Time.After(b.Last) {
		b.Last = ev.Time
	}
	return out
}

// observeMinute counts a result's bytes sent upstream, or an approval request, into the
// agent's current minute and reports when the minute's figure spikes.
func (d *Detector) observeMinute(ev *warden.AuditEvent) []Finding {
	b := d.baseline(ev)
	b.roll(ev.Time)
	var out []Finding
	find := d.finder(b, ev, &out)
	if ev.Type == warden.EventApprovalRequested {
		b.MinuteApprovals++
		if b.ApprovalAlerted != b.Minute {
			if limit := d.spikeLimit(float64(d.cfg.ApprovalFloor), b.Approvals); b.MinuteApprovals >= limit {
				b.ApprovalAlerted = b.Minute
				find(ApprovalBurst, warden.RiskHigh, fmt.Sprintf("%.2f approval requests an active minute (sd %.2f) over %d minutes", b.Approvals.Mean, b.Approvals.SD(), b.ActiveMinutes),
					fmt.Sprintf("%.0f approval requests in the minute from %s", b.MinuteApprovals, minuteTime(b.Minute)))
			}
		}
		return out
	}
	if ev.Outcome.BytesIn <= 0 {
		return nil
	}
	b.MinuteBytes += float64(ev.Outcome.BytesIn)
	if b.BytesAlerted != b.Minute {
		if limit := d.spikeLimit(float64(d.cfg.BytesFloor), b.BytesSent); b.MinuteBytes >= limit {
			b.BytesAlerted = b.Minute
			find(BytesSpike, warden.RiskHigh, fmt.Sprintf("%.0f bytes sent an active minute (sd %.0f) over %d minutes", b.BytesSent.Mean, b.BytesSent.SD(), b.ActiveMinutes),
				fmt.Sprintf("%.0f bytes sent in the minute from %s", b.MinuteBytes, minuteTime(b.Minute)))
		}
	}
	return out
}

// spikeLimit is where a minute's figure becomes a spike: max(floor, mean + z·max(sd, mean/4, 1)).
// The sd is floored because a steady agent's is near zero, and any change would be a spike.
func (d *Detector) spikeLimit(floor float64, e EWMA) float64 {
	return max(floor, e.Mean+d.cfg.ZScore*max(e.SD(), e.Mean/4, 1))
}

func minuteTime(m int64) string { return time.Unix(m*60, 0).UTC().Format(time.RFC3339) }

// patterns counts the resource patterns learned for an action.
func (b *Baseline) patterns(action string) int {
	n := 0
	for k := range b.Resources {
		if strings.HasPrefix(k, action+" ") {
			n++
		}
	}
	return n
}

// argumentKeys calls fn with each top-level key of a call's recorded (redacted) arguments, in
// order; with none when they are not a JSON object (uninspected, or bound by digest). It scans
// rather than decodes: the values are never needed, and decoding them was most of a call's cost.
func argumentKeys(args json.RawMessage, fn func(key string)) {
	if len(args) == 0 || args[0] != '{' || !json.Valid(args) {
		return
	}
	depth, expectKey := 0, false
	for i := 0; i < len(args); i++ {
		switch c := args[i]; c {
		case '{', '[':
			depth++
			expectKey = depth == 1 && c == '{'
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		case '"':
			j, escaped := i+1, false
			for ; args[j] != '"'; j++ { // valid JSON: the string ends
				if args[j] == '\\' {
					j++
					escaped = true
				}
			}
			if expectKey {
				k := string(args[i+1 : j])
				if escaped || !utf8.ValidString(k) { // as encoding/json reads it
					_ = json.Unmarshal(args[i:j+1], &k)
				}
				fn(k)
				expectKey = false
			}
			i = j
		}
	}
}

// maxItemLen bounds one learned item (a resource pattern or an argument key with its action),
// so that a few long strings cannot fill the baseline.
const maxItemLen = 256

// clip cuts an item to maxItemLen bytes, on a character boundary, marking the cut.
func clip(s string) string {
	if len(s) <= maxItemLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxItemLen], "") + "…"
}

// takeDirty returns the agents whose baselines changed since the last call, and forgets them.
func (d *Detector) takeDirty() []string {
	out := make([]string, 0, len(d.dirty))
	for a := range d.dirty {
		out = append(out, a)
	}
	clear(d.dirty)
	return out
}
