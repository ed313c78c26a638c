package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/detect"
	"github.com/wardenhq/warden/internal/gateway"
)

// TestDetectHoldOfOneResource: a finding's hold on one resource of an action (a first-seen
// egress host's) sends that resource's calls to a person and lets the action's other calls go
// ahead, where policy asks nobody; a hold of the whole action takes them all (fails when the
// pipeline asks Held without the call's resource).
func TestDetectHoldOfOneResource(t *testing.T) {
	env := newFailureEnv(t, permitAll)
	asked := &fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalRejected}}
	env.gw.Approvals = asked
	holds := detect.NewHolds()
	env.gw.Holds = holds
	call := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", env.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+env.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	until := time.Now().Add(time.Hour)
	holds.Put(&warden.DetectHold{Agent: "bot", Tool: "api", Action: "items.get", Resource: "item:7", Finding: "f1", Until: until})
	if got := call("/http/api/items/8"); got != http.StatusOK || asked.requests.Load() != 0 {
		t.Fatalf("another resource: status %d, %d approvals asked", got, asked.requests.Load())
	}
	if got := call("/http/api/items/7"); got == http.StatusOK || asked.requests.Load() != 1 {
		t.Fatalf("the held resource: status %d, %d approvals asked", got, asked.requests.Load())
	}
	holds.Put(&warden.DetectHold{Agent: "bot", Tool: "api", Action: "items.get", Finding: "f2", Until: until})
	if got := call("/http/api/items/8"); got == http.StatusOK || asked.requests.Load() != 2 {
		t.Fatalf("a hold of the action: status %d, %d approvals asked", got, asked.requests.Load())
	}
}
