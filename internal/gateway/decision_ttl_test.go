package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
)

// An allowed decision of the decision API waits DecisionTTL for its outcome, on the pipeline's
// clock: an outcome within it is taken, and Run closes one that never came as an error, after
// which a late outcome is refused. The test moves a fake clock; nothing sleeps.
func TestDecisionAPIExpiresOutcomesAfterDecisionTTL(t *testing.T) {
	env := newFailureEnv(t, permitAll)
	clk := clock.NewFake(time.Now().Add(-time.Hour)) // far from the wall clock: expiry must be on this one
	env.gw.Clock = clk
	recorded := make(chan string, 4) // decision ids of tool.result events, as they are appended
	env.gw.Audit = notifyingAudit{env.audit, recorded}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/authorize", env.gw.AuthorizeHandler())
	mux.Handle("POST /v1/decisions/{id}/outcome", env.gw.OutcomeHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- env.gw.Run(ctx, time.Minute) }()
	t.Cleanup(func() {
		cancel()
		<-ran
	})

	post := func(path, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	authorize := func() string {
		t.Helper()
		var d gateway.AuthorizeResponse
		resp := post("/v1/authorize", `{"tool": "api", "action": "items.get", "resource": "item:7"}`)
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || d.Effect != warden.EffectAllow {
			t.Fatalf("authorize: %d %+v %v", resp.StatusCode, d, err)
		}
		return d.ID
	}
	outcome := func(id string) int {
		t.Helper()
		return post("/v1/decisions/"+id+"/outcome", `{"status": "ok"}`).StatusCode
	}
	results := func(id string) []warden.AuditEvent {
		var out []warden.AuditEvent
		for _, ev := range env.audit.events(warden.EventToolResult, false) {
			if ev.Decision.ID == id {
				out = append(out, ev)
			}
		}
		return out
	}

	late, onTime := authorize(), authorize()
	if err := clk.WaitForTimers(1); err != nil { // Run's ticker
		t.Fatal(err)
	}
	clk.Advance(gateway.DecisionTTL - time.Minute)
	if got := outcome(onTime); got != http.StatusNoContent {
		t.Fatalf("an outcome within DecisionTTL: %d, want 204", got)
	}
	if id := <-recorded; id != onTime { // recorded before the 204
		t.Fatalf("recorded an outcome of %s, want %s", id, onTime)
	}
	if r := results(onTime); len(r) != 1 || r[0].Outcome.Status != warden.StatusOK {
		t.Errorf("the outcome within DecisionTTL recorded %+v, want one ok", r)
	}

	clk.Advance(2 * time.Minute)
	// Run expires on its own goroutine: wait for its record, within 10s of real time.
	select {
	case id := <-recorded:
		if id != late {
			t.Fatalf("recorded an outcome of %s, want the expired %s", id, late)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a decision past DecisionTTL was not closed")
	}
	if r := results(late); len(r) != 1 || r[0].Outcome.Status != warden.StatusError {
		t.Errorf("the expired decision recorded %+v, want one error", r)
	}
	if got := outcome(late); got != http.StatusNotFound {
		t.Errorf("an outcome after DecisionTTL: %d, want 404", got)
	}
}

// notifyingAudit is a recordingAudit that also sends the decision id of each tool.result it
// keeps, so that a test can wait for a record made on another goroutine without polling.
type notifyingAudit struct {
	*recordingAudit
	results chan<- string
}

func (a notifyingAudit) Append(ctx context.Context, ev *warden.AuditEvent) error {
	err := a.recordingAudit.Append(ctx, ev)
	if err == nil && ev.Type == warden.EventToolResult {
		a.results <- ev.Decision.ID
	}
	return err
}
