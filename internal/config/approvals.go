package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Approvals configures how calls that need a person's approval are held and decided
// (internal/approval; docs/ARCHITECTURE.md, "Approvals").
type Approvals struct {
	// Hold is how long a call waits for a decision before the agent is told the request is
	// pending. Default 60s.
	Hold Duration `yaml:"hold"`
	// TTL is how long a request waits for a decision, and how long an approval, once given,
	// stays usable. Default 15m.
	TTL Duration `yaml:"ttl"`
	// Poll is how often a held call reads the store for a decision made on another replica.
	// Default 1s.
	Poll Duration `yaml:"poll"`
	// SeparationOfDuties refuses an approval by the agent's owner or by the person the agent acts
	// for. People are told apart by the email of their admin token (`warden admin token create
	// --email`); with this rule on, a token without one cannot approve.
	SeparationOfDuties bool `yaml:"separation_of_duties"`
	// CriticalApprovers is how many distinct people must approve a call to a critical tool.
	// Default 1.
	CriticalApprovers int `yaml:"critical_approvers"`
	// MaxPendingPerAgent is how many requests one agent may have waiting for a person at once
	// (every request pages someone); a call that would make another is denied with reason
	// approval_limit, and no request is made. Default 10.
	MaxPendingPerAgent int               `yaml:"max_pending_per_agent"`
	Webhooks           []ApprovalWebhook `yaml:"webhooks"`
}

// ApprovalWebhook is told of every new approval request, so that a person learns there is
// something to decide.
type ApprovalWebhook struct {
	URL string `yaml:"url"`
	// Format is json (warden's message) or slack (a {"text": …} message for Slack-compatible
	// incoming webhooks). Default json.
	Format  string            `yaml:"format"`
	Headers map[string]string `yaml:"headers"` // a value "env:NAME" is read from the environment
	Timeout Duration          `yaml:"timeout"` // per POST; default 5s
	Retries int               `yaml:"retries"` // more attempts after a failure; default 3
}

func (a *Approvals) validate() error {
	if a.Hold == 0 {
		a.Hold = Duration(60 * time.Second)
	}
	if a.TTL == 0 {
		a.TTL = Duration(15 * time.Minute)
	}
	if a.Poll == 0 {
		a.Poll = Duration(time.Second)
	}
	if a.CriticalApprovers == 0 {
		a.CriticalApprovers = 1
	}
	if a.MaxPendingPerAgent == 0 {
		a.MaxPendingPerAgent = 10
	}
	switch {
	case a.Hold < Duration(time.Second) || a.Hold > Duration(10*time.Minute):
		return errors.New("approvals.hold must be between 1s and 10m")
	case a.TTL < Duration(time.Second) || a.TTL > Duration(7*24*time.Hour):
		return errors.New("approvals.ttl must be between 1s and 168h")
	case a.Hold > a.TTL:
		return errors.New("approvals.hold cannot be over approvals.ttl")
	case a.Poll < Duration(50*time.Millisecond) || a.Poll > Duration(30*time.Second):
		return errors.New("approvals.poll must be between 50ms and 30s")
	case a.CriticalApprovers < 1 || a.CriticalApprovers > 10:
		return errors.New("approvals.critical_approvers must be between 1 and 10")
	case a.MaxPendingPerAgent < 1 || a.MaxPendingPerAgent > 1000:
		return errors.New("approvals.max_pending_per_agent must be between 1 and 1000")
	}
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		where := fmt.Sprintf("approvals.webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: url %q: want an http(s) URL", where, w.URL)
		}
		switch w.Format {
		case "":
			w.Format = "json"
		case "json", "slack":
		default:
			return fmt.Errorf("%s: format %q: use json or slack", where, w.Format)
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(5 * time.Second)
		}
		if w.Timeout < Duration(100*time.Millisecond) || w.Timeout > Duration(time.Minute) {
			return fmt.Errorf("%s: timeout must be between 100ms and 1m", where)
		}
		if w.Retries == 0 {
			w.Retries = 3
		}
		if w.Retries < 1 || w.Retries > 10 {
			return fmt.Errorf("%s: retries must be between 1 and 10", where)
		}
	}
	return nil
}
