package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/httpapi"
)

var agentCommands = []command{
	{"agent create", "NAME --owner EMAIL --purpose TEXT [--ttl 90d] [--label k=v ...]", "create an agent identity and print its client credentials once", agentCreate},
	{"agent list", "", "list agents", agentList},
	{"agent show", "NAME", "show an agent", agentShow},
	{"agent suspend", "NAME --reason TEXT", "suspend an agent: its tokens die at once", agentSuspend},
	{"agent resume", "NAME [--reason TEXT]", "make a suspended agent active again", agentResume},
	{"agent renew", "NAME [--ttl 90d]", "extend an agent identity's lifetime", agentRenew},
	{"agent rotate-secret", "NAME", "issue a new client secret; the old one and all tokens stop working", agentRotate},
	{"agent delete", "NAME", "delete an agent identity", agentDelete},
}

func agentPath(name string) string { return "/v1/agents/" + url.PathEscape(name) }

func agentCreate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var spec admin.AgentSpec
	labels := labelFlag{}
	inv.fs.StringVar(&spec.Owner, "owner", "", "email of the person accountable for the agent (required)")
	inv.fs.StringVar(&spec.Purpose, "purpose", "", "what the agent is for (required)")
	inv.fs.StringVar(&spec.TTL, "ttl", "", "lifetime of the identity, e.g. 90d or 720h (default 90d)")
	inv.fs.Var(labels, "label", "a label key=value (repeatable)")
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	spec.Name = pos[0]
	if len(labels) > 0 {
		spec.Labels = labels
	}
	if spec.Owner == "" || spec.Purpose == "" {
		return usagef("--owner and --purpose are required: an agent needs a person accountable for it and a job that can be described")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var out httpapi.CreatedAgent
	if err := c.do(ctx, http.MethodPost, "/v1/agents", spec, &out); err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { printCredentials(w, "created", &out) })
}

func printCredentials(w io.Writer, what string, out *httpapi.CreatedAgent) {
	fmt.Fprintf(w, "Agent %q %s.\n\n", out.Name, what)
	kv(w, "client_id", out.ClientID, "client_secret", out.ClientSecret, "expires", fmtTime(out.ExpiresAt))
	fmt.Fprintln(w, "\nThe client secret is shown only this once: store it where the agent reads its secrets.")
}

func agentList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var agents []*warden.Agent
	if err := c.do(ctx, http.MethodGet, "/v1/agents", nil, &agents); err != nil {
		return err
	}
	return inv.print(agents, func(w io.Writer) {
		now := time.Now()
		rows := make([][]string, 0, len(agents))
		for _, a := range agents {
			status := string(a.Status)
			if a.Status == warden.AgentActive && a.Expired(now) {
				status = "expired"
			}
			rows = append(rows, []string{a.Name, status, a.Owner, fmtUntil(a.ExpiresAt, now), a.ID, truncate(a.Purpose, 48)})
		}
		table(w, []string{"NAME", "STATUS", "OWNER", "EXPIRES", "CLIENT ID", "PURPOSE"}, rows)
	})
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func printAgent(w io.Writer, a *warden.Agent) {
	now := time.Now()
	kv(w,
		"name", a.Name,
		"client_id", a.ID,
		"status", string(a.Status),
		"reason", a.StatusReason,
		"owner", a.Owner,
		"purpose", a.Purpose,
		"labels", fmtLabels(a.Labels),
		"epoch", fmt.Sprint(a.Epoch),
		"created", fmtTime(a.CreatedAt),
		"updated", fmtTime(a.UpdatedAt),
		"expires", fmtTime(a.ExpiresAt)+" ("+fmtUntil(a.ExpiresAt, now)+")",
	)
}

// agentAction runs a command that names one agent and answers with it.
func agentAction(ctx context.Context, inv *invocation, method, suffix string, body func() any) error {
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var in any
	if body != nil {
		in = body()
	}
	var a warden.Agent
	if err := c.do(ctx, method, agentPath(pos[0])+suffix, in, &a); err != nil {
		return err
	}
	return inv.print(&a, func(w io.Writer) { printAgent(w, &a) })
}

func agentShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	return agentAction(ctx, inv, http.MethodGet, "", nil)
}

func agentSuspend(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req httpapi.ReasonRequest
	inv.fs.StringVar(&req.Reason, "reason", "", "why (required; recorded in the audit log)")
	return agentAction(ctx, inv, http.MethodPost, "/suspend", func() any { return req })
}

func agentResume(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req httpapi.ReasonRequest
	inv.fs.StringVar(&req.Reason, "reason", "", "why (recorded in the audit log)")
	return agentAction(ctx, inv, http.MethodPost, "/resume", func() any { return req })
}

func agentRenew(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req httpapi.RenewRequest
	inv.fs.StringVar(&req.TTL, "ttl", "", "new lifetime from now, e.g. 90d (default 90d)")
	return agentAction(ctx, inv, http.MethodPost, "/renew", func() any { return req })
}

func agentRotate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	var out httpapi.CreatedAgent
	if err := c.do(ctx, http.MethodPost, agentPath(pos[0])+"/rotate-secret", struct{}{}, &out); err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { printCredentials(w, "has a new client secret", &out) })
}

func agentDelete(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, agentPath(pos[0]), nil, nil); err != nil {
		return err
	}
	return inv.print(map[string]any{"deleted": pos[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "Agent %q deleted.\n", pos[0])
	})
}
