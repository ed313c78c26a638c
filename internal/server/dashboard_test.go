package server_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// dashboardExprs returns every PromQL expression of a Grafana dashboard: its panels' targets
// and its templating queries.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", path)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			exprs = append(exprs, q["query"].(string))
		}
	}
	return exprs
}

var (
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}`)
	promRanges    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	labelValues   = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promOperators = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression (or Grafana's label_values) reads.
func metricNames(expr string) []string {
	expr = labelValues.ReplaceAllString(expr, "$1")
	for _, re := range []*regexp.Regexp{promStrings, promMatchers, promRanges, promGrouping} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, m := range promIdent.FindAllString(expr, -1) {
		name := strings.TrimSpace(m)
		if strings.HasSuffix(name, "(") || slices.Contains(promOperators, strings.ToLower(name)) {
			continue // a function or an aggregation, or a keyword
		}
		names = append(names, name)
	}
	return names
}

// checkDashboard checks that every expression of deploy/grafana/warden.json names only metrics
// that fams, a running server's exposition, has (a histogram's _bucket, _sum and _count
// included), and at least one.
func checkDashboard(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	exported := func(name string) bool {
		if fams[name] != nil {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f := fams[strings.TrimSuffix(name, suffix)]; f != nil && strings.HasSuffix(name, suffix) && f.GetType() == dto.MetricType_HISTOGRAM {
				return true
			}
		}
		return false
	}
	for _, expr := range dashboardExprs(t, "../../deploy/grafana/warden.json") {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("the dashboard's query %q names no metric", expr)
		}
		for _, n := range names {
			if !exported(n) {
				t.Errorf("the dashboard's query %q reads %s, which warden does not export", expr, n)
			}
		}
	}
}

func TestMetricNames(t *testing.T) {
	cases := map[string][]string{
		`sum by (effect) (rate(warden_calls_total{effect!~"allow|approved",x="}"}[5m]))`: {"warden_calls_total"},
		`histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))`:       {"a_bucket"},
		`max by (budget) (warden_budget_used / warden_budget_limit)`:                     {"warden_budget_used", "warden_budget_limit"},
		`label_values(warden_calls_total, instance)`:                                     {"warden_calls_total"},
		`a_sum / on (instance) group_left (tool) b_count > bool 0`:                       {"a_sum", "b_count"},
	}
	for expr, want := range cases {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %v; want %v", expr, got, want)
		}
	}
}
