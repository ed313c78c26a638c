package budget

import (
	"context"
	"fmt"
	"time"
)

func ExampleParseSpec() {
	b, err := ParseSpec("pay-bot", "payments", "send", "sum amount 500/d")
	if err != nil {
		panic(err)
	}
	fmt.Println(Describe(b))
	fmt.Println(b.Kind, b.Arg, b.Limit, b.Window)

	_, err = ParseSpec("triage-bot", "github", "", "rate 20/fortnight")
	fmt.Println(err)
	// Output:
	// sum amount 500/day on pay-bot payments send
	// sum amount 500 24h0m0s
	// invalid budget "rate 20/fortnight": unknown window "fortnight": use second, minute, hour or day (or s, m, h, d)
}

func ExampleBudgets_Consume() {
	budgets, err := New(context.Background(), newFakeStore(), nil, Options{})
	if err != nil {
		panic(err)
	}
	for _, spec := range []string{"rate 20/hour", "concurrency 2"} {
		b, err := ParseSpec("triage-bot", "github", "issues.comment", spec)
		if err != nil {
			panic(err)
		}
		if err := budgets.Put(context.Background(), b); err != nil {
			panic(err)
		}
	}

	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for i := range 21 {
		release, denial, err := budgets.Consume(Usage{Agent: "triage-bot", Tool: "github", Action: "issues.comment", Now: now})
		if err != nil {
			panic(err) // an internal failure: deny the call
		}
		if denial != nil {
			fmt.Printf("call %d: %s (%s, Retry-After %s)\n", i+1, denial.Message, denial.Reason, denial.RetryAfter)
			continue
		}
		release() // when the call has ended
	}
	// Output:
	// call 21: rate 20/hour on github issues.comment exhausted; retry in 3m (budget_exceeded, Retry-After 3m0s)
}
