package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

var policyShadowCommands = []command{
	{"policy shadow show", "", "print the candidate policy set of shadow mode (policy apply --shadow)", policyShadowShow},
	{"policy shadow report", "[--since D]", "count the calls the candidate decides otherwise than the live set, by tool, action and effect", policyShadowReport},
	{"policy shadow promote", "[--reason TEXT]", "make the candidate the live policy set's next version", policyShadowPromote},
	{"policy shadow drop", "[--reason TEXT]", "remove the candidate unpromoted", policyShadowDrop},
}

func policyShadowShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	sh, err := c.ShadowPolicies(ctx)
	if err != nil {
		return err
	}
	return inv.print(sh, func(w io.Writer) {
		fmt.Fprintf(w, "# shadow version %d beside policy version %d, %s by %s: %s\n", sh.Version, sh.Base, fmtTime(sh.CreatedAt), sh.CreatedBy, sh.Comment)
		for _, name := range sortedKeys(sh.Files) {
			fmt.Fprintf(w, "\n# ---- %s\n%s\n", name, strings.TrimRight(sh.Files[name], "\n"))
		}
	})
}

func policyShadowReport(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var since string
	inv.fs.StringVar(&since, "since", "", "the period: a duration ago (7d, 12h) or an RFC 3339 time (default: since the candidate was applied)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	rep, err := c.ShadowReport(ctx, since)
	if err != nil {
		return err
	}
	return inv.print(rep, func(w io.Writer) { writeShadowReport(w, rep) })
}

func writeShadowReport(w io.Writer, rep *apitype.PolicyShadowReport) {
	if sh := rep.Shadow; sh != nil {
		fmt.Fprintf(w, "Shadow version %d beside policy version %d, applied %s by %s.\n", sh.Version, sh.Base, fmtTime(sh.CreatedAt), sh.CreatedBy)
		if rep.ShadowError != "" {
			fmt.Fprintf(w, "No call is compared with it: it does not compile against the tools registered now (%s). Apply another or drop it.\n", rep.ShadowError)
		}
	} else {
		fmt.Fprintln(w, "No shadow policy set is applied.")
	}
	fmt.Fprintf(w, "Differences since %s: %d", fmtTime(rep.Since), rep.Diffs)
	if rep.Truncated {
		fmt.Fprintf(w, " (only the first %d were read)", apitype.MaxShadowReportEvents)
	}
	if rep.Dropped > 0 {
		fmt.Fprintf(w, "; %d more not recorded (a replica's queue was full)", rep.Dropped)
	}
	fmt.Fprintln(w, ".")
	r := rep.Replica
	if r.ShadowVersion != 0 {
		fmt.Fprintf(w, "This replica compared %d calls with shadow version %d since %s (%d differed, %d not recorded); other replicas count their own.\n",
			r.Compared, r.ShadowVersion, fmtTime(r.Since), r.Diffs, r.Dropped)
	}
	if len(rep.Groups) == 0 {
		return
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(rep.Groups))
	for _, g := range rep.Groups {
		rows = append(rows, []string{g.Tool, truncate(g.Action, 40), g.Live + " → " + g.Shadow, strconv.FormatInt(g.ShadowVersion, 10), strconv.Itoa(g.Count), strings.Join(g.Examples, " ")})
	}
	table(w, []string{"TOOL", "ACTION", "LIVE → SHADOW", "SHADOW", "CALLS", "EXAMPLES"}, rows)
}

func policyShadowPromote(ctx context.Context, inv *invocation) error {
	return shadowChange(ctx, inv, (*apiclient.Client).PromoteShadow, func(w io.Writer, ps *warden.PolicySet) {
		fmt.Fprintf(w, "Policy version %d in force (%d files): %s.\n", ps.Version, len(ps.Files), ps.Comment)
	})
}

func policyShadowDrop(ctx context.Context, inv *invocation) error {
	return shadowChange(ctx, inv, (*apiclient.Client).DropShadow, func(w io.Writer, sh *warden.PolicyShadow) {
		fmt.Fprintf(w, "Shadow version %d dropped; calls are no longer compared.\n", sh.Version)
	})
}

// shadowChange runs a change to the candidate that takes only --reason: promote and drop.
func shadowChange[T any](ctx context.Context, inv *invocation, call func(c *apiclient.Client, ctx context.Context, reason string) (T, error), say func(io.Writer, T)) error {
	inv.clientFlags()
	var reason string
	inv.reasonFlag(&reason, false)
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out, err := call(c, ctx, reason)
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) { say(w, out) })
}
