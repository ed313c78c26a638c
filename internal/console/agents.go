package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// recentCalls is how many of an agent's latest calls its page shows, newest first.
const recentCalls = 20

// maxListed bounds the agents one page lists; the count says how many matched.
const maxListed = 200

// agentFilter is the agents page's search: a word in the name or purpose, the owner, the
// status and a label (key or key=value).
type agentFilter struct {
	Q, Owner, Status, Label string
}

func (f agentFilter) match(a *warden.Agent) bool {
	if f.Q != "" && !strings.Contains(a.Name, strings.ToLower(f.Q)) && !strings.Contains(strings.ToLower(a.Purpose), strings.ToLower(f.Q)) {
		return false
	}
	if f.Owner != "" && !strings.EqualFold(a.Owner, f.Owner) {
		return false
	}
	if f.Status != "" && string(a.Status) != f.Status {
		return false
	}
	if f.Label != "" {
		k, v, hasValue := strings.Cut(f.Label, "=")
		got, ok := a.Labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func (c *Console) agents(w http.ResponseWriter, r *http.Request, v *visit) error {
	q := r.URL.Query()
	f := agentFilter{Q: q.Get("q"), Owner: q.Get("owner"), Status: q.Get("status"), Label: q.Get("label")}
	all := c.opt.Kill.State.Load().Agents()
	var list []*warden.Agent
	matched := 0
	for _, a := range all {
		if f.match(a) {
			matched++
			if len(list) < maxListed {
				list = append(list, a)
			}
		}
	}
	c.render(w, http.StatusOK, "agents", view{Title: "Agents", Me: v, Data: struct {
		Filter   agentFilter
		Agents   []*warden.Agent
		Matched  int
		Total    int
		Statuses []warden.AgentStatus
	}{f, list, matched, len(all), []warden.AgentStatus{warden.AgentActive, warden.AgentSuspended, warden.AgentKilled}}})
	return nil
}

// agentPage is what an agent's page shows.
type agentPage struct {
	Agent    *warden.Agent
	Grants   []apitype.Policy
	Budgets  []apitype.BudgetStatus
	Recent   []*warden.AuditEvent
	Tokens   int64
	Baseline *apitype.Baseline
	Hours    *chart // the baseline's calls by hour of the day
	Report   *apitype.KillReport
	Expired  bool
}

func (c *Console) agentData(r *http.Request, name string) (*agentPage, error) {
	ctx := r.Context()
	a, err := c.opt.Admin.Agent(ctx, name)
	if err != nil {
		return nil, err
	}
	d := &agentPage{Agent: a, Expired: a.Expired(c.opt.Clock.Now())}
	if d.Grants, err = c.opt.Admin.Grants(ctx, a.Name); err != nil {
		return nil, err
	}
	if d.Budgets, err = c.opt.Admin.ShowBudgets(ctx, a.Name); err != nil {
		return nil, err
	}
	// The agent's latest events, its calls kept: a search by agent alone is read from the actor
	// indexes, where one by agent and tool.call would walk every tool.call of the log.
	latest, err := c.opt.Store.AuditEvents(ctx, warden.AuditFilter{Agent: a.ID, Newest: true, Limit: 3 * recentCalls})
	if err != nil {
		return nil, err
	}
	for i := len(latest) - 1; i >= 0 && len(d.Recent) < recentCalls; i-- {
		if latest[i].Type == warden.EventToolCall {
			d.Recent = append(d.Recent, latest[i])
		}
	}
	since := c.opt.Clock.Now().Add(-time.Hour)
	if d.Tokens, err = c.opt.Store.CountAuditEvents(ctx, warden.AuditFilter{Agent: a.ID, Type: warden.EventTokenIssue, Since: since}, 10000); err != nil {
		return nil, err
	}
	if c.opt.Detect != nil {
		if b, err := c.opt.Detect.Baseline(ctx, a.Name); err == nil {
			d.Baseline, d.Hours = b, hoursChart(b.HoursOfDay)
		}
	}
	return d, nil
}

func (c *Console) agent(w http.ResponseWriter, r *http.Request, v *visit) error {
	d, err := c.agentData(r, r.PathValue("name"))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "agent", view{Title: "Agent " + d.Agent.Name, Me: v, Flash: flash(r.URL.Query()), Data: d})
	return nil
}

// killConfirm is the page between the Kill button and the kill: it names the agent and asks
// for the reason.
func (c *Console) killConfirm(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, err := c.opt.Admin.Agent(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "kill", view{Title: "Kill " + a.Name, Me: v, Data: &agentPage{Agent: a}})
	return nil
}

// kill kills the agent through the kill switch, as `warden kill` does, and shows its report.
func (c *Console) kill(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("name")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		a, err := c.opt.Admin.Agent(r.Context(), name)
		if err != nil {
			return err
		}
		c.render(w, http.StatusBadRequest, "kill", view{Title: "Kill " + a.Name, Me: v, Error: "A reason is required to kill an agent.", Data: &agentPage{Agent: a}})
		return nil
	}
	rep, err := c.opt.Kill.Kill(r.Context(), v.Person, name, reason, nil)
	if err != nil {
		return err
	}
	a, err := c.opt.Admin.Agent(r.Context(), name)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "killed", view{Title: "Killed " + a.Name, Me: v, Data: &agentPage{Agent: a, Report: rep}})
	return nil
}

func (c *Console) suspend(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, err := c.opt.Admin.Suspend(r.Context(), v.Person, r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/agents/"+a.Name+"?"+done("suspended", a.Name, -1), http.StatusSeeOther)
	return nil
}

func (c *Console) resume(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, err := c.opt.Admin.Resume(r.Context(), v.Person, r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/agents/"+a.Name+"?"+done("resumed", a.Name, -1), http.StatusSeeOther)
	return nil
}

// hoursChart is a baseline's calls by hour of the day (UTC), one bar an hour, with its text
// equivalent: what hours are normal for the agent.
func hoursChart(hours [24]int64) *chart {
	ch := &chart{Width: chartWidth, Height: chartHeight, Max: 1}
	busiest := 0
	for h, n := range hours {
		ch.Total += n
		if n > hours[busiest] {
			busiest = h
		}
		ch.Max = max(ch.Max, n)
	}
	bw := chartWidth / len(hours)
	for h, n := range hours {
		height := int(n * int64(chartHeight) / ch.Max)
		ch.Bars = append(ch.Bars, bar{X: h * bw, Y: chartHeight - height, W: bw - 2, H: height, Calls: n, Minute: fmt.Sprintf("%02d:00", h)})
	}
	ch.AxisLabels = [2]string{"00:00", "23:00"}
	ch.Summary = fmt.Sprintf("%d calls learned; the busiest hour of the day is %02d:00–%02d:59 UTC with %d.", ch.Total, busiest, busiest, hours[busiest])
	return ch
}
