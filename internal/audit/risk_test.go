package audit_test

import (
	"testing"

	"github.com/wardenhq/warden"
)

// TestRiskOfKindAndTool: an event is rated the higher of its tool's risk and its kind's, so
// the supply chain's alerts (a held rug pull, an accepted change, a quarantine and its lift)
// reach the high-risk stream whatever the tool's own rating, and a critical tool's call stays
// critical (docs/audit.md, "Risk of events without a tool").
func TestRiskOfKindAndTool(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	risks := map[string]warden.Risk{"notes": warden.RiskLow, "payments": warden.RiskCritical}
	l.RateTools(func(name string) (*warden.Tool, bool) {
		r, ok := risks[name]
		return &warden.Tool{Name: name, Risk: r}, ok
	})
	for _, c := range []struct {
		typ, tool string
		want      warden.Risk
	}{
		{warden.EventManifestChanged, "notes", warden.RiskHigh},
		{warden.EventManifestRemoved, "notes", warden.RiskHigh},
		{warden.EventManifestAccepted, "notes", warden.RiskHigh},
		{warden.EventManifestChanged, "payments", warden.RiskCritical},
		{warden.EventToolPackageChanged, "notes", warden.RiskHigh},
		{warden.EventManifestPinned, "notes", warden.RiskLow},
		{warden.EventToolLabels, "notes", warden.RiskHigh},
		{warden.EventToolCall, "notes", warden.RiskLow},
		{warden.EventToolCall, "payments", warden.RiskCritical},
		{warden.EventQuarantine, "", warden.RiskHigh},
		{warden.EventQuarantineLift, "", warden.RiskHigh},
		{warden.EventSkillAdd, "", ""},
		{warden.EventOAuthRefreshReused, "", warden.RiskHigh},
		{warden.EventOAuthRefresh, "", ""},
		{warden.EventPersonSignInRefused, "", warden.RiskMedium},
		{warden.EventPersonSignIn, "", ""},
		{warden.EventPolicyShadowApply, "", warden.RiskHigh},
		{warden.EventPolicyShadowDiff, "notes", warden.RiskLow},
		{warden.EventPolicyShadowDiff, "payments", warden.RiskCritical},
		{warden.EventPolicyShadowDropped, "", ""},
	} {
		ev := &warden.AuditEvent{Type: c.typ, Actor: warden.EventActor{Kind: warden.ActorSystem}, Target: warden.EventTarget{Tool: c.tool}}
		if err := l.Append(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		if ev.Target.Risk != c.want {
			t.Errorf("%s of tool %q: risk %q, want %q", c.typ, c.tool, ev.Target.Risk, c.want)
		}
	}
}
