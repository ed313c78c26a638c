package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

var alertCommands = []command{
	// alerts ack before alerts: the first command whose words begin the arguments runs.
	{"alerts ack", "ID --reason TEXT", "acknowledge a finding: it was looked at, and why it is fine or handled", alertsAck},
	{"alerts", "[--agent A] [-f] [--json]", "list detection's findings (docs/detect.md), and with -f follow them as they come", alertsCmd},
	{"agent baseline", "AGENT", "show what is normal for an agent, as detection learned it", agentBaseline},
}

func alertsCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var agent string
	var follow bool
	inv.fs.StringVar(&agent, "agent", "", "only this agent's findings")
	inv.fs.BoolVar(&follow, "f", false, "follow: print findings as they are recorded until interrupted")
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.Alerts(ctx, agent, 0)
	if err != nil {
		return err
	}
	if !follow {
		return inv.print(list, func(w io.Writer) {
			if len(list) == 0 {
				fmt.Fprintln(w, "No findings.")
				return
			}
			var rows [][]string
			for _, a := range list {
				rows = append(rows, alertRow(a))
			}
			table(w, alertHeader, rows)
		})
	}
	p := &alertPrinter{w: inv.env.Stdout, json: inv.json}
	for _, a := range list {
		if err := p.print(a); err != nil {
			return err
		}
	}
	// Follow the log's stream of detect.* events from where the listing ended.
	q := url.Values{"type": {warden.EventDetectPrefix + "*"}, "newest": {"true"}, "limit": {"1"}}
	_, head, err := c.AuditEvents(ctx, q)
	if err != nil {
		return err
	}
	after := max(head, 0)
	if len(list) > 0 {
		after = max(after, list[len(list)-1].Seq)
	}
	q = url.Values{"type": {warden.EventDetectPrefix + "*"}, "after": {strconv.FormatInt(after, 10)}}
	err = c.FollowAudit(ctx, q, func(ev *warden.AuditEvent) error {
		if a, ok := apitype.AlertOf(ev); ok && (agent == "" || a.Agent == agent) {
			return p.print(a)
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // interrupted, which is how -f ends
	}
	return err
}

var alertHeader = []string{"ID", "TIME", "AGENT", "KIND", "RISK", "STEP", "OBSERVED", "NORMAL", "ACK"}

func alertRow(a apitype.Alert) []string {
	ack := ""
	if a.Ack != nil {
		ack = a.Ack.By + ": " + a.Ack.Reason
	}
	return []string{a.ID, a.Time.UTC().Format(time.RFC3339), a.Agent, a.Kind, string(a.Risk), a.Step, a.Observed, a.Baseline, ack}
}

// alertPrinter prints findings one at a time as they come: one line each, or JSON lines.
type alertPrinter struct {
	w    io.Writer
	json bool
}

func (p *alertPrinter) print(a apitype.Alert) error {
	if p.json {
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(p.w, strings.Join(alertRow(a), "  "))
	return err
}

func alertsAck(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.AckRequest
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("ID")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	a, err := c.AckAlert(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return inv.print(a, func(w io.Writer) {
		fmt.Fprintf(w, "Acknowledged %s (%s of agent %s): %s\n", a.ID, a.Kind, a.Agent, a.Ack.Reason)
	})
}

func agentBaseline(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("AGENT")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	b, err := c.Baseline(ctx, pos[0])
	if err != nil {
		return err
	}
	return inv.print(b, func(w io.Writer) { printBaseline(w, b) })
}

func printBaseline(w io.Writer, b *apitype.Baseline) {
	state := "learning (no findings yet)"
	if b.Learned {
		state = "learned"
	}
	kv(w, "agent", b.Agent, "state", state,
		"watched", b.Since.UTC().Format(time.RFC3339)+" to "+b.Last.UTC().Format(time.RFC3339),
		"calls", strconv.FormatInt(b.Calls, 10), "denied", strconv.FormatInt(b.Denials, 10),
		"rate", fmt.Sprintf("%.1f calls per active minute (sd %.1f)", b.RatePerMin, b.RateSD),
		"denial share", fmt.Sprintf("%.1f%%", 100*b.DenialShare),
		"budget burn", fmt.Sprintf("%.2f%% of a limit per active minute (sd %.2f%%)", 100*b.BudgetBurnPerMin, 100*b.BudgetBurnSD),
		"bytes sent", fmt.Sprintf("%.0f per active minute (sd %.0f)", b.BytesPerMin, b.BytesSD),
		"approval requests", fmt.Sprintf("%.2f per active minute (sd %.2f)", b.ApprovalsPerMin, b.ApprovalsSD))
	section := func(title string, cs []apitype.Count) {
		fmt.Fprintln(w)
		if len(cs) == 0 {
			fmt.Fprintf(w, "%s: none\n", title)
			return
		}
		var rows [][]string
		for _, c := range cs {
			rows = append(rows, []string{c.Item, strconv.FormatInt(c.Count, 10)})
		}
		table(w, []string{strings.ToUpper(title), "CALLS"}, rows)
	}
	section("actions", b.Actions)
	section("resources", b.Resources)
	section("argument keys", b.ArgumentKeys)
	section("egress hosts", b.Hosts)
	section("transitions", b.Transitions)
	fmt.Fprintln(w)
	var hours []string
	for h, n := range b.HoursOfDay {
		if n > 0 {
			hours = append(hours, fmt.Sprintf("%02d:%d", h, n))
		}
	}
	kv(w, "active hours (UTC:calls)", strings.Join(hours, " "))
	for _, h := range b.Holds {
		what := "every call"
		if h.Tool != "" {
			what = h.Tool + " " + h.Action
		}
		if h.Resource != "" {
			what += " on " + h.Resource
		}
		kv(w, "held for approval", what+" until "+h.Until.UTC().Format(time.RFC3339)+" (finding "+h.Finding+")")
	}
}
