package approval_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/approval"
)

// TestFindingWebhooks: a detection finding reaches the approval webhooks, as JSON with its
// evidence and the command that acknowledges it, and as Slack text with what the agent chose
// escaped.
func TestFindingWebhooks(t *testing.T) {
	t.Parallel()
	bodies := make(chan []byte, 4)
	paths := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		paths <- r.URL.Path
		bodies <- b
	}))
	defer srv.Close()
	f := newFakeFixture(t, approval.Options{Hold: time.Second, BaseURL: "https://warden.example.com", Webhooks: []approval.Webhook{
		{URL: srv.URL + "/json", Timeout: time.Second},
		{URL: srv.URL + "/slack", Format: "slack", Timeout: time.Second},
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	a := apitype.Alert{ID: "01JFINDING0000000000000000", Time: time.Now().UTC(), Kind: "first_seen_host", Agent: "mail-bot", Tool: "egress", Action: "connect",
		Risk: warden.RiskHigh, Step: "approve", Baseline: "3 distinct egress hosts, never <https://evil.example|x>:443", Observed: "<https://evil.example|x>:443",
		SourceEvent: "01JSOURCE00000000000000000", HoldUntil: "2026-12-09T00:00:00Z"}
	f.svc.NotifyFinding(a)
	got := map[string][]byte{}
	for range 2 {
		select {
		case p := <-paths:
			got[p] = <-bodies
		case <-time.After(5 * time.Second):
			t.Fatal("no notification of the finding")
		}
	}
	var m approval.FindingMessage
	if err := json.Unmarshal(got["/json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "detect.first_seen_host" || m.ID != a.ID || m.Agent != "mail-bot" || m.Step != "approve" || m.Observed != a.Observed ||
		m.URL != "https://warden.example.com/v1/alerts/"+a.ID || !strings.Contains(m.Ack, "warden alerts ack "+a.ID) || m.HoldUntil != a.HoldUntil {
		t.Fatalf("json message: %s", got["/json"])
	}
	var s struct{ Text string }
	if err := json.Unmarshal(got["/slack"], &s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.Text, "mail-bot") || !strings.Contains(s.Text, "approve") || strings.Contains(s.Text, "<https") ||
		!strings.Contains(s.Text, "&lt;https://evil.example|x&gt;:443") || !strings.Contains(s.Text, a.ID) {
		t.Fatalf("slack text: %s", s.Text)
	}
}
