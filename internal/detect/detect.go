package detect

import (
	"fmt"
	"time"

	"github.com/wardenhq/warden"
)

// Kinds of finding; each is the audit event type detect.<kind>.
const (
	FirstSeenAction     = "first_seen_action"
	FirstSeenHost       = "first_seen_host"
	FirstSeenTransition = "first_seen_transition"
	RateSpike           = "rate_spike"
	DenialSpike         = "denial_spike"
	OffHours            = "off_hours"
)

// Kinds lists every kind, for validating the configuration.
var Kinds = []string{FirstSeenAction, FirstSeenHost, FirstSeenTransition, RateSpike, DenialSpike, OffHours}

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

// Observe learns from one audit event and returns what it found. Only an agent's tool.call
// events are judged; everything else passes unseen.
func (d *Detector) Observe(ev *warden.AuditEvent) []Finding {
	if ev.Type != warden.EventToolCall || ev.Actor.Kind != warden.ActorAgent || ev.Actor.Name == "" || ev.Target.Tool == "" {
		return nil
	}
	agent := ev.Actor.Name
	b := d.baselines[agent]
	if b == nil {
		b = newBaseline(agent, ev.Time)
		d.baselines[agent] = b
	}
	d.dirty[agent] = true
	learned := b.Learned(d.cfg)
	b.roll(ev.Time)
	var out []Finding
	find := func(kind string, risk warden.Risk, baseline, observed string) {
		if !learned {
			return
		}
		out = append(out, Finding{Kind: kind, Agent: agent, AgentID: ev.Actor.ID, Tool: ev.Target.Tool, Action: ev.Target.Action,
			Resource: ev.Target.Resource, Risk: risk, Source: ev, Baseline: baseline, Observed: observed})
	}
	risk := ev.Target.Risk
	if risk == "" {
		risk = warden.RiskMedium
	}

	action := ev.Target.Tool + "/" + ev.Target.Action
	if _, ok := b.Actions[action]; !ok {
		find(FirstSeenAction, risk, fmt.Sprintf("%d distinct actions in %d calls, never %s", len(b.Actions), b.Calls, action), action)
	}
	if ev.Target.Tool == warden.EgressTool.Name && ev.Target.Resource != "" {
		if _, ok := b.Hosts[ev.Target.Resource]; !ok {
			find(FirstSeenHost, risk, fmt.Sprintf("%d distinct egress hosts, never %s", len(b.Hosts), ev.Target.Resource), ev.Target.Resource)
		}
		learn(b.Hosts, ev.Target.Resource)
	}
	// A transition is the next action of the same session within transitionGap; a repeat of
	// the same action is no transition (the rate detector watches repetition).
	if b.LastAction != "" && b.LastAction != action && ev.Time.Sub(b.LastTime) <= transitionGap && b.LastSession == ev.Actor.SessionID {
		tr := b.LastAction + " -> " + action
		_, known := b.Transitions[tr]
		_, knownAction := b.Actions[action]
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
	}
	if learned && b.RateAlerted != b.Minute {
		limit := max(float64(d.cfg.RateFloor), b.Rate.Mean+d.cfg.ZScore*max(b.Rate.SD(), b.Rate.Mean/4, 1))
		if b.MinuteCalls >= limit {
			b.RateAlerted = b.Minute
			find(RateSpike, warden.RiskHigh, fmt.Sprintf("%.1f calls a minute (sd %.1f) over %d active minutes", b.Rate.Mean, b.Rate.SD(), b.Minutes),
				fmt.Sprintf("%.0f calls in the minute from %s", b.MinuteCalls, time.Unix(b.Minute*60, 0).UTC().Format(time.RFC3339)))
		}
	}
	if learned && b.DenialAlerted != b.Minute && b.MinuteDenials >= float64(d.cfg.DenialFloor) {
		share := b.MinuteDenials / b.MinuteCalls
		limit := min(1, b.DenialShare.Mean+d.cfg.ZScore*max(b.DenialShare.SD(), 0.05))
		if share >= limit {
			b.DenialAlerted = b.Minute
			find(DenialSpike, warden.RiskHigh, fmt.Sprintf("%.0f%% of calls denied a minute (sd %.0f%%)", 100*b.DenialShare.Mean, 100*b.DenialShare.SD()),
				fmt.Sprintf("%.0f of %.0f calls denied in the minute from %s", b.MinuteDenials, b.MinuteCalls, time.Unix(b.Minute*60, 0).UTC().Format(time.RFC3339)))
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

// takeDirty returns the agents whose baselines changed since the last call, and forgets them.
func (d *Detector) takeDirty() []string {
	out := make([]string, 0, len(d.dirty))
	for a := range d.dirty {
		out = append(out, a)
	}
	clear(d.dirty)
	return out
}
