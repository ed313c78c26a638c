package config

import (
	"testing"
	"time"
)

func TestApprovals(t *testing.T) {
	cases := []struct {
		name, yaml, err string
	}{
		{"defaults", "", ""},
		{"full", "approvals:\n  hold: 30s\n  ttl: 10m\n  poll: 500ms\n  separation_of_duties: true\n  critical_approvers: 2\n  webhooks:\n    - url: https://hooks.slack.com/services/T/B/x\n      format: slack\n    - url: http://127.0.0.1:9/approvals\n      headers: {Authorization: env:HOOK_TOKEN}\n      timeout: 2s\n      retries: 5\n", ""},
		{"unknown key", "approvals:\n  holds: 30s\n", `unknown key "holds"`},
		{"hold over ttl", "approvals:\n  hold: 5m\n  ttl: 1m\n", "hold cannot be over"},
		{"hold too long", "approvals:\n  hold: 1h\n  ttl: 2h\n", "approvals.hold"},
		{"ttl too long", "approvals:\n  ttl: 720h\n", "approvals.ttl"},
		{"no approvers", "approvals:\n  critical_approvers: -1\n", "critical_approvers"},
		{"too many approvers", "approvals:\n  critical_approvers: 11\n", "critical_approvers"},
		{"bad poll", "approvals:\n  poll: 1ms\n", "approvals.poll"},
		{"pending limit", "approvals:\n  max_pending_per_agent: 3\n", ""},
		{"no pending allowed", "approvals:\n  max_pending_per_agent: -1\n", "max_pending_per_agent"},
		{"pending limit too high", "approvals:\n  max_pending_per_agent: 1001\n", "max_pending_per_agent"},
		{"webhook url", "approvals:\n  webhooks:\n    - url: ftp://x\n", "want an http(s) URL"},
		{"webhook format", "approvals:\n  webhooks:\n    - url: https://x\n      format: teams\n", "use json or slack"},
		{"webhook retries", "approvals:\n  webhooks:\n    - url: https://x\n      retries: 50\n", "retries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLoad(t, tc.yaml, tc.err) })
	}
}

func TestApprovalDefaults(t *testing.T) {
	c := Default()
	if err := c.Parse("f", []byte("approvals:\n  webhooks:\n    - url: https://x\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := c.Approvals
	if a.Hold != Duration(60*time.Second) || a.TTL != Duration(15*time.Minute) || a.Poll != Duration(time.Second) || a.CriticalApprovers != 1 || a.MaxPendingPerAgent != 10 || a.SeparationOfDuties {
		t.Fatalf("defaults: %+v", a)
	}
	if w := a.Webhooks[0]; w.Format != "json" || w.Timeout != Duration(5*time.Second) || w.Retries != 3 {
		t.Fatalf("webhook defaults: %+v", w)
	}
}
