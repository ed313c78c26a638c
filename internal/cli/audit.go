package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
)

var auditCommands = []command{
	{"audit search", "[--agent NAME] [--type T] [--decision D] [--since 1h] [--until T] [--limit N]", "search the audit log", auditSearch},
}

func auditSearch(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	q := url.Values{}
	for _, f := range []struct{ flag, param, help string }{
		{"agent", "agent", "agent name or id"},
		{"tool", "tool", "tool name"},
		{"action", "action", "action"},
		{"type", "type", "event type, or a prefix such as agent.*"},
		{"decision", "decision", "allow, deny, …"},
		{"session", "session", "session id"},
		{"on-behalf-of", "on_behalf_of", "the person an agent acted for"},
		{"since", "since", "RFC 3339 time or a duration ago (1h, 7d)"},
		{"until", "until", "RFC 3339 time or a duration ago"},
		{"limit", "limit", "at most this many events (default 100, max 1000)"},
	} {
		inv.fs.Func(f.flag, f.help, func(v string) error { q.Set(f.param, v); return nil })
	}
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var evs []*warden.AuditEvent
	if err := c.do(ctx, http.MethodGet, "/v1/audit/events?"+q.Encode(), nil, &evs); err != nil {
		return err
	}
	if inv.json {
		// One event a line, for jq and log shippers.
		enc := json.NewEncoder(inv.env.Stdout)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		return nil
	}
	rows := make([][]string, 0, len(evs))
	for _, ev := range evs {
		actor := ev.Actor.Name
		if actor == "" {
			actor = ev.Actor.ID
		}
		target := strings.Trim(strings.Join([]string{ev.Target.Tool, ev.Target.Action, ev.Target.Resource}, " "), " ")
		detail := ev.Decision.Reason
		if ev.Decision.Message != "" {
			detail = strings.TrimSpace(detail + " " + ev.Decision.Message)
		}
		rows = append(rows, []string{strconv.FormatInt(ev.Seq, 10), fmtTime(ev.Time), ev.Type, ev.Actor.Kind + ":" + actor, target, ev.Decision.Effect, truncate(detail, 60)})
	}
	table(inv.env.Stdout, []string{"SEQ", "TIME", "TYPE", "ACTOR", "TARGET", "EFFECT", "DETAIL"}, rows)
	return nil
}
