package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

var agentCommands = []command{
	{"agent create", "NAME --owner EMAIL --purpose TEXT [--ttl 90d] [--label k=v ...]", "create an agent identity and print its client credentials once", agentCreate},
	{"agent list", "", "list agents", agentList},
	{"agent show", "NAME", "show an agent", agentShow},
	{"agent suspend", "NAME --reason TEXT", "suspend an agent: its tokens die at once", agentSuspend},
	{"agent resume", "NAME --reason TEXT", "make a suspended agent active again", agentResume},
	{"agent renew", "NAME [--ttl 90d]", "extend an agent identity's lifetime", agentRenew},
	{"agent rotate-secret", "NAME", "issue a new client secret; the old one and all tokens stop working", agentRotate},
	{"agent delete", "NAME", "delete an agent identity", agentDelete},
}

func agentCreate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var spec apitype.AgentSpec
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
	out, err := c.CreateAgent(ctx, spec)
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { printCredentials(w, "created", out) })
}

func printCredentials(w io.Writer, what string, out *apitype.CreatedAgent) {
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
	agents, err := c.Agents(ctx)
	if err != nil {
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
func agentAction(ctx context.Context, inv *invocation, call func(c *apiclient.Client, name string) (*warden.Agent, error)) error {
	return byName(inv, call, printAgent)
}

// byName runs a command whose one argument is a NAME: it calls the API with it and prints the
// answer with say, or as JSON.
func byName[T any](inv *invocation, call func(c *apiclient.Client, name string) (T, error), say func(io.Writer, T)) error {
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out, err := call(c, pos[0])
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { say(w, out) })
}

func agentShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	return agentAction(ctx, inv, func(c *apiclient.Client, name string) (*warden.Agent, error) { return c.Agent(ctx, name) })
}

func agentSuspend(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var reason string
	inv.reasonFlag(&reason, true)
	return agentAction(ctx, inv, func(c *apiclient.Client, name string) (*warden.Agent, error) {
		return c.SuspendAgent(ctx, name, reason)
	})
}

func agentResume(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var reason string
	inv.reasonFlag(&reason, true)
	return agentAction(ctx, inv, func(c *apiclient.Client, name string) (*warden.Agent, error) { return c.ResumeAgent(ctx, name, reason) })
}

func agentRenew(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var ttl string
	inv.fs.StringVar(&ttl, "ttl", "", "new lifetime from now, e.g. 90d (default 90d)")
	return agentAction(ctx, inv, func(c *apiclient.Client, name string) (*warden.Agent, error) { return c.RenewAgent(ctx, name, ttl) })
}

func agentRotate(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	rotate := func(c *apiclient.Client, name string) (*apitype.CreatedAgent, error) {
		return c.RotateSecret(ctx, name)
	}
	return byName(inv, rotate, func(w io.Writer, out *apitype.CreatedAgent) { printCredentials(w, "has a new client secret", out) })
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
	if err := c.DeleteAgent(ctx, pos[0]); err != nil {
		return err
	}
	return inv.print(map[string]any{"deleted": pos[0]}, func(w io.Writer) {
		fmt.Fprintf(w, "Agent %q deleted.\n", pos[0])
	})
}
