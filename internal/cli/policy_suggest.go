package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/wardenhq/warden/internal/apitype"
)

var policySuggestCommands = []command{
	{"policy suggest", "--agent A [--since 30d] [--format yaml|cedar]", "the smallest grants that cover what an agent did, and the grants it did not use", policySuggest},
}

// policySuggest prints the suggested grants as a warden.yaml grants fragment (for `warden
// apply`) or a Cedar file (for `warden policy apply`), and, as comments after them, what the
// suggestion read and the grants in force that the agent did not use.
func policySuggest(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var agent, since, format string
	inv.fs.StringVar(&agent, "agent", "", "agent name (required)")
	inv.fs.StringVar(&since, "since", "30d", "the period: a duration ago (30d, 12h) or an RFC 3339 time")
	inv.fs.StringVar(&format, "format", "yaml", "yaml (a warden.yaml grants fragment) or cedar (a policy file)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if agent == "" {
		return usagef("--agent is required")
	}
	comment := "#"
	switch format {
	case "yaml":
	case "cedar":
		comment = "//"
	default:
		return usagef("--format is yaml or cedar, not %q", format)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	rep, err := c.Suggest(ctx, agent, since)
	if err != nil {
		return err
	}
	return inv.print(rep, func(w io.Writer) {
		text := rep.YAML
		if format == "cedar" {
			text = rep.Cedar
		}
		io.WriteString(w, text)
		writeSuggestNotes(w, comment, rep)
	})
}

func writeSuggestNotes(w io.Writer, comment string, rep *apitype.SuggestReport) {
	fmt.Fprintf(w, "\n%s %d calls of %s since %s covered by %d grants", comment, rep.Calls, rep.Agent, fmtTime(rep.Since), len(rep.Grants))
	if rep.Truncated {
		fmt.Fprintf(w, " (only the first %d calls were read)", apitype.MaxSuggestEvents)
	}
	if rep.Skipped > 0 {
		fmt.Fprintf(w, "; %d calls name a tool or action no grant can name", rep.Skipped)
	}
	fmt.Fprintln(w, ".")
	if len(rep.Unused) == 0 {
		fmt.Fprintf(w, "%s No grant in force for %s went unused.\n", comment, rep.Agent)
		return
	}
	fmt.Fprintf(w, "%s Unused in the period, proposed for removal:\n", comment)
	for _, u := range rep.Unused {
		fmt.Fprintf(w, "%s   %s (%s line %d)\n", comment, strings.ReplaceAll(u.Policy, "\n", " "), u.File, u.Line)
	}
}
