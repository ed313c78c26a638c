package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/httpapi"
)

// The calls-per-minute chart: the last chartMinutes minutes, one bar a minute.
const (
	chartMinutes = 30
	chartWidth   = 600
	chartHeight  = 120
	countCap     = 100000 // a count stops here and shows "100000+"
)

// bar is one minute of the chart, laid out by the server (SVG attributes, no style).
type bar struct {
	X, Y, W, H int
	Calls      int64
	Minute     string
}

// chart is the calls-per-minute chart with its text equivalent.
type chart struct {
	Bars       []bar
	Max        int64
	Width      int
	Height     int
	Total      int64
	Summary    string
	AxisLabels [2]string
}

type overviewPage struct {
	ByStatus  map[string]int
	Agents    int
	Denials   int64
	Pending   int
	Alerts    int
	Lockdown  warden.Lockdown
	Chart     chart
	Streaming bool
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, v *visit) error {
	d, err := c.overviewData(r.Context())
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "overview", view{Title: "Overview", Me: v, Data: d})
	return nil
}

func (c *Console) overviewData(ctx context.Context) (*overviewPage, error) {
	now := c.opt.Clock.Now().UTC()
	d := &overviewPage{ByStatus: map[string]int{}, Streaming: c.opt.Audit != nil}
	agents := c.opt.Kill.State.Load().Agents()
	for _, a := range agents {
		d.ByStatus[string(a.Status)]++
	}
	d.Agents = len(agents)
	var err error
	// Every denial (calls, tokens, people), counted by the partial index on effect.
	if d.Denials, err = c.opt.Store.CountAuditEvents(ctx, warden.AuditFilter{Effect: warden.EffectDeny, Since: now.Add(-time.Hour)}, countCap); err != nil {
		return nil, err
	}
	if c.opt.Approvals != nil {
		list, err := c.opt.Approvals.List(ctx, warden.ApprovalPending)
		if err != nil {
			return nil, err
		}
		d.Pending = len(list)
	}
	if c.opt.Detect != nil {
		alerts, err := c.opt.Detect.Alerts(ctx, "", 0, 1000)
		if err != nil {
			return nil, err
		}
		for _, a := range alerts {
			if a.Ack == nil {
				d.Alerts++
			}
		}
	}
	d.Lockdown = c.opt.Kill.State.Load().Lockdown()
	if d.Chart, err = c.callsChart(ctx, now); err != nil {
		return nil, err
	}
	return d, nil
}

// callsChart counts the tool calls (tool.call events: allowed, denied or held) of each of the
// last minutes, a few minutes at a time, each count one range of the index on type and time
// (migration 0020; before it, a count of tool.call events by time walked every tool.call of the
// log: 19 s a page with 10,000 agents and 1,000,000 events, docs/PERFORMANCE.md).
func (c *Console) callsChart(ctx context.Context, now time.Time) (chart, error) {
	end := now.Truncate(time.Minute).Add(time.Minute)
	calls := make([]int64, chartMinutes)
	errs := make([]error, chartMinutes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range chartMinutes {
		from := end.Add(time.Duration(i-chartMinutes) * time.Minute)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f := warden.AuditFilter{Type: warden.EventToolCall, Since: from, Until: from.Add(time.Minute)}
			calls[i], errs[i] = c.opt.Store.CountAuditEvents(ctx, f, countCap)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return chart{}, err
	}
	ch := chart{Width: chartWidth, Height: chartHeight, Max: 1}
	for i := range chartMinutes {
		ch.Max = max(ch.Max, calls[i])
		ch.Total += calls[i]
	}
	bw := chartWidth / chartMinutes
	for i := range chartMinutes {
		h := int(calls[i] * int64(chartHeight) / ch.Max)
		from := end.Add(time.Duration(i-chartMinutes) * time.Minute)
		ch.Bars = append(ch.Bars, bar{X: i * bw, Y: chartHeight - h, W: bw - 2, H: h, Calls: calls[i], Minute: from.Format("15:04")})
	}
	ch.AxisLabels = [2]string{ch.Bars[0].Minute, ch.Bars[len(ch.Bars)-1].Minute}
	ch.Summary = fmt.Sprintf("%d tool calls in the last %d minutes; the busiest minute had %d.", ch.Total, chartMinutes, ch.Max)
	return ch, nil
}

// highRisk picks the live stream's events: high and critical calls, denials, approvals, kills,
// lockdowns and detection's findings.
func highRisk(ev *warden.AuditEvent) bool {
	switch {
	case ev.Type == warden.EventToolCall:
		return ev.Decision.Effect == warden.EffectDeny || ev.Target.Risk == warden.RiskHigh || ev.Target.Risk == warden.RiskCritical
	case ev.Decision.Effect == warden.EffectDeny:
		return true
	}
	for _, p := range []string{"approval.", "kill.", "lockdown.", warden.EventDetectPrefix} {
		if strings.HasPrefix(ev.Type, p) {
			return true
		}
	}
	return false
}

// stream is the overview's live high-risk stream: the audit log from now on (or from
// Last-Event-ID), picked by highRisk. Every open console shares the hub's one reader of the log.
// It ends when the session does.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c.hub == nil {
		return warden.Errorf(warden.EUnavailable, "this server cannot stream its audit log")
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	head, err := c.opt.Audit.Head(ctx)
	if err != nil {
		return err
	}
	f, err := httpapi.ParseStreamFilter(nil, r.Header.Get("Last-Event-ID"), head, c.opt.Clock.Now())
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { c.watchSession(ctx, cancel, r, v) })
	return c.hub.Stream(ctx, w, f.AfterSeq, highRisk)
}

// watchSession ends a stream (cancel) once its session has ended or sat idle.
func (c *Console) watchSession(ctx context.Context, cancel context.CancelFunc, r *http.Request, v *visit) {
	seen := c.lastSeen(r, v.session)
	t := c.opt.Clock.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		ps, err := c.opt.People.BrowserSession(r)
		if err != nil || ps == nil || c.opt.Clock.Now().Sub(seen) > c.opt.Idle {
			cancel()
			return
		}
	}
}
