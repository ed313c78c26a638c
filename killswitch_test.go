package warden

import (
	"strings"
	"testing"
)

// TestCheckReason: a change to a containment needs a reason; elsewhere one is optional; either
// way it is trimmed and bounded.
func TestCheckReason(t *testing.T) {
	for _, tc := range []struct {
		reason      string
		containment bool
		want        string
		ok          bool
	}{
		{"", true, "", false},
		{"   ", true, "", false},
		{" INC-123 ", true, "INC-123", true},
		{"", false, "", true},
		{strings.Repeat("x", MaxReason+1), false, "", false},
		{"\xff", true, "", false},
	} {
		got, err := CheckReason(tc.reason, tc.containment)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CheckReason(%q, %v) = %q, %v", tc.reason, tc.containment, got, err)
		}
		if err != nil && ErrorCode(err) != EInvalid {
			t.Errorf("CheckReason(%q): code %s", tc.reason, ErrorCode(err))
		}
	}
}

// TestLockdownCoversDecisionOnlyActions: a lockdown from a risk up covers a decision-only tool
// one of whose actions is of that risk, whatever the tool's own risk: the kill state does not
// know the action, and leaving a critical action out would fail open.
func TestLockdownCoversDecisionOnlyActions(t *testing.T) {
	ledger := &Tool{Name: "ledger", Kind: ToolDecisionOnly, Risk: RiskLow, Actions: []ToolAction{{Name: "balance"}, {Name: "close", Risk: RiskCritical}}}
	plain := &Tool{Name: "notes", Kind: ToolMCP, Risk: RiskLow}
	l := Lockdown{Active: true, MinRisk: RiskCritical}
	if !l.Covers(ledger) || l.Covers(plain) {
		t.Fatalf("covers ledger %v, notes %v", l.Covers(ledger), l.Covers(plain))
	}
	if ledger.MaxRisk() != RiskCritical || ledger.ActionRisk("balance") != RiskLow || ledger.ActionRisk("close") != RiskCritical {
		t.Fatal("risks")
	}
}
