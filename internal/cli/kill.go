package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// The more specific commands come first: "lockdown lift" must not be read as "lockdown".
var killCommands = []command{
	{"kill", "AGENT --reason TEXT [--disable-tools T1,T2]", "take an agent's power away at once and for good: revoke, cancel, close, reject, stop", killCmd},
	{"agent restore", "AGENT --reason TEXT", "make a killed agent active again with a new client secret (admin)", restoreCmd},
	{"lockdown lift", "--reason TEXT", "end the lockdown (admin)", lockdownLift},
	{"lockdown status", "", "show whether a lockdown is in force", lockdownStatus},
	{"lockdown", "--reason TEXT [--min-risk high]", "fleet-wide break glass: deny every agent (or every call to tools of a risk or more)", lockdownCmd},
	{"quarantine", "DIGEST --reason TEXT", "take a skill version, a local MCP server package or an MCP tool manifest out of use by its digest (sha256:…) on every replica; calls in flight to it are cancelled, servers running it and sandboxes that mounted it stopped", quarantineCmd},
	{"replicas", "", "list the replicas of the fleet: heartbeat, applied state version, lag, freshness", replicasCmd},
}

func killCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.KillRequest
	var tools string
	inv.reasonFlag(&req.Reason, true)
	inv.fs.StringVar(&tools, "disable-tools", "", "comma-separated tools to disable for every agent")
	pos, err := inv.parse("AGENT")
	if err != nil {
		return err
	}
	for _, t := range strings.Split(tools, ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.DisableTools = append(req.DisableTools, t)
		}
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	r, err := c.Kill(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return inv.print(r, func(w io.Writer) {
		if r.AlreadyKilled {
			fmt.Fprintf(w, "Agent %q was already killed; what it had running here was ended again.\n\n", r.Agent)
		} else {
			fmt.Fprintf(w, "Agent %q killed: its tokens are dead everywhere and its client secret no longer works.\n\n", r.Agent)
		}
		printKillReport(w, r)
		fmt.Fprintln(w, "\nOnly 'warden agent restore' (admin) brings it back, with a new client secret.")
	})
}

func printKillReport(w io.Writer, r *apitype.KillReport) {
	pairs := []string{}
	if r.Agent != "" {
		pairs = append(pairs, "status", string(r.Status), "epoch", fmt.Sprint(r.Epoch))
	}
	pairs = append(pairs,
		"sessions invalidated", fmt.Sprint(r.SessionsInvalidated),
		"calls cancelled", fmt.Sprint(r.CallsCancelled),
		"streams closed", fmt.Sprint(r.StreamsClosed),
		"approvals rejected", fmt.Sprint(r.ApprovalsRejected),
		"sandboxes told to stop", fmt.Sprint(r.SandboxesStopped),
		"tools disabled", strings.Join(r.ToolsDisabled, ", "),
		"elapsed", fmt.Sprintf("%.1f ms", r.ElapsedMS),
	)
	kv(w, pairs...)
	printReplicaAcks(w, r.Replicas)
}

// printReplicaAcks prints what each replica did with a change, this one first.
func printReplicaAcks(w io.Writer, acks []apitype.ReplicaAck) {
	if len(acks) == 0 {
		return
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(acks))
	for _, a := range acks {
		state := "acknowledged"
		if !a.Acked {
			state = "NOT ACKNOWLEDGED"
		}
		if a.Error != "" {
			state += ": " + a.Error
		}
		rows = append(rows, []string{a.ID, state, fmt.Sprintf("%.1f ms", a.AckedMS), fmt.Sprint(a.CallsCancelled), fmt.Sprint(a.SessionsClosed), fmt.Sprint(a.SandboxesStopped)})
	}
	table(w, []string{"REPLICA", "STATE", "ACKED", "CALLS CANCELLED", "SESSIONS CLOSED", "SANDBOXES STOPPED"}, rows)
}

func replicasCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	rs, err := c.Replicas(ctx)
	if err != nil {
		return err
	}
	return inv.print(rs, func(w io.Writer) { printReplicas(w, rs, time.Now()) })
}

// printReplicas prints the fleet as a table, the answering replica marked with *.
func printReplicas(w io.Writer, rs *apitype.Replicas, now time.Time) {
	rows := make([][]string, 0, len(rs.Replicas))
	for _, r := range rs.Replicas {
		id := r.ID
		if r.Self {
			id += " *"
		}
		rows = append(rows, []string{id, orDash(r.Address), yesNo(r.Live), fmtAge(now.Sub(r.HeartbeatAt)),
			fmt.Sprint(r.AppliedVersion), fmt.Sprint(r.LagVersions), yesNo(r.Fresh)})
	}
	table(w, []string{"ID", "ADDRESS", "LIVE", "HEARTBEAT", "APPLIED", "LAG", "FRESH"}, rows)
	fmt.Fprintf(w, "\nfleet state version %d; * is the replica that answered\n", rs.Version)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// fmtAge says how long ago something was, to the millisecond under a minute.
func fmtAge(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs ago", max(d, 0).Seconds())
	}
	return fmtDuration(d) + " ago"
}

func restoreCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ReasonRequest
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("AGENT")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out, err := c.RestoreAgent(ctx, pos[0], req.Reason)
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { printCredentials(w, "restored with a new client secret", out) })
}

func lockdownCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.LockdownRequest
	var minRisk string
	inv.reasonFlag(&req.Reason, true)
	inv.fs.StringVar(&minRisk, "min-risk", "", "deny only calls to tools of this risk or more: low, medium, high, critical")
	if _, err := inv.parse(); err != nil {
		return err
	}
	req.MinRisk = warden.Risk(minRisk)
	c, err := inv.client()
	if err != nil {
		return err
	}
	r, err := c.Lockdown(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(r, func(w io.Writer) {
		scope := "every agent is denied"
		if req.MinRisk != "" {
			scope = "every call to a tool of risk " + minRisk + " or more is denied"
		}
		fmt.Fprintf(w, "Lockdown in force: %s until an admin runs 'warden lockdown lift'.\n\n", scope)
		printKillReport(w, r)
	})
}

func lockdownLift(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ReasonRequest
	inv.reasonFlag(&req.Reason, true)
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	l, err := c.LiftLockdown(ctx, req.Reason)
	if err != nil {
		return err
	}
	return inv.print(l, func(w io.Writer) { fmt.Fprintln(w, "Lockdown lifted.") })
}

func lockdownStatus(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	l, err := c.LockdownState(ctx)
	if err != nil {
		return err
	}
	return inv.print(l, func(w io.Writer) {
		if !l.Active {
			fmt.Fprintln(w, "No lockdown is in force.")
			return
		}
		scope := "every call"
		if l.MinRisk != "" {
			scope = "calls to tools of risk " + string(l.MinRisk) + " or more"
		}
		kv(w, "lockdown", "in force", "denies", scope, "reason", l.Reason, "by", l.By, "since", fmtTime(l.Since))
	})
}

func quarantineCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.QuarantineRequest
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("DIGEST")
	if err != nil {
		return err
	}
	req.Digest = pos[0]
	c, err := inv.client()
	if err != nil {
		return err
	}
	q, err := c.Quarantine(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(q, func(w io.Writer) {
		fmt.Fprintf(w, "%s quarantined: skills, server packages and tool manifests of this digest are refused on every replica.\n", q.Digest)
		if len(q.Manifests) > 0 {
			fmt.Fprintf(w, "MCP tool manifests denied: %s; %d calls in flight cancelled here.\n", strings.Join(q.Manifests, ", "), q.CallsCancelled)
		}
		if len(q.Servers) > 0 {
			fmt.Fprintf(w, "Local MCP servers refused, any running instance stopped: %s; %d calls in flight cancelled here.\n", strings.Join(q.Servers, ", "), q.CallsCancelled)
		}
		if q.SandboxesStopped > 0 {
			fmt.Fprintf(w, "Sandboxes that mounted it told to stop here: %d.\n", q.SandboxesStopped)
		}
		printReplicaAcks(w, q.Replicas)
	})
}
