package gateway_test

import (
	"math"
	"net/http/httptest"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/gateway"
)

// TestBudgetBurnRecorded: an allowed call's event records the largest share of a budget's limit
// it took, which detection learns (docs/detect.md).
func TestBudgetBurnRecorded(t *testing.T) {
	e := newPipelineEnv(t, 1, true)
	log := &memoryAudit{}
	e.gw.Audit = log
	bud, err := budget.ParseSpec("bench-bot", "api", "payments.send", "sum amount 1000/d")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Budgets.(budgetAdapter).b.Put(t.Context(), bud); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	e.decide(t, req, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42}`)})
	var burn float64 = -1
	for _, ev := range log.evs {
		if ev.Type == warden.EventToolCall {
			burn = ev.Decision.BudgetBurn
		}
	}
	if math.Abs(burn-0.042) > 1e-9 {
		t.Fatalf("the call's event records a budget burn of %v, want 0.042 (42 of a 1000 a day)", burn)
	}
}
