package approval

import (
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// FindingMessage is the JSON a webhook receives for a detection finding (docs/detect.md): who
// drifted, how, what is normal, and the containment applied. Like a request's Message it carries
// no argument value: the evidence is counts and the names of actions, hosts and patterns.
type FindingMessage struct {
	Type        string      `json:"type"` // detect.<kind>
	ID          string      `json:"id"`   // the finding's audit event id
	Time        time.Time   `json:"time"`
	Agent       string      `json:"agent"`
	Tool        string      `json:"tool,omitempty"`
	Action      string      `json:"action,omitempty"`
	Risk        warden.Risk `json:"risk"`
	Step        string      `json:"step"` // alert, approve, suspend or kill
	Baseline    string      `json:"baseline"`
	Observed    string      `json:"observed"`
	SourceEvent string      `json:"source_event"`
	HoldUntil   string      `json:"hold_until,omitempty"`
	URL         string      `json:"url,omitempty"` // the finding in the HTTP API
	Ack         string      `json:"ack"`           // the command that acknowledges it
}

// NotifyFinding tells the approval webhooks of a detection finding, as it tells them of a new
// request: queued, never blocking the detector; a full queue drops it with a log line (the
// finding itself is in the audit log and its sinks either way).
func (s *Service) NotifyFinding(a apitype.Alert) {
	m := &FindingMessage{Type: warden.EventDetectPrefix + a.Kind, ID: a.ID, Time: a.Time, Agent: a.Agent, Tool: a.Tool, Action: a.Action,
		Risk: a.Risk, Step: a.Step, Baseline: a.Baseline, Observed: a.Observed, SourceEvent: a.SourceEvent, HoldUntil: a.HoldUntil,
		Ack: "warden alerts ack " + a.ID + " --reason TEXT"}
	if s.opts.BaseURL != "" {
		m.URL = s.opts.BaseURL + "/v1/alerts/" + a.ID
	}
	s.notify.queue(&outgoing{id: a.ID, json: m, slack: FindingSlackText(m)})
}

// FindingSlackText is the Slack-compatible text of a finding; what the agent's calls chose
// (actions, hosts, resource patterns in the evidence) is escaped.
func FindingSlackText(m *FindingMessage) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Detection: agent *%s* — %s (`%s`, risk %s)", slackEscape(m.Agent), slackEscape(strings.ReplaceAll(strings.TrimPrefix(m.Type, warden.EventDetectPrefix), "_", " ")), slackCode(m.Type), m.Risk)
	fmt.Fprintf(&b, ".\nSeen: %s.\nNormal: %s.\nContainment: *%s*", slackEscape(m.Observed), slackEscape(m.Baseline), slackEscape(m.Step))
	if m.HoldUntil != "" {
		fmt.Fprintf(&b, " until %s", slackEscape(m.HoldUntil))
	}
	fmt.Fprintf(&b, ". Finding `%s`: `%s`", m.ID, m.Ack)
	return b.String()
}
