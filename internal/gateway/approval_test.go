package gateway

import (
	"testing"

	"github.com/wardenhq/warden"
)

func TestApprovalReason(t *testing.T) {
	allow := warden.Decision{Effect: warden.EffectAllow, Reason: warden.ReasonPolicyAllow}
	waived := warden.Decision{Effect: warden.EffectAllow, Reason: warden.ReasonApprovalWaived}
	tool := func(risk warden.Risk, approval ...string) *warden.Tool {
		return &warden.Tool{Name: "t", Risk: risk, Approval: approval}
	}
	tests := []struct {
		name   string
		tool   *warden.Tool
		action string
		d      warden.Decision
		want   string
	}{
		{"low", tool(warden.RiskLow), "read", allow, ""},
		{"medium", tool(warden.RiskMedium), "read", allow, ""},
		{"high", tool(warden.RiskHigh), "read", allow, warden.ApprovalByRisk},
		{"critical", tool(warden.RiskCritical), "read", allow, warden.ApprovalByRisk},
		{"high, waived", tool(warden.RiskHigh), "read", waived, ""},
		{"critical, waived", tool(warden.RiskCritical), "read", waived, ""},
		{"declared action", tool(warden.RiskLow, "delete"), "delete", allow, warden.ApprovalByTool},
		{"other action", tool(warden.RiskLow, "delete"), "read", allow, ""},
		{"every action", tool(warden.RiskLow, "*"), "read", allow, warden.ApprovalByTool},
		{"a waiver does not lift the tool's own list", tool(warden.RiskHigh, "delete"), "delete", waived, warden.ApprovalByTool},
		{"egress", warden.EgressTool, warden.EgressConnect, allow, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ApprovalReason(tt.tool, tt.action, tt.d); got != tt.want {
				t.Errorf("ApprovalReason = %q; want %q", got, tt.want)
			}
		})
	}
}
