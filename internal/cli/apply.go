package cli

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/yamldoc"
)

var applyCommands = []command{
	{"apply", "-f warden.yaml [--dry-run]", "declare agents, tools, grants and budgets; prints the plan (created, changed, removed)", applyCmd},
	{"budget set", "AGENT [--tool T] [--action A] SPEC", "set a budget: 'rate 20/hour', 'quota 1000/day', 'concurrency 4', 'sum amount 500/day'", budgetSet},
	{"budget show", "AGENT", "show an agent's budgets: use against limit", budgetShow},
	{"budget delete", "ID", "delete a budget", budgetDelete},
}

func applyCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var file string
	var req apitype.ApplyRequest
	inv.fs.StringVar(&file, "f", "", "the warden.yaml file (required)")
	inv.fs.BoolVar(&req.DryRun, "dry-run", false, "print the plan and change nothing")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if file == "" {
		return usagef("-f FILE is required")
	}
	b, err := readLimited(file)
	if err != nil {
		return err
	}
	if err := refuseSupplyChain(file, b); err != nil {
		return err
	}
	if err := decodeYAML(file, b, &req.Document); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	plan, err := c.Apply(ctx, req)
	if err != nil {
		return withPlace(file, b, err)
	}
	return inv.print(plan, func(w io.Writer) { printPlan(w, plan) })
}

var entryRE = regexp.MustCompile(`^(agent|tool) (\S+): (.*)$`)

// withPlace quotes where in the document the server's refusal of an agent or a tool points:
// `warden.yaml: tools[2].risk: unknown risk "hgh": use low, medium, high or critical (line 14)`.
func withPlace(file string, doc []byte, err error) error {
	if warden.ErrorCode(err) != warden.EInvalid {
		return err
	}
	msg := warden.ErrorMessage(err)
	m := entryRE.FindStringSubmatch(msg)
	if m == nil {
		return err
	}
	path, line, ok := yamldoc.Locate(doc, m[1]+"s", m[2], m[3])
	if !ok {
		return err
	}
	return warden.Errorf(warden.EInvalid, "%s: %s: %s (line %d)", file, path, msg, line)
}

// refuseSupplyChain names why a document with supply_chain: is refused, where the strict
// decoder would only say the key is unknown: publishers and the Sigstore trusted root are trust
// roots, kept in each replica's server configuration, and never set through the admin API.
func refuseSupplyChain(name string, b []byte) error {
	var top map[string]any
	if yaml.Unmarshal(b, &top) != nil {
		return nil // the strict decoder names the problem
	}
	if _, ok := top["supply_chain"]; ok {
		return usagef("%s: supply_chain (trusted publishers, the Sigstore trusted root) is server configuration, not something warden apply sets: put it in the configuration file of every 'warden serve' replica and restart them (see docs/supply-chain.md)", name)
	}
	return nil
}

func printPlan(w io.Writer, plan *apitype.Plan) {
	symbol := map[string]string{"create": "+", "update": "~", "remove": "-", "unchanged": " "}
	counts := map[string]int{}
	for _, ch := range plan.Changes {
		counts[ch.Op]++
		if ch.Op == "unchanged" {
			continue
		}
		line := fmt.Sprintf("%s %-6s %s", symbol[ch.Op], ch.Kind, ch.Name)
		if ch.Detail != "" {
			line += "  (" + ch.Detail + ")"
		}
		fmt.Fprintln(w, line)
	}
	if plan.DryRun {
		fmt.Fprintf(w, "Plan (dry run, nothing changed): %d to create, %d to update, %d to remove, %d unchanged.\n", counts["create"], counts["update"], counts["remove"], counts["unchanged"])
	} else {
		fmt.Fprintf(w, "Applied: %d created, %d updated, %d removed, %d unchanged.\n", counts["create"], counts["update"], counts["remove"], counts["unchanged"])
	}
	if plan.PolicyVersion > 0 {
		fmt.Fprintf(w, "Policy version %d in force.\n", plan.PolicyVersion)
	}
	for _, m := range plan.Manifests {
		printPins(w, m)
	}
	for _, n := range sortedKeys(plan.Credentials) {
		cr := plan.Credentials[n]
		fmt.Fprintf(w, "\nAgent %q created. Its client secret is shown only this once:\n", n)
		kv(w, "client_id", cr.ClientID, "client_secret", cr.ClientSecret)
	}
}

func budgetSet(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var spec apitype.BudgetSpec
	inv.fs.StringVar(&spec.Tool, "tool", "", "only calls to this tool")
	inv.fs.StringVar(&spec.Action, "action", "", "only this action of the tool")
	pos, err := inv.parseOptional(2, "AGENT", "SPEC", "", "")
	if err != nil {
		return err
	}
	// The spec is several words ("rate 20/hour"), quoted or not.
	spec.Agent = pos[0]
	for i, p := range pos[1:] {
		if i > 0 {
			spec.Spec += " "
		}
		spec.Spec += p
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	b, err := c.SetBudget(ctx, spec)
	if err != nil {
		return err
	}
	return inv.print(b, func(w io.Writer) { fmt.Fprintf(w, "Budget %v set (id %v).\n", spec.Spec, b.ID) })
}

func budgetShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("AGENT")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.Budgets(ctx, pos[0])
	if err != nil {
		return err
	}
	return inv.print(list, func(w io.Writer) {
		rows := make([][]string, 0, len(list))
		for _, b := range list {
			scope := "all tools"
			if b.Tool != "" {
				scope = b.Tool
				if b.Action != "" {
					scope += " " + b.Action
				}
			}
			limit := strconv.FormatFloat(b.Limit, 'f', -1, 64)
			if b.Window > 0 {
				limit += "/" + fmtDuration(b.Window)
			}
			resets := "-"
			if !b.ResetsAt.IsZero() {
				resets = fmtTime(b.ResetsAt)
			}
			rows = append(rows, []string{b.Kind, scope, b.Arg, strconv.FormatFloat(b.Used, 'f', -1, 64), limit, strconv.FormatFloat(b.Remaining, 'f', -1, 64), resets, b.ID})
		}
		table(w, []string{"KIND", "SCOPE", "ARG", "USED", "LIMIT", "REMAINING", "RESETS", "ID"}, rows)
	})
}

func budgetDelete(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("ID")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if err := c.DeleteBudget(ctx, pos[0]); err != nil {
		return err
	}
	return inv.print(map[string]string{"deleted": pos[0]}, func(w io.Writer) { fmt.Fprintf(w, "Budget %s deleted.\n", pos[0]) })
}
