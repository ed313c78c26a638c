package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

var replayCommands = []command{
	{"replay", "FILE.jsonl | --from-audit --since DURATION [--policies FILE|DIR]...", "decide recorded sessions or the audit log's tool calls again, with candidate policies; non-zero exit on an unmet expectation", replay},
}

// maxReplayFile bounds a replay file read by the CLI; the server takes at most as much.
const maxReplayFile = 64 << 20

// ReplayMismatchError reports the steps and sessions of a replay whose expectation failed.
type ReplayMismatchError struct{ Mismatches int }

func (e *ReplayMismatchError) Error() string {
	return fmt.Sprintf("%d expectations of the replay were not met", e.Mismatches)
}

func replay(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var since string
	var policies listFlag
	var fromAudit bool
	inv.fs.Var(&policies, "policies", "replay with these policy files (a file or a directory, repeatable) instead of the ones in force")
	inv.fs.BoolVar(&fromAudit, "from-audit", false, "replay the audit log's tool calls instead of a file")
	inv.fs.StringVar(&since, "since", "", "with --from-audit: the calls since this time (RFC 3339) or for this long (7d, 12h)")
	pos, err := inv.parseOptional(0, "FILE.jsonl")
	if err != nil {
		return err
	}
	var req apitype.ReplayRequest
	switch {
	case fromAudit && (len(pos) > 0 || since == ""):
		return usagef("--from-audit takes --since and no file (usage: warden %s %s)", inv.cmd.name, inv.cmd.args)
	case fromAudit:
		req.FromAudit = &apitype.ReplayFromAudit{Since: since}
	case len(pos) == 0 || since != "":
		return usagef("give a replay file, or --from-audit --since DURATION (usage: warden %s %s)", inv.cmd.name, inv.cmd.args)
	default:
		b, err := warden.ReadFileLimited(pos[0], maxReplayFile)
		if err != nil {
			return usagef("%v", err)
		}
		if req.Sessions, err = apitype.ReadReplaySessions(bytes.NewReader(b)); err != nil {
			return usagef("%s: %s", pos[0], warden.ErrorMessage(err))
		}
	}
	for _, p := range policies {
		files, err := readPolicyFiles(p)
		if err != nil {
			return err
		}
		if req.Files == nil {
			req.Files = map[string]string{}
		}
		for name, text := range files {
			if _, dup := req.Files[name]; dup {
				return usagef("two --policies give a file named %s", name)
			}
			req.Files[name] = text
		}
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	rep, err := c.Replay(ctx, req)
	if err != nil {
		return err
	}
	if err := inv.print(rep, func(w io.Writer) { printReplay(w, rep) }); err != nil {
		return err
	}
	if rep.Summary.Mismatches > 0 {
		return &ReplayMismatchError{Mismatches: rep.Summary.Mismatches}
	}
	return nil
}

// printReplay writes a replay's report for people: a table per session, or the audit events
// whose decision would change, then the summary.
func printReplay(w io.Writer, rep *apitype.ReplayReport) {
	for _, s := range rep.Sessions {
		fmt.Fprintf(w, "%s (agent %s, session %s)\n", s.Name, s.Agent, s.Session)
		rows := make([][]string, 0, len(s.Steps))
		for _, st := range s.Steps {
			mark := ""
			if st.Mismatch {
				mark = "MISMATCH: expected " + st.Expect
			}
			rows = append(rows, []string{"  " + strconv.Itoa(st.Index), st.Tool + ":" + st.Action, st.Label, st.Labels.Effect.Value,
				st.Effect, st.Reason, strings.Join(st.Policies, ","), taintedList(st.Tainted), mark})
		}
		table(w, []string{"  STEP", "CALL", "LABEL", "EFFECT", "DECISION", "REASON", "POLICIES", "TAINTED", ""}, rows)
		if s.Mismatch != "" {
			fmt.Fprintf(w, "  MISMATCH: %s\n", s.Mismatch)
		}
		fmt.Fprintln(w)
	}
	if a := rep.Audit; a != nil {
		fmt.Fprintf(w, "Audit log since %s: %d tool calls, %d decided by policy and replayed.\n", fmtTime(a.Since), a.Events, a.Replayed)
		var rows [][]string
		for _, d := range a.Decisions {
			if d.Changed {
				rows = append(rows, []string{strconv.FormatInt(d.Seq, 10), fmtTime(d.Time), d.Agent, d.Tool + ":" + d.Action, d.Recorded, d.Replayed, d.Reason, strings.Join(d.Policies, ",")})
			}
		}
		if len(rows) > 0 {
			fmt.Fprintln(w)
			table(w, []string{"SEQ", "TIME", "AGENT", "CALL", "RECORDED", "REPLAYED", "REASON", "POLICIES"}, rows)
		}
		fmt.Fprintf(w, "\nWould have blocked %d calls that were allowed; would have allowed %d that were denied or held.\n", a.WouldBlock, a.WouldAllow)
		if a.Truncated {
			fmt.Fprintf(w, "Only the first %d events were replayed: narrow --since.\n", apitype.MaxReplayAuditEvents)
		}
	}
	sum := rep.Summary
	version := "candidate policies"
	if rep.PolicyVersion != 0 {
		version = "policy version " + strconv.FormatInt(rep.PolicyVersion, 10)
	}
	fmt.Fprintf(w, "Summary (%s): %d calls, %d allowed, %d denied, %d held for approval\n", version, sum.Calls, sum.Allowed, sum.Denied, sum.Held)
	for _, e := range sortedKeys(sum.ByEffect) {
		c := sum.ByEffect[e]
		if e == "" {
			e = "unlabelled"
		}
		fmt.Fprintf(w, "  effect %-10s %d calls, %d allowed, %d denied, %d held\n", e+":", c.Calls, c.Allowed, c.Denied, c.Held)
	}
	if sum.AttackCalls > 0 {
		fmt.Fprintf(w, "Attack calls blocked: %d of %d (%.1f%%)\n", sum.AttackBlocked, sum.AttackCalls, 100*sum.AttackRatio)
	}
	if sum.BenignCalls > 0 {
		fmt.Fprintf(w, "Benign calls allowed: %d of %d (%.1f%%)\n", sum.BenignAllowed, sum.BenignCalls, 100*sum.BenignRatio)
	}
	for _, m := range sum.Misses {
		fmt.Fprintf(w, "  miss: %s step %d (%s, %s): %s\n", m.Session, m.Step, m.Label, m.Effect, m.Why)
	}
	if sum.Mismatches > 0 {
		fmt.Fprintf(w, "%d expectations not met\n", sum.Mismatches)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}

func taintedList(ts []apitype.ReplayTaint) string {
	parts := make([]string, 0, len(ts))
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%s<-%d", t.Arg, t.SourceStep))
	}
	return strings.Join(parts, ",")
}
