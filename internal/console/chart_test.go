package console

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// TestHoursChart: one bar an hour, heights in proportion to the busiest hour's, and a summary
// that names the busiest hour, so the chart reads without its colours.
func TestHoursChart(t *testing.T) {
	var hours [24]int64
	hours[9], hours[10], hours[14] = 40, 20, 10
	ch := hoursChart(hours)
	if len(ch.Bars) != 24 || ch.Total != 70 || ch.Max != 40 {
		t.Fatalf("chart %+v", ch)
	}
	if ch.Bars[9].H != chartHeight || ch.Bars[10].H != chartHeight/2 || ch.Bars[14].H != chartHeight/4 || ch.Bars[3].H != 0 {
		t.Fatalf("bar heights 9h %d, 10h %d, 14h %d, 3h %d", ch.Bars[9].H, ch.Bars[10].H, ch.Bars[14].H, ch.Bars[3].H)
	}
	if ch.Bars[9].Minute != "09:00" || !strings.Contains(ch.Summary, "busiest hour of the day is 09:00–09:59 UTC with 40") {
		t.Fatalf("labels %q, summary %q", ch.Bars[9].Minute, ch.Summary)
	}
	if empty := hoursChart([24]int64{}); empty.Total != 0 || empty.Bars[0].H != 0 {
		t.Fatalf("an empty baseline: %+v", empty)
	}
}

// TestAgentPageChartsTheBaseline: the agent's page, rendered whole, holds the baseline's hours
// chart and its text.
func TestAgentPageChartsTheBaseline(t *testing.T) {
	c, err := New(Options{Key: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	var hours [24]int64
	hours[9] = 12
	d := &agentPage{Agent: &warden.Agent{Name: "deploy-bot", Status: warden.AgentActive}, Baseline: &apitype.Baseline{Agent: "deploy-bot", Calls: 12, HoursOfDay: hours},
		Hours: hoursChart(hours)}
	w := httptest.NewRecorder()
	c.render(w, 200, "agent", view{Title: "deploy-bot", Me: &visit{Person: &warden.Principal{Name: "admin", Role: warden.RoleAdmin}}, Data: d})
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `aria-labelledby="hours-desc"`) || !strings.Contains(body, "12 calls learned; the busiest hour of the day is 09:00–09:59 UTC with 12.") ||
		!strings.Contains(body, "<title>09:00: 12 calls</title>") {
		t.Fatalf("the agent's page: %d %s", w.Code, body)
	}
}
