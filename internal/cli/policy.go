package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/yamldoc"
)

var policyCommands = []command{
	{"policy apply", "FILE|DIR [--comment TEXT] [--shadow]", "validate Cedar policies and store them as a new version (--shadow: as the candidate of shadow mode)", policyApply},
	{"policy history", "", "list policy versions", policyHistory},
	{"policy schema", "", "print the Cedar schema policies are validated against (context, flow facts, tools' actions)", policySchema},
	{"policy show", "[VERSION]", "print a version's policies (default: the latest)", policyShow},
	{"policy rollback", "VERSION [--reason TEXT]", "make an earlier version current again (as a new version)", policyRollback},
	{"policy test", "FILE [--policies FILE|DIR]", "check a YAML list of requests against expected decisions; non-zero exit on a mismatch", policyTest},
	{"policy explain", "--agent A --tool T --action X [--resource R] [--args JSON] [--on-behalf-of P] [--untrusted-from TOOL[:ACTION]]... [--tainted ARG]... [--private-read] [--session ID]", "explain the decision the policies in force make", policyExplain},
}

// maxPolicyFile bounds one policy or test file read by the CLI.
const maxPolicyFile = 16 << 20

// readPolicyFiles reads a .cedar file, or every .cedar file under a directory, keyed by path
// relative to the directory.
func readPolicyFiles(path string) (map[string]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	files := map[string]string{}
	if !fi.IsDir() {
		b, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(path)] = string(b)
		return files, nil
	}
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".cedar") {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		b, err := readLimited(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, usagef("no .cedar files under %s", path)
	}
	return files, nil
}

func readLimited(path string) ([]byte, error) {
	b, err := warden.ReadFileLimited(path, maxPolicyFile)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

func policyApply(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.PolicyApply
	inv.fs.StringVar(&req.Comment, "comment", "", "what changed and why (kept with the version)")
	shadow := inv.fs.Bool("shadow", false, "store them as the candidate set decided beside the live one, which changes nothing (warden policy shadow report|promote|drop)")
	pos, err := inv.parse("FILE|DIR")
	if err != nil {
		return err
	}
	if req.Files, err = readPolicyFiles(pos[0]); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if *shadow {
		sh, err := c.ApplyShadow(ctx, req)
		if err != nil {
			return err
		}
		return inv.print(sh, func(w io.Writer) {
			fmt.Fprintf(w, "Shadow version %d (%d files) decided beside policy version %d; nothing it decides is enforced.\n", sh.Version, len(sh.Files), sh.Base)
			fmt.Fprintln(w, "See where it differs with 'warden policy shadow report'; then 'warden policy shadow promote' or 'drop'.")
		})
	}
	ps, err := c.ApplyPolicies(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(ps, func(w io.Writer) {
		fmt.Fprintf(w, "Policy version %d in force (%d files).\n", ps.Version, len(ps.Files))
	})
}

func policySchema(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	sch, err := c.PolicySchema(ctx)
	if err != nil {
		return err
	}
	return inv.print(sch, func(w io.Writer) { io.WriteString(w, sch.Schema) })
}

func policyHistory(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.PolicyVersions(ctx)
	if err != nil {
		return err
	}
	return inv.print(list, func(w io.Writer) {
		rows := make([][]string, 0, len(list))
		for i, ps := range list {
			current := ""
			if i == 0 {
				current = "*"
			}
			rows = append(rows, []string{strconv.FormatInt(ps.Version, 10) + current, fmtTime(ps.CreatedAt), ps.CreatedBy, truncate(ps.Comment, 60)})
		}
		table(w, []string{"VERSION", "CREATED", "BY", "COMMENT"}, rows)
	})
}

func policyShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parseOptional(0, "VERSION")
	if err != nil {
		return err
	}
	version := "latest"
	if len(pos) == 1 {
		version = pos[0]
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	ps, err := c.PolicyVersion(ctx, version)
	if err != nil {
		return err
	}
	return inv.print(ps, func(w io.Writer) {
		fmt.Fprintf(w, "# version %d, %s by %s: %s\n", ps.Version, fmtTime(ps.CreatedAt), ps.CreatedBy, ps.Comment)
		for _, name := range sortedKeys(ps.Files) {
			fmt.Fprintf(w, "\n# ---- %s\n%s\n", name, strings.TrimRight(ps.Files[name], "\n"))
		}
	})
}

func policyRollback(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.RollbackRequest
	inv.reasonFlag(&req.Reason, false)
	pos, err := inv.parse("VERSION")
	if err != nil {
		return err
	}
	if req.Version, err = strconv.ParseInt(pos[0], 10, 64); err != nil || req.Version <= 0 {
		return usagef("VERSION must be a positive number (see 'warden policy history')")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	ps, err := c.RollbackPolicies(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(ps, func(w io.Writer) {
		fmt.Fprintf(w, "Policy version %d in force: the policies of version %d.\n", ps.Version, req.Version)
	})
}

// PolicyMismatchError reports failed policy test cases.
type PolicyMismatchError struct{ Failed, Total int }

func (e *PolicyMismatchError) Error() string {
	return fmt.Sprintf("%d of %d policy test cases failed", e.Failed, e.Total)
}

func policyTest(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var policies string
	inv.fs.StringVar(&policies, "policies", "", "test these policy files instead of the ones in force")
	pos, err := inv.parse("FILE")
	if err != nil {
		return err
	}
	b, err := readLimited(pos[0])
	if err != nil {
		return err
	}
	var req apitype.PolicyTest
	if err := decodeYAML(pos[0], b, &req.Cases); err != nil {
		return err
	}
	if policies != "" {
		if req.Files, err = readPolicyFiles(policies); err != nil {
			return err
		}
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	results, err := c.TestPolicies(ctx, req)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	err = inv.print(results, func(w io.Writer) {
		for _, r := range results {
			if r.Pass {
				fmt.Fprintf(w, "ok    %s: %s\n", r.Name, r.Got)
				policyErrors(w, "      ", r.Explanation.Decision.Errors)
				continue
			}
			fmt.Fprintf(w, "FAIL  %s: expected %s, got %s (%s)\n", r.Name, r.Expect, r.Got, r.Explanation.Decision.Reason)
			explain(w, "      ", r.Explanation)
		}
		fmt.Fprintf(w, "\n%d passed, %d failed\n", len(results)-failed, failed)
	})
	if err != nil {
		return err
	}
	if failed > 0 {
		return &PolicyMismatchError{Failed: failed, Total: len(results)}
	}
	return nil
}

// explain prints why a decision was made: the request as Cedar saw it and each policy considered.
func explain(w io.Writer, indent string, x apitype.Explanation) {
	if x.Decision.Message != "" {
		fmt.Fprintf(w, "%s%s\n", indent, x.Decision.Message)
	}
	fmt.Fprintf(w, "%srequest: principal %s, action %s, resource %s\n", indent, x.Principal, x.Action, x.Resource)
	if f := x.Flow; f != nil {
		label := func(name string, l warden.FlowLabel) string {
			s := name + "=" + l.Value + " (" + l.Source
			if l.Detail != "" {
				s += " " + l.Detail
			}
			return s + ")"
		}
		fmt.Fprintf(w, "%slabels: %s, %s, %s\n", indent, label("output", f.Labels.Output), label("data", f.Labels.Data), label("effect", f.Labels.Effect))
		session := "fresh: nothing read"
		switch {
		case f.Evicted:
			session = "evicted: every argument counts as tainted"
		case f.UntrustedRead || f.PrivateRead:
			var read []string
			if f.UntrustedRead {
				read = append(read, "untrusted output from "+strings.Join(f.UntrustedSources, ", "))
			}
			if f.PrivateRead {
				read = append(read, "private data")
			}
			session = "read " + strings.Join(read, "; ")
		}
		if f.Session != "" {
			session = f.Session + ": " + session
		}
		fmt.Fprintf(w, "%ssession: %s\n", indent, session)
		for _, t := range f.Tainted {
			src := t.SourceTool
			if t.SourceAction != "" {
				src += ":" + t.SourceAction
			}
			if t.SourceDecision != "" {
				src += " (decision " + t.SourceDecision + ")"
			}
			fmt.Fprintf(w, "%stainted: %s (%s from %s)\n", indent, t.Arg, t.Kind, src)
		}
	}
	if len(x.Decision.Policies) > 0 {
		fmt.Fprintf(w, "%sdetermined by: %s\n", indent, strings.Join(x.Decision.Policies, ", "))
	}
	policyErrors(w, indent, x.Decision.Errors)
	for _, name := range slices.Sorted(maps.Keys(x.Sets)) {
		fmt.Fprintf(w, "%sset %s: %d values\n", indent, name, x.Sets[name])
	}
	for _, p := range x.Considered {
		state := "did not match"
		switch {
		case p.Error != "":
			state = "error: " + p.Error
		case p.Matched:
			state = "matched"
		}
		fmt.Fprintf(w, "%s  %-7s %s (%s:%d) %s\n", indent, p.Effect, p.ID, p.File, p.Line, state)
	}
	fmt.Fprintf(w, "%s%d policies considered, %d ruled out by scope\n", indent, len(x.Considered), x.Skipped)
}

// policyErrors prints the policies that failed to evaluate: a permit that fails does not apply,
// so a case can pass with an error an author should still fix.
func policyErrors(w io.Writer, indent string, errs []warden.PolicyError) {
	for _, pe := range errs {
		fmt.Fprintf(w, "%spolicy error: %s: %s\n", indent, pe.Policy, pe.Message)
	}
}

func policyExplain(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.PolicyCase
	var args string
	inv.fs.StringVar(&req.Agent, "agent", "", "agent name (required)")
	inv.fs.StringVar(&req.Tool, "tool", "", "tool name (required)")
	inv.fs.StringVar(&req.Action, "action", "", "action (required)")
	inv.fs.StringVar(&req.Resource, "resource", "", "resource")
	inv.fs.StringVar(&args, "args", "", "arguments as a JSON object")
	inv.fs.StringVar(&req.OnBehalfOf, "on-behalf-of", "", "the person the agent acts for")
	var session apitype.CaseSession
	var untrusted, tainted listFlag
	inv.fs.Var(&untrusted, "untrusted-from", "the session read untrusted output of TOOL[:ACTION] (repeatable)")
	inv.fs.Var(&tainted, "tainted", "argument whose value came from that output (repeatable)")
	inv.fs.BoolVar(&session.PrivateRead, "private-read", false, "the session read private data")
	inv.fs.StringVar(&session.ID, "session", "", "the session's id")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if req.Agent == "" || req.Tool == "" || req.Action == "" {
		return usagef("--agent, --tool and --action are required")
	}
	session.UntrustedFrom, session.Tainted = untrusted, tainted
	if session.ID != "" || session.PrivateRead || len(untrusted) > 0 || len(tainted) > 0 {
		req.Session = &session
	}
	if args != "" {
		if err := yaml.Unmarshal([]byte(args), &req.Arguments); err != nil {
			return usagef("--args must be a JSON object: %v", err)
		}
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	x, err := c.ExplainPolicy(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(x, func(w io.Writer) {
		fmt.Fprintf(w, "%s (%s)\n", x.Decision.Effect, x.Decision.Reason)
		explain(w, "", *x)
	})
}

// decodeYAML decodes a YAML document strictly: an unknown key is an error naming it.
func decodeYAML(name string, b []byte, v any) error {
	if err := yamldoc.Decode(b, v); err != nil {
		// One problem a line, each naming the file: "warden.yaml: tools[2].risk: … (line 14)".
		return usagef("%s: %s", name, strings.ReplaceAll(err.Error(), "\n", "\n"+name+": "))
	}
	return nil
}
