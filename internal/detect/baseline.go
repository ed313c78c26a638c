// Package detect learns what is normal for each agent from its own audit events and reports
// what is not (docs/detect.md): first-seen actions, resource patterns, argument keys, egress
// hosts and transitions, spikes of calls, denials and bytes sent, bursts of approval requests,
// off-hours activity; each finding is a detect.<kind> audit event, contained by
// the ladder the configuration sets (alert, approve, suspend, kill).
package detect

import (
	"math"
	"time"

	"github.com/wardenhq/warden"
)

// Limits on what one baseline learns, so that an agent that calls endless distinct actions or
// hosts cannot grow warden's memory without bound: past them new items are still reported, but
// no longer learned.
const (
	maxItems = 4096
	// maxBurn: a call takes at most a whole limit of a budget (a budget refuses more); a
	// recorded burn over it is not learned.
	maxBurn = 1.0
)

// Baseline is what one agent does normally, learned from its tool.call events. It is stored as
// JSON; every field is a count or an average, so it is small and merges nothing secret.
type Baseline struct {
	Agent       string           `json:"agent"`
	Since       time.Time        `json:"since"` // the first event learned
	Last        time.Time        `json:"last"`
	Calls       int64            `json:"calls"`
	Denials     int64            `json:"denials"`
	Actions     map[string]int64 `json:"actions"`     // "tool/action"
	Hosts       map[string]int64 `json:"hosts"`       // egress host:port
	Transitions map[string]int64 `json:"transitions"` // "tool/action -> tool/action"
	// Resources are the patterns (respattern.Of) of the resources of each action's calls,
	// "tool/action pattern"; ArgumentKeys the top-level keys of its arguments, "tool/action key"
	// (keys only: the values are never learned).
	Resources    map[string]int64 `json:"resources"`
	ArgumentKeys map[string]int64 `json:"argument_keys"`
	HourOfWeek   [168]int64       `json:"hour_of_week"`
	LastAction   string           `json:"last_action,omitempty"`
	LastTime     time.Time        `json:"last_time,omitzero"`
	LastSession  string           `json:"last_session,omitempty"`

	// The current minute and what happened in it; when a later minute begins, its counts are
	// folded into the exponentially weighted averages of active minutes.
	Minute        int64   `json:"minute"` // Unix minutes
	MinuteCalls   float64 `json:"minute_calls"`
	MinuteDenials float64 `json:"minute_denials"`
	Minutes       int64   `json:"minutes"` // active minutes folded
	Rate          EWMA    `json:"rate"`    // calls per active minute
	DenialShare   EWMA    `json:"denial_share"`
	// Budget burn: the sum of the minute's calls' decision.budget_burn (shares of budget limits),
	// folded with the rate.
	MinuteBurn float64 `json:"minute_burn,omitempty"`
	BudgetBurn EWMA    `json:"budget_burn"`

	// Bytes sent upstream (tool.result events' outcome.bytes_in) and approval requests
	// (approval.requested events) per minute with any activity (a call, a result or a request).
	MinuteBytes     float64 `json:"minute_bytes"`
	MinuteApprovals float64 `json:"minute_approvals"`
	ActiveMinutes   int64   `json:"active_minutes"` // minutes folded into BytesSent and Approvals
	BytesSent       EWMA    `json:"bytes_sent"`
	Approvals       EWMA    `json:"approvals"`

	// Alerted keeps findings of a window from repeating: the minute of the last spike of each
	// kind, the hour of the last off-hours finding.
	RateAlerted     int64 `json:"rate_alerted,omitempty"`
	DenialAlerted   int64 `json:"denial_alerted,omitempty"`
	OffHourAlerted  int64 `json:"off_hour_alerted,omitempty"`
	BytesAlerted    int64 `json:"bytes_alerted,omitempty"`
	ApprovalAlerted int64 `json:"approval_alerted,omitempty"`
	BurnAlerted     int64 `json:"burn_alerted,omitempty"`
}

// EWMA is an exponentially weighted mean and variance.
type EWMA struct {
	Mean float64 `json:"mean"`
	Var  float64 `json:"var"`
}

// alpha weighs a new active minute: about the last 30 active minutes count.
const alpha = 2.0 / 31

func (e *EWMA) add(x float64, first bool) {
	if first {
		e.Mean, e.Var = x, 0
		return
	}
	d := x - e.Mean
	e.Mean += alpha * d
	e.Var = (1 - alpha) * (e.Var + alpha*d*d)
}

// SD is the standard deviation.
func (e EWMA) SD() float64 { return math.Sqrt(e.Var) }

func newBaseline(agent string, t time.Time) *Baseline {
	b := &Baseline{Agent: agent, Since: t}
	b.fill()
	return b
}

// fill makes the maps a baseline stored before they were learned lacks (JSON without them).
func (b *Baseline) fill() {
	for _, m := range []*map[string]int64{&b.Actions, &b.Hosts, &b.Transitions, &b.Resources, &b.ArgumentKeys} {
		if *m == nil {
			*m = map[string]int64{}
		}
	}
}

// Learned reports whether the learning period is over: the agent has been watched for the
// period or has made the calls.
func (b *Baseline) Learned(c Config) bool {
	return b.Calls >= int64(c.LearningCalls) || b.Last.Sub(b.Since) >= c.LearningPeriod
}

func hourOfWeek(t time.Time) int {
	t = t.UTC()
	return int(t.Weekday())*24 + t.Hour()
}

// hourShare is the share of the calls learned that fell in t's hour of the day, on any day.
func (b *Baseline) hourShare(t time.Time) float64 {
	if b.Calls == 0 {
		return 0
	}
	h := t.UTC().Hour()
	var n int64
	for d := range 7 {
		n += b.HourOfWeek[d*24+h]
	}
	return float64(n) / float64(b.Calls)
}

// roll folds the current minute into the averages when t is in a later one.
func (b *Baseline) roll(t time.Time) {
	m := t.Unix() / 60
	if m == b.Minute {
		return
	}
	if b.MinuteCalls > 0 {
		b.Rate.add(b.MinuteCalls, b.Minutes == 0)
		b.DenialShare.add(b.MinuteDenials/b.MinuteCalls, b.Minutes == 0)
		b.BudgetBurn.add(b.MinuteBurn, b.Minutes == 0)
		b.Minutes++
	}
	if b.MinuteCalls > 0 || b.MinuteBytes > 0 || b.MinuteApprovals > 0 {
		b.BytesSent.add(b.MinuteBytes, b.ActiveMinutes == 0)
		b.Approvals.add(b.MinuteApprovals, b.ActiveMinutes == 0)
		b.ActiveMinutes++
	}
	b.Minute, b.MinuteCalls, b.MinuteDenials, b.MinuteBytes, b.MinuteApprovals, b.MinuteBurn = m, 0, 0, 0, 0, 0
}

func learn(m map[string]int64, k string) {
	if _, ok := m[k]; ok || len(m) < maxItems {
		m[k]++
	}
}

func denied(ev *warden.AuditEvent) bool { return !warden.EffectAllows(ev.Decision.Effect) }
