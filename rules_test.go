package warden_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestValidateAction(t *testing.T) {
	tests := []struct {
		action string
		ok     bool
	}{
		{"items.get", true},
		{"repos/issues.create", true},
		{"create_issue", true},
		{"a-b", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"items get", false},
		{"api:items.get", false}, // ':' separates tool and action in Cedar's action ids
		{"items.get\n", false},
		{"items\x00", false},
		{"ítems", false},
		{`"items"`, false},
	}
	for _, tt := range tests {
		err := warden.ValidateAction(tt.action)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateAction(%q) = %v; want ok %v", tt.action, err, tt.ok)
		}
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("ValidateAction(%q): code %s; want %s", tt.action, warden.ErrorCode(err), warden.EInvalid)
		}
	}
}

// actionRE is the rule of ValidateAction written another way, for FuzzValidateAction.
var actionRE = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,128}$`)

func FuzzValidateAction(f *testing.F) {
	for _, s := range []string{"items.get", "", "a b", "repos/x", "é", strings.Repeat("z", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, action string) {
		err := warden.ValidateAction(action)
		if want := actionRE.MatchString(action); (err == nil) != want {
			t.Fatalf("ValidateAction(%q) = %v; the rule says ok %v", action, err, want)
		}
		if err != nil && strings.Contains(warden.ErrorMessage(err), "\n") {
			t.Fatalf("message %q spans lines", warden.ErrorMessage(err))
		}
	})
}

func TestAllDigits(t *testing.T) {
	for s, want := range map[string]bool{
		"0": true, "0123456789": true, "": false, "-1": false, "+1": false, "1.5": false, "1_000": false,
		" 1": false, "1e3": false, "٣": false, "１": false, "0x1": false,
	} {
		if got := warden.AllDigits(s); got != want {
			t.Errorf("AllDigits(%q) = %v; want %v", s, got, want)
		}
	}
}

func TestActRefusal(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		status  warden.AgentStatus
		expires time.Time
		want    string
	}{
		{"active, no expiry", warden.AgentActive, time.Time{}, ""},
		{"active, expires later", warden.AgentActive, now.Add(time.Nanosecond), ""},
		{"active, expires at the instant", warden.AgentActive, now, "agent identity expired; renew it"},
		{"suspended", warden.AgentSuspended, time.Time{}, "agent is suspended"},
		{"killed", warden.AgentKilled, now.Add(time.Hour), "agent is killed"},
		{"unknown status", "retired", time.Time{}, "agent is not active"},
		{"empty status", "", time.Time{}, "agent is not active"},
	}
	for _, tt := range tests {
		got := warden.ActRefusal(tt.status, tt.expires, now)
		if got != tt.want {
			t.Errorf("%s: ActRefusal = %q; want %q", tt.name, got, tt.want)
		}
		a := &warden.Agent{Status: tt.status, ExpiresAt: tt.expires}
		if a.CanAct(now) != (tt.want == "") {
			t.Errorf("%s: CanAct = %v, but ActRefusal says %q", tt.name, a.CanAct(now), got)
		}
	}
}

func TestEffectAllows(t *testing.T) {
	for effect, want := range map[string]bool{
		warden.EffectAllow: true, warden.EffectApproved: true,
		warden.EffectDeny: false, warden.EffectApprovalRequired: false, warden.EffectRejected: false,
		warden.EffectExpired: false, warden.EffectError: false, "": false, "ALLOW": false, "allowed": false,
	} {
		if got := warden.EffectAllows(effect); got != want {
			t.Errorf("EffectAllows(%q) = %v; want %v", effect, got, want)
		}
	}
}
