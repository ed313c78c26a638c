package server_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

// parseMetrics parses a Prometheus text exposition.
func parseMetrics(t testing.TB, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parsing the exposition: %v", err)
	}
	return fams
}

// series returns the labels of each series of a family, as "k=v,k=v" sorted by key, with its
// value (a counter's or gauge's value, a histogram's count).
func series(fam *dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if fam == nil {
		return out
	}
	for _, m := range fam.Metric {
		var ls []string
		for _, l := range m.Label {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		slices.Sort(ls)
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		out[strings.Join(ls, ",")] = v
	}
	return out
}

func (in *instance) scrape(token string) map[string]*dto.MetricFamily {
	in.t.Helper()
	r := in.do("GET", "/metrics", map[string]string{"Authorization": "Bearer " + token}, "")
	if r.status != 200 {
		in.t.Fatalf("GET /metrics: %d %s", r.status, r.body)
	}
	return parseMetrics(in.t, strings.NewReader(string(r.body)))
}

// TestMetrics makes real calls through /mcp and /v1/authorize and reads them back from /metrics
// with an auditor's token: every call counted once under its entry point, registered tool,
// known action, effect and reason; names the agent chose are "other"; the gauges of the parts
// are there; a person without a token or of role approver gets no metrics; the metrics listener
// serves them without a token.
func TestMetrics(t *testing.T) {
	t.Parallel()
	up := newMCPUpstream(t)
	rec := newRecorder(t)
	in := start(t, t.TempDir(), func(c *config.Config) { c.Telemetry.MetricsListen = "127.0.0.1:0" })
	doc := `
agents:
  - name: notes-bot
    owner: bob@example.com
    purpose: Take notes
tools:
  - name: notes
    mcp: ` + up.url + `
    risk: low
grants:
  - agent: notes-bot
    tool: notes
    actions: [echo]
budgets:
  - agent: notes-bot
    tool: notes
    action: echo
    rate: 100/hour
`
	plan := in.apply(doc)
	cred := plan.Credentials["notes-bot"]
	cs := mcpConnect(t, in.url+"/mcp", in.mustToken(cred.ClientID, cred.ClientSecret))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	call := func(name string, wantError bool) {
		t.Helper()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: map[string]any{"message": "hi"}})
		if err != nil || res.IsError != wantError {
			t.Fatalf("%s: %v %+v", name, err, res)
		}
	}
	call("notes.echo", false)
	call("notes.echo", false)
	call("notes.delete_everything", true)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "notes.made_up_by_the_agent_123"}); err == nil {
		t.Fatal("a tool the upstream does not list was called")
	}

	token, _ := setupGitHub(t, in, rec)
	ask := func(body, effect string) string {
		t.Helper()
		r := in.gw("POST", "/v1/authorize", token, body, map[string]string{"Content-Type": "application/json"})
		if r.status != 200 || r.json(t)["effect"] != effect {
			t.Fatalf("authorize %s: %d %s", body, r.status, r.body)
		}
		return r.json(t)["decision_id"].(string)
	}
	id := ask(`{"tool":"github","action":"issues.list","resource":"repo:acme/web"}`, "allow")
	if r := in.gw("POST", "/v1/decisions/"+id+"/outcome", token, `{"status":"ok","latency_ms":12.5}`, map[string]string{"Content-Type": "application/json"}); r.status != 204 {
		t.Fatalf("outcome: %d %s", r.status, r.body)
	}
	ask(`{"tool":"github","action":"issues.list","resource":"repo:acme/other"}`, "deny")
	ask(`{"tool":"github","action":"free.text.of.the.agent","resource":"repo:acme/web"}`, "deny")
	ask(`{"tool":"no-such-tool-9f2","action":"x"}`, "deny")

	var auditor httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &auditor, "admin", "token", "create", "metrics-reader", "--role", "auditor")
	fams := in.scrape(auditor.Token)

	got := series(fams["warden_calls_total"])
	want := map[string]float64{
		"action=echo,effect=allow,entry=mcp,reason=policy_allow,tool=notes":                    2,
		"action=delete_everything,effect=deny,entry=mcp,reason=no_matching_policy,tool=notes":  1,
		"action=other,effect=deny,entry=mcp,reason=unknown_tool,tool=notes":                    1,
		"action=issues.list,effect=allow,entry=authorize,reason=policy_allow,tool=github":      1,
		"action=issues.list,effect=deny,entry=authorize,reason=no_matching_policy,tool=github": 1,
		"action=other,effect=deny,entry=authorize,reason=no_matching_policy,tool=github":       1,
		"action=other,effect=deny,entry=authorize,reason=unknown_tool,tool=other":              1,
	}
	if !mapsEqual(got, want) {
		t.Errorf("warden_calls_total:\n got %v\nwant %v", got, want)
	}
	if got := series(fams["warden_decision_duration_seconds"]); got["effect=allow,entry=mcp"] != 2 || got["effect=deny,entry=authorize"] != 3 {
		t.Errorf("warden_decision_duration_seconds: %v", got)
	}
	if got := series(fams["mcp_server_operation_duration_seconds"]); !mapsEqual(got, map[string]float64{"action=echo,gen_ai_tool_name=notes,status=ok": 2}) {
		t.Errorf("mcp_server_operation_duration_seconds: %v", got)
	}
	if got := series(fams["warden_upstream_duration_seconds"]); !mapsEqual(got, map[string]float64{"status=ok,tool=notes": 2, "status=ok,tool=github": 1}) {
		t.Errorf("warden_upstream_duration_seconds: %v", got)
	}
	if got := series(fams["warden_mcp_sessions"]); got[""] != 1 {
		t.Errorf("warden_mcp_sessions: %v", got)
	}
	if got := series(fams["warden_calls_in_flight"]); got[""] != 0 {
		t.Errorf("warden_calls_in_flight: %v", got)
	}
	if got := series(fams["warden_audit_events_total"]); got["type=token.issue"] != 2 || got["type=tool.call"] != 8 {
		t.Errorf("warden_audit_events_total: %v", got)
	}
	if got := series(fams["warden_audit_commit_batch_events"]); got[""] == 0 {
		t.Errorf("warden_audit_commit_batch_events: %v", got)
	}
	for _, name := range []string{"warden_audit_commit_duration_seconds", "warden_audit_queue_events", "warden_approvals_pending",
		"warden_kill_state_version", "warden_replica_kill_state_lag_versions", "warden_sandboxes", "warden_metrics_scrape_errors"} {
		if fams[name] == nil {
			t.Errorf("%s is not exported", name)
		}
	}
	budgets := series(fams["warden_budget_limit"])
	if len(budgets) != 1 {
		t.Errorf("warden_budget_limit: %v", budgets)
	}
	for k, v := range budgets {
		// A rate's bucket leaks: two calls a moment ago are a little under 2 now.
		if used := series(fams["warden_budget_used"])[k]; v != 100 || used <= 1.9 || used > 2 {
			t.Errorf("budget %s: limit %v, used %v", k, v, series(fams["warden_budget_used"]))
		}
	}
	if got := series(fams["warden_metrics_scrape_errors"]); got[""] != 0 {
		t.Errorf("warden_metrics_scrape_errors: %v", got)
	}

	// The Grafana dashboard reads only what warden exports.
	checkDashboard(t, fams)

	// No token, or a role below auditor: no metrics.
	if r := in.do("GET", "/metrics", nil, ""); r.status != 401 {
		t.Errorf("no token: %d", r.status)
	}
	var approver httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &approver, "admin", "token", "create", "approver-1", "--role", "approver")
	if r := in.do("GET", "/metrics", map[string]string{"Authorization": "Bearer " + approver.Token}, ""); r.status != 403 || strings.Contains(string(r.body), "warden_calls_total") {
		t.Errorf("approver: %d %s", r.status, r.body)
	}

	// The metrics listener: no token needed, the same figures.
	addr := in.srv.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("metrics listener: %d", resp.StatusCode)
	}
	if got := series(parseMetrics(t, resp.Body)["warden_calls_total"]); !mapsEqual(got, want) {
		t.Errorf("metrics listener's warden_calls_total: %v", got)
	}
	other, err := http.Get("http://" + addr + "/v1/agents")
	if err != nil {
		t.Fatal(err)
	}
	other.Body.Close()
	if other.StatusCode != 404 {
		t.Errorf("the metrics listener serves /v1/agents: %d", other.StatusCode)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
