package budget

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchBudgets makes 1,000 budgets over 100 agents, ten each, in the scopes a real deployment has:
// for every agent an agent-wide rate, a quota on its tool and a sum on one action (the three that
// cover payments send), a concurrency limit on another action, and six rates on other tools. Limits are high enough that nothing is refused: the
// benchmarks measure the allowed path, which is the hot one.
func benchBudgets(b *testing.B) *Budgets {
	bs, err := New(context.Background(), newFakeStore(), nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for a := range 100 {
		agent := fmt.Sprintf("agent-%d", a)
		specs := [][3]string{
			{"", "", "rate 1000000000000000/second"},
			{"payments", "", "quota 1000000000000000/day"},
			{"payments", "refund", "concurrency 1000000"},
			{"payments", "send", "sum amount 1000000000000000/day"},
		}
		for i := range 6 {
			specs = append(specs, [3]string{fmt.Sprintf("tool-%d", i), "", "rate 1000/second"})
		}
		for _, s := range specs {
			put(b, bs, agent, s[0], s[1], s[2])
		}
	}
	return bs
}

// BenchmarkConsume: one call that three budgets cover (the agent's rate, the tool's quota and the
// action's sum).
func BenchmarkConsume(b *testing.B) {
	bs := benchBudgets(b)
	u := Usage{Agent: "agent-42", Tool: "payments", Action: "send", Args: map[string]any{"amount": 12.5}, Now: t0}
	b.ReportAllocs()
	for b.Loop() {
		release, d, err := bs.Consume(u)
		if d != nil || err != nil {
			b.Fatal(d, err)
		}
		release()
	}
}

// BenchmarkConsumeConcurrency: three budgets again, one of them a concurrency limit, whose release
// func costs the allocations.
func BenchmarkConsumeConcurrency(b *testing.B) {
	bs := benchBudgets(b)
	put(b, bs, "agent-42", "payments", "send", "concurrency 1000000")
	if err := bs.Delete(context.Background(), ID("agent-42", "payments", "send", "sum", "amount")); err != nil {
		b.Fatal(err)
	}
	u := Usage{Agent: "agent-42", Tool: "payments", Action: "send", Now: t0}
	b.ReportAllocs()
	for b.Loop() {
		release, d, err := bs.Consume(u)
		if d != nil || err != nil {
			b.Fatal(d, err)
		}
		release()
	}
}

// BenchmarkConsumeParallel: calls of 100 agents from every CPU; agents don't share a lock.
func BenchmarkConsumeParallel(b *testing.B) {
	bs := benchBudgets(b)
	us := make([]Usage, 100)
	for a := range us {
		us[a] = Usage{Agent: fmt.Sprintf("agent-%d", a), Tool: "payments", Action: "send", Args: map[string]any{"amount": 1.0}, Now: t0}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			release, d, err := bs.Consume(us[i%len(us)])
			if d != nil || err != nil {
				b.Error(d, err)
				return
			}
			release()
			i += 7
		}
	})
}

// BenchmarkConsumeDenied: a refused call builds its message.
func BenchmarkConsumeDenied(b *testing.B) {
	bs := benchBudgets(b)
	put(b, bs, "agent-42", "payments", "", "quota 1/day")
	u := Usage{Agent: "agent-42", Tool: "payments", Action: "refund", Now: t0}
	bs.Consume(u)
	b.ReportAllocs()
	for b.Loop() {
		if _, d, _ := bs.Consume(u); d == nil {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkConsumeNoBudget: an agent without budgets.
func BenchmarkConsumeNoBudget(b *testing.B) {
	bs := benchBudgets(b)
	u := Usage{Agent: "unbudgeted", Tool: "payments", Action: "send", Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		release, _, _ := bs.Consume(u)
		release()
	}
}
