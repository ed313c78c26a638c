package apitype

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Alert is a detection finding (a detect.<kind> audit event) as `warden alerts` shows it.
type Alert struct {
	ID          string            `json:"id"` // the finding's audit event id
	Seq         int64             `json:"seq"`
	Time        time.Time         `json:"time"`
	Kind        string            `json:"kind"` // first_seen_action, rate_spike, …
	Agent       string            `json:"agent"`
	Tool        string            `json:"tool,omitempty"`
	Action      string            `json:"action,omitempty"`
	Risk        warden.Risk       `json:"risk"`
	Step        string            `json:"step"` // the containment applied: alert, approve, suspend or kill
	Baseline    string            `json:"baseline"`
	Observed    string            `json:"observed"`
	SourceEvent string            `json:"source_event"` // the call's event id
	HoldUntil   string            `json:"hold_until,omitempty"`
	Ack         *warden.DetectAck `json:"ack,omitempty"`
}

// AlertEvidence is what a finding's event carries in target.arguments.
type AlertEvidence struct {
	Agent       string `json:"agent"`
	AgentID     string `json:"agent_id,omitempty"`
	Detector    string `json:"detector"`
	Baseline    string `json:"baseline"`
	Observed    string `json:"observed"`
	SourceEvent string `json:"source_event"`
	SourceSeq   int64  `json:"source_seq"`
	Step        string `json:"step"`
	HoldUntil   string `json:"hold_until,omitempty"` // approve: until when the matching calls wait for a person
	Resource    string `json:"resource,omitempty"`
}

// AlertOf reads a finding from its audit event; ok is false for any other event.
func AlertOf(ev *warden.AuditEvent) (a Alert, ok bool) {
	kind, ok := strings.CutPrefix(ev.Type, warden.EventDetectPrefix)
	if !ok {
		return a, false
	}
	var e AlertEvidence
	if err := json.Unmarshal(ev.Target.Arguments, &e); err != nil {
		return a, false
	}
	return Alert{ID: ev.ID, Seq: ev.Seq, Time: ev.Time, Kind: kind, Agent: e.Agent, Tool: ev.Target.Tool, Action: ev.Target.Action,
		Risk: ev.Target.Risk, Step: e.Step, Baseline: e.Baseline, Observed: e.Observed, SourceEvent: e.SourceEvent, HoldUntil: e.HoldUntil}, true
}

// AckRequest acknowledges a finding; the reason is required.
type AckRequest struct {
	Reason string `json:"reason"`
}

// Baseline is what is normal for an agent, as its detector learned it.
type Baseline struct {
	Agent       string    `json:"agent"`
	Learned     bool      `json:"learned"` // the learning period is over: findings are reported
	Since       time.Time `json:"since"`
	Last        time.Time `json:"last"`
	Calls       int64     `json:"calls"`
	Denials     int64     `json:"denials"`
	RatePerMin  float64   `json:"rate_per_active_minute"`
	RateSD      float64   `json:"rate_sd"`
	DenialShare float64   `json:"denial_share"`
	// Budget burn: the shares of budget limits taken per active minute (1 = a whole limit).
	BudgetBurnPerMin float64 `json:"budget_burn_per_active_minute"`
	BudgetBurnSD     float64 `json:"budget_burn_sd"`
	// Bytes sent upstream (request bodies) and approval requests, per minute with any
	// activity.
	BytesPerMin     float64             `json:"bytes_sent_per_active_minute"`
	BytesSD         float64             `json:"bytes_sent_sd"`
	ApprovalsPerMin float64             `json:"approval_requests_per_active_minute"`
	ApprovalsSD     float64             `json:"approval_requests_sd"`
	Actions         []Count             `json:"actions"`
	Resources       []Count             `json:"resources"`     // "tool/action pattern"
	ArgumentKeys    []Count             `json:"argument_keys"` // "tool/action key"
	Hosts           []Count             `json:"egress_hosts"`
	Transitions     []Count             `json:"transitions"`
	HoursOfDay      [24]int64           `json:"hours_of_day"` // calls by hour of the day, UTC, all days together
	HoursOfWeek     [168]int64          `json:"hours_of_week"`
	Holds           []warden.DetectHold `json:"holds,omitempty"`
}

// Count is how often an item (an action, a resource pattern, an argument key, a host, a
// transition) was seen.
type Count struct {
	Item  string `json:"item"`
	Count int64  `json:"count"`
}
