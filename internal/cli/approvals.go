package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

var approvalCommands = []command{
	{"approvals list", "[--status pending|approved|rejected|expired|used|open|all]", "list the calls waiting for a person's approval, with the agent's recent actions", approvalsList},
	{"approvals show", "ID", "show one approval request", approvalsShow},
	{"approve", "ID [--note TEXT]", "approve a held call: it goes ahead once, with exactly these arguments", approveCmd},
	{"reject", "ID --reason TEXT", "reject a held call; the agent is told the reason", rejectCmd},
}

func approvalsList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var status string
	inv.fs.StringVar(&status, "status", "pending", "pending, approved, rejected, expired, used, open (pending or approved) or all")
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.Approvals(ctx, status)
	if err != nil {
		return err
	}
	return inv.print(list, func(w io.Writer) {
		if len(list) == 0 {
			fmt.Fprintf(w, "No %s approval requests.\n", status)
			return
		}
		for i, r := range list {
			if i > 0 {
				fmt.Fprintln(w)
			}
			printApproval(w, r, time.Now())
		}
	})
}

func approvalsShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("ID")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	r, err := c.Approval(ctx, pos[0])
	if err != nil {
		return err
	}
	return inv.print(r, func(w io.Writer) { printApproval(w, r, time.Now()) })
}

func approveCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ApproveRequest
	inv.fs.StringVar(&req.Note, "note", "", "a note for the record")
	pos, err := inv.parse("ID")
	if err != nil {
		return err
	}
	return decide(ctx, inv, func(c *apiclient.Client) (*warden.Approval, error) { return c.Approve(ctx, pos[0], req) })
}

func rejectCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.RejectRequest
	inv.fs.StringVar(&req.Reason, "reason", "", "why (required); the agent is told it")
	pos, err := inv.parse("ID")
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return usagef("--reason is required: the agent and the audit log are told why")
	}
	return decide(ctx, inv, func(c *apiclient.Client) (*warden.Approval, error) { return c.Reject(ctx, pos[0], req) })
}

func decide(ctx context.Context, inv *invocation, call func(c *apiclient.Client) (*warden.Approval, error)) error {
	c, err := inv.client()
	if err != nil {
		return err
	}
	a, err := call(c)
	if err != nil {
		return err
	}
	return inv.print(a, func(w io.Writer) {
		switch a.Status {
		case warden.ApprovalApproved:
			fmt.Fprintf(w, "Approved %s: %s may call %s %s once, with these arguments, until %s.\n", a.ID, a.AgentName, a.Tool, a.Action, fmtTime(a.ExpiresAt))
		case warden.ApprovalPending:
			fmt.Fprintf(w, "Approval %d of %d recorded for %s; %d more distinct approver(s) needed.\n", len(a.Approvals), a.Required, a.ID, a.Required-len(a.Approvals))
		case warden.ApprovalRejected:
			fmt.Fprintf(w, "Rejected %s: %s is told %q.\n", a.ID, a.AgentName, a.Note)
		default:
			fmt.Fprintf(w, "%s is %s.\n", a.ID, a.Status)
		}
	})
}

// printApproval prints one request as key: value lines, then the agent's recent actions.
func printApproval(w io.Writer, r *apitype.ApprovalView, now time.Time) {
	a := r.Approval
	agent := a.AgentName + " (owner " + a.Owner
	if a.OnBehalfOf != "" {
		agent += ", acting for " + a.OnBehalfOf
	}
	agent += ")"
	call := a.Tool + " " + a.Action
	if a.Resource != "" {
		call += " on " + a.Resource
	}
	asked := a.Reason
	switch a.Reason {
	case warden.ApprovalByPolicy:
		asked = "policy " + strings.Join(a.Policies, ", ")
	case warden.ApprovalByTool:
		asked = "the tool's approval list"
	case warden.ApprovalByRisk:
		asked = "the tool's risk (no policy waives it)"
	}
	asked += fmt.Sprintf(" (policy version %d)", a.PolicyVersion)
	status := a.Status
	if a.Open() {
		status += ", expires " + fmtUntil(a.ExpiresAt, now)
	}
	var votes []string
	for _, v := range a.Approvals {
		votes = append(votes, v.Name)
	}
	approvals := fmt.Sprintf("%d of %d", len(a.Approvals), a.Required)
	if len(votes) > 0 {
		approvals += " (" + strings.Join(votes, ", ") + ")"
	}
	var args bytes.Buffer
	if len(a.Arguments) > 0 && json.Compact(&args, a.Arguments) != nil {
		args.Reset()
		args.Write(a.Arguments)
	}
	body := uninspectedBody(a.Arguments)
	recent := "(no earlier calls in this session)"
	if len(r.Recent) > 0 {
		recent = fmt.Sprintf("the agent's last %d calls in this session:", len(r.Recent))
	}
	decide := ""
	if a.Status == warden.ApprovalPending {
		decide = "warden approve " + a.ID + " [--note TEXT]  |  warden reject " + a.ID + " --reason TEXT"
	}
	kv(w,
		"request", a.ID,
		"status", status,
		"agent", agent,
		"session", a.SessionID,
		"call", call,
		"arguments", args.String(),
		"read", flowRead(a.Flow),
		"tainted", flowTainted(a.Flow),
		"body", body,
		"risk", string(a.Risk),
		"asked by", asked,
		"approvals", approvals,
		"rejected by", a.RejectedBy,
		"note", a.Note,
		"created", fmtTime(a.CreatedAt),
		"decide", decide,
		"recent", recent,
	)
	if len(r.Recent) == 0 {
		return
	}
	rows := make([][]string, 0, len(r.Recent))
	for _, ra := range r.Recent {
		rows = append(rows, []string{"  " + fmtTime(ra.Time), ra.Tool, ra.Action, ra.Resource, ra.Effect, ra.Reason})
	}
	table(w, []string{"  TIME", "TOOL", "ACTION", "RESOURCE", "EFFECT", "REASON"}, rows)
}

// uninspectedBody says, for an HTTP call whose body warden forwarded without parsing it (a form, a
// file, plain text), that the approver cannot see it and that an approval covers those bytes
// alone; "" when there is no such body.
func uninspectedBody(arguments json.RawMessage) string {
	var args struct {
		Body       json.RawMessage `json:"body"`
		BodySHA256 string          `json:"body_sha256"`
	}
	if json.Unmarshal(arguments, &args) != nil || args.BodySHA256 == "" || args.Body != nil {
		return ""
	}
	return "NOT INSPECTED by warden (not JSON); approving approves only the body with sha256 " + args.BodySHA256
}

// flowRead says what the session of a call had read before it, "" when nothing.
func flowRead(f *warden.FlowFacts) string {
	if f == nil {
		return ""
	}
	var read []string
	if f.Evicted {
		read = append(read, "unknown: the session's state was evicted, every argument counts as tainted")
	}
	if f.UntrustedRead {
		read = append(read, "untrusted output from "+strings.Join(f.UntrustedSources, ", "))
	}
	if f.PrivateRead {
		read = append(read, "private data")
	}
	return strings.Join(read, "; ")
}

// flowTainted lists the arguments that came from untrusted output, and from which call's.
func flowTainted(f *warden.FlowFacts) string {
	if f == nil {
		return ""
	}
	var out []string
	for _, t := range f.Tainted {
		out = append(out, fmt.Sprintf("%s (%s from %s:%s, decision %s)", t.Arg, t.Kind, t.SourceTool, t.SourceAction, t.SourceDecision))
	}
	return strings.Join(out, "; ")
}
