package budget

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestChargeBurn: an allowed call burns the largest share of one rate, quota or sum budget's
// limit it took; concurrency burns nothing; a refused call burns nothing; the same in memory and
// shared through PostgreSQL.
func TestChargeBurn(t *testing.T) {
	clk := newClock(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	memory := newBudgets(t, newFakeStore(), clk.opts())
	budgets := map[string]*Budgets{"memory": memory}
	if testing.Short() {
		t.Log("-short: shared budgets not checked")
	} else {
		budgets["shared"] = sharedFleet(t, 1, clk.Fake)[0].Budgets
	}
	for name, b := range budgets {
		put(t, b, "pay-bot", "", "", "rate 100/hour")
		put(t, b, "pay-bot", "bank", "pay", "sum amount 1000/d")
		put(t, b, "pay-bot", "bank", "", "concurrency 2")
		put(t, b, "pay-bot", "bank", "quote", "quota 20/d")
		for _, c := range []struct {
			action string
			args   map[string]any
			burn   float64
		}{
			{"list", nil, 0.01},                            // the rate alone
			{"quote", nil, 0.05},                           // 1 of 20 beats 1 of 100
			{"pay", map[string]any{"amount": 250.0}, 0.25}, // 250 of 1000
			{"pay", map[string]any{"amount": 5.0}, 0.01},   // the rate beats 5 of 1000
			{"pay", map[string]any{"amount": 2000.0}, -1},  // refused: over the sum
		} {
			release, burn, d, err := b.Charge(context.Background(), Usage{Agent: "pay-bot", Tool: "bank", Action: c.action, Args: c.args, Now: clk.Now()})
			if err != nil {
				t.Fatalf("%s %s: %v", name, c.action, err)
			}
			if c.burn < 0 {
				if d == nil || burn != 0 {
					t.Errorf("%s %s %v: denial %v, burn %v; want a denial and no burn", name, c.action, c.args, d, burn)
				}
				continue
			}
			if d != nil {
				t.Fatalf("%s %s %v: refused: %s", name, c.action, c.args, d.Message)
			}
			release()
			if math.Abs(burn-c.burn) > 1e-9 {
				t.Errorf("%s %s %v: burn %v, want %v", name, c.action, c.args, burn, c.burn)
			}
		}
		if _, burn, _, err := b.Charge(context.Background(), Usage{Agent: "no-budgets", Tool: "bank", Action: "pay", Now: clk.Now()}); err != nil || burn != 0 {
			t.Errorf("%s: an agent without budgets burns %v (%v)", name, burn, err)
		}
	}
}
