package gateway_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/killswitch"
)

// quarantiningBudgets quarantines a digest while the call is between its decision and its
// registration in flight: the moment a quarantine's reconciler would not find the call.
type quarantiningBudgets struct {
	kill   *killswitch.State
	digest string
}

func (q quarantiningBudgets) Consume(string, string, string, map[string]any, time.Time) (func(), float64, *gateway.BudgetDenial, error) {
	q.kill.SetQuarantined(q.kill.Ticket(), []*warden.Quarantine{{Digest: q.digest}})
	return func() {}, 0, nil, nil
}

// TestQuarantineBetweenDecisionAndFlight: a manifest quarantined after a call to it was decided
// but before it was registered in flight is refused by the check that follows the registration.
func TestQuarantineBetweenDecisionAndFlight(t *testing.T) {
	e := newPipelineEnv(t, 1, false)
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	c, err := e.gw.Authenticate(req)
	if err != nil {
		t.Fatal(err)
	}
	e.gw.Budgets = quarantiningBudgets{kill: e.gw.Kill, digest: fmt.Sprintf("sha256:%064x", 0)} // payments.send's pin
	p := e.gw.Authorize(context.Background(), c, &gateway.Call{Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 1}`)})
	if p.Allowed() || p.Decision.Reason != warden.ReasonQuarantined {
		t.Fatalf("decision %+v; want quarantined", p.Decision)
	}
	if n := e.gw.InFlight(""); n != 0 {
		t.Fatalf("%d calls left in flight", n)
	}
}
