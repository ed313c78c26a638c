package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"text/tabwriter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

var toolCommands = []command{
	{"tool add", "NAME (--mcp URL | --mcp-command CMD | --npm NAME@VERSION [--bin BIN] [--allow-unsigned --reason TEXT] | --http URL [--route R ...] | --decision-only --action A[:RISK] ...) [--risk R] [--secret S --inject TEMPLATE | --secret-env VAR=S] [--sensitive-arg A ...] [--approval ACTION] [--ro PATH ...] [--allow-host HOST[:PORT] ...] [--label k=v]", "register an upstream tool", toolAdd},
	{"tool list", "", "list tools", toolList},
	{"tool show", "NAME", "show a tool, with the flow labels of its actions and where each comes from", toolShow},
	{"tool label", "NAME [--action A] [KEY=VALUE ...] [--unset KEY ...]", "set or unset flow labels (output, data, effect) of a tool or one action", toolLabel},
	{"tool disable", "NAME --reason TEXT", "disable a tool for every agent; calls in flight are cancelled", toolDisable},
	{"tool enable", "NAME --reason TEXT", "enable a tool again", toolEnable},
	{"tool remove", "NAME", "unregister a tool", toolRemove},
	{"tool review", "NAME", "show an MCP tool's pinned manifests; held ones with their diff and the scanner's findings", toolReview},
	{"tool accept", "NAME [--tool T] --reason TEXT", "pin the held manifests of an MCP tool (of one MCP tool with --tool)", toolAccept},
	{"tool scan", "NAME [--format text|json|sarif] [--fail-on low|medium|high]", "scan an MCP tool's pinned and held manifests; exit 1 on findings at or above --fail-on (high)", toolScan},
	{"secret set", "NAME (value on stdin)", "store a secret warden injects upstream; no API returns it", secretSet},
	{"secret list", "", "list secrets (names and dates only)", secretList},
	{"secret delete", "NAME", "delete a secret", secretDelete},
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func toolAdd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var spec apitype.ToolSpec
	var routes, sensitive, approvalActions, readOnly, allowHosts, actions listFlag
	var decisionOnly bool
	labels, secretEnv := labelFlag{}, labelFlag{}
	inv.fs.BoolVar(&decisionOnly, "decision-only", false, "a tool warden never reaches: its caller asks POST /v1/authorize for each call and acts itself (needs --action)")
	inv.fs.Var(&actions, "action", "with --decision-only: an action NAME, or NAME:RISK with its own risk (low, medium, high, critical) (repeatable)")
	inv.fs.StringVar(&spec.MCP, "mcp", "", "URL of a remote MCP server (streamable HTTP)")
	inv.fs.StringVar(&spec.MCPCommand, "mcp-command", "", "a local MCP server warden starts and speaks to over stdio, e.g. \"npx -y @modelcontextprotocol/server-everything\"")
	inv.fs.StringVar(&spec.NPM, "npm", "", "a local MCP server from the npm registry at an exact version, e.g. @modelcontextprotocol/server-everything@2025.11.25: verified, installed once, run in the sandbox")
	inv.fs.StringVar(&spec.Bin, "bin", "", "with --npm: the package's bin to run, when it has several")
	inv.fs.BoolVar(&spec.AllowUnsigned, "allow-unsigned", false, "with --npm, admins: accept a package no trusted publisher's provenance vouches for (needs --reason)")
	inv.fs.StringVar(&spec.UnsignedReason, "reason", "", "why an unsigned package is accepted (recorded in the audit log and shown by tool show)")
	inv.fs.StringVar(&spec.HTTP, "http", "", "base URL of a plain HTTP API")
	inv.fs.Var(&routes, "route", "an HTTP route 'METHOD /path/{var} -> action [resource]' (repeatable)")
	inv.fs.StringVar(&spec.Risk, "risk", "", "low, medium (default), high or critical")
	inv.fs.StringVar(&spec.Secret, "secret", "", "the secret injected upstream")
	inv.fs.StringVar(&spec.Inject, "inject", "", "the header it goes in, e.g. 'Authorization: Bearer {{secret}}'")
	inv.fs.Var(secretEnv, "secret-env", "for a local command: VAR=SECRET puts the secret in the command's environment (repeatable)")
	inv.fs.Var(&sensitive, "sensitive-arg", "an argument name whose value is always redacted in the audit log (repeatable)")
	inv.fs.Var(labels, "label", "a label key=value (repeatable)")
	inv.fs.Var(&approvalActions, "approval", "an action that always waits for a person's approval, or '*' for every action (repeatable)")
	inv.fs.Var(&readOnly, "ro", "for a local command: a host path its sandbox may read (repeatable)")
	inv.fs.Var(&allowHosts, "allow-host", "for a local command: HOST[:PORT] its sandbox may connect to through warden's egress proxy, e.g. registry.npmjs.org (repeatable)")
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	spec.Name, spec.Routes, spec.SensitiveArgs, spec.Approval = pos[0], routes, sensitive, approvalActions
	if decisionOnly != (len(actions) > 0) {
		return usagef("--decision-only and --action go together: a decision-only tool declares the actions its calls may name")
	}
	for _, a := range actions {
		name, risk, _ := strings.Cut(a, ":")
		spec.Actions = append(spec.Actions, apitype.ToolActionSpec{Name: name, Risk: risk})
	}
	spec.ReadOnly, spec.AllowHosts = readOnly, allowHosts
	if len(labels) > 0 {
		spec.Labels = labels
	}
	if len(secretEnv) > 0 {
		spec.SecretEnv = secretEnv
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	t, err := c.AddTool(ctx, spec)
	if err != nil {
		return err
	}
	return inv.print(t, func(w io.Writer) {
		fmt.Fprintf(w, "Tool %q registered.\n\n", t.Name)
		printTool(w, t.Tool)
		printPins(w, t.Manifests)
	})
}

func printTool(w io.Writer, t *warden.Tool) {
	state := "enabled"
	if t.Disabled {
		state = "disabled"
	}
	var secretEnv []string
	for k, v := range t.SecretEnv {
		secretEnv = append(secretEnv, k+"="+v)
	}
	var readOnly, allowHosts []string
	if t.Sandbox != nil {
		readOnly, allowHosts = t.Sandbox.ReadOnly, t.Sandbox.AllowHosts
	}
	kv(w,
		"name", t.Name,
		"kind", string(t.Kind),
		"url", t.URL,
		"command", strings.Join(t.Command, " "),
		"risk", string(t.Risk),
		"state", state,
		"secret", t.Secret,
		"inject", t.Inject,
		"secret_env", strings.Join(secretEnv, ", "),
		"labels", fmtLabels(t.Labels),
		"sensitive_args", strings.Join(t.SensitiveArgs, ", "),
		"approval", strings.Join(t.Approval, ", "),
		"read_only", strings.Join(readOnly, ", "),
		"allow_hosts", strings.Join(allowHosts, ", "),
		"created", fmtTime(t.CreatedAt),
	)
	printPackage(w, t)
	if len(t.Routes) > 0 {
		fmt.Fprintln(w, "routes:")
		for _, r := range t.Routes {
			fmt.Fprintln(w, "  "+r)
		}
	}
	if len(t.Actions) > 0 {
		fmt.Fprintln(w, "actions:")
		rows := make([][]string, 0, len(t.Actions))
		for _, a := range t.Actions {
			schema := "-"
			var compact bytes.Buffer
			if json.Compact(&compact, a.InputSchema) == nil && compact.Len() > 0 {
				schema = truncate(compact.String(), 72)
			}
			rows = append(rows, []string{"  " + a.Name, string(t.ActionRisk(a.Name)), schema})
		}
		table(w, []string{"  ACTION", "RISK", "INPUT SCHEMA"}, rows)
	}
}

// printPackage shows what a local MCP server runs, pinned when it was added: the digest a
// quarantine names and each file with its own.
func printPackage(w io.Writer, t *warden.Tool) {
	if t.Kind != warden.ToolMCPCommand {
		return
	}
	p := t.Package
	if p == nil {
		kv(w, "package", "not pinned: added before warden pinned a local server's files; its files are not verified at start (add the tool again to pin them)")
		return
	}
	if p.Source == warden.PackageNPM {
		entry := ""
		if len(p.Files) > 0 {
			entry = p.Files[0].Path + " " + p.Files[0].Digest
		}
		lock := "none: added before warden kept dependency locks; its dependencies are resolved again at each install (add the tool again to lock them)"
		if p.LockDigest != "" {
			lock = fmt.Sprintf("%s (%d packages)", p.LockDigest, p.LockPackages)
			if p.LockPackages == 1 {
				lock = p.LockDigest + " (1 package)"
			}
		}
		kv(w,
			"package", "npm "+p.Name+"@"+p.Version,
			"digest", p.Digest,
			"integrity", p.Integrity,
			"bin", p.Bin,
			"entry", entry,
			"lock", lock,
			"provenance", p.Provenance,
		)
		return
	}
	kv(w, "package", p.Source+" "+p.Digest)
	if len(p.Files) > 0 {
		fmt.Fprintln(w, "files:")
		for _, f := range p.Files {
			fmt.Fprintf(w, "  %s  %s\n", f.Digest, f.Path)
		}
	}
	if p.Source == warden.PackageCommand && len(t.Command) > 0 && fetchesAtStart(t.Command[0]) {
		fmt.Fprintf(w, "note: %s fetches what it runs when the server starts: the digest pins %s, not that package; use 'warden tool add --npm' to pin an npm package\n",
			t.Command[0], t.Command[0])
	}
}

// fetchesAtStart reports whether a program downloads the package it runs (npx -y pkg).
func fetchesAtStart(prog string) bool {
	switch path.Base(prog) {
	case "npx", "pnpx", "bunx", "uvx", "pipx":
		return true
	}
	return false
}

func toolList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	tools, err := c.Tools(ctx)
	if err != nil {
		return err
	}
	return inv.print(tools, func(w io.Writer) {
		rows := make([][]string, 0, len(tools))
		for _, t := range tools {
			state := "enabled"
			if t.Disabled {
				state = "disabled"
			}
			target := t.URL
			switch {
			case t.Package != nil && t.Package.Source == warden.PackageNPM:
				target = "npm " + t.Package.Name + "@" + t.Package.Version
			case t.Kind == warden.ToolMCPCommand:
				target = strings.Join(t.Command, " ")
			case t.Kind == warden.ToolDecisionOnly:
				target = "none: decided on /v1/authorize"
			}
			rows = append(rows, []string{t.Name, string(t.Kind), string(t.Risk), state, t.Secret, truncate(target, 56)})
		}
		table(w, []string{"NAME", "KIND", "RISK", "STATE", "SECRET", "UPSTREAM"}, rows)
	})
}

func toolShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	return byName(inv, func(c *apiclient.Client, name string) (*apitype.ToolView, error) { return c.Tool(ctx, name) },
		func(w io.Writer, t *apitype.ToolView) {
			printTool(w, t.Tool)
			printFlow(w, t.Flow)
		})
}

func toolLabel(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ToolLabelsRequest
	var unset listFlag
	inv.fs.StringVar(&req.Action, "action", "", "label this action only (an HTTP route's action or an MCP tool name); default the whole tool")
	inv.fs.Var(&unset, "unset", "a flow label to remove: output, data or effect (repeatable)")
	// Three flow labels: a fourth KEY=VALUE would repeat one.
	pos, err := inv.parseOptional(1, "NAME", "KEY=VALUE", "KEY=VALUE", "KEY=VALUE")
	if err != nil {
		return err
	}
	for _, arg := range pos[1:] {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" {
			return usagef("%q: give KEY=VALUE, e.g. output=untrusted, data=private or effect=external", arg)
		}
		if _, dup := req.Set[k]; dup {
			return usagef("label %s is given twice", k)
		}
		if req.Set == nil {
			req.Set = map[string]string{}
		}
		req.Set[k] = v
	}
	req.Unset = unset
	c, err := inv.client()
	if err != nil {
		return err
	}
	t, err := c.LabelTool(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return inv.print(t, func(w io.Writer) {
		fmt.Fprintf(w, "Flow labels of tool %q:\n", t.Name)
		printFlow(w, t.Flow)
	})
}

// printFlow shows the resolved flow labels of a tool's actions, each with where it came from:
// "send_email  output=trusted (action)  data=public (default)  effect=external (annotation destructiveHint=true)".
func printFlow(w io.Writer, flow []apitype.ActionFlow) {
	if len(flow) == 0 {
		return
	}
	fmt.Fprintln(w, "flow labels:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range flow {
		name := r.Action
		switch {
		case r.Other:
			name = "(other actions)"
		case r.Method == "*":
			name += " (any method)"
		case r.Method != "":
			name += " (" + r.Method + ")"
		}
		if r.Manifest != "" && r.Manifest != warden.ManifestPinned {
			name += " [" + r.Manifest + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, fmtFlowLabel(warden.LabelOutput, r.Labels.Output),
			fmtFlowLabel(warden.LabelData, r.Labels.Data), fmtFlowLabel(warden.LabelEffect, r.Labels.Effect))
	}
	_ = tw.Flush()
}

func fmtFlowLabel(key string, l warden.FlowLabel) string {
	src := l.Source
	if l.Detail != "" {
		src += " " + l.Detail
	}
	return key + "=" + l.Value + " (" + src + ")"
}

func toolDisable(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ToolStateRequest
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out, err := c.DisableTool(ctx, pos[0], req.Reason)
	if err != nil {
		return err
	}
	return inv.print(out, func(w io.Writer) {
		fmt.Fprintf(w, "Tool %q disabled for every agent; %d calls in flight cancelled here.\n", out.Name, out.CallsCancelled)
		printReplicaAcks(w, out.Replicas)
	})
}

func toolEnable(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ToolStateRequest
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	t, err := c.EnableTool(ctx, pos[0], req.Reason)
	if err != nil {
		return err
	}
	return inv.print(t, func(w io.Writer) { fmt.Fprintf(w, "Tool %q enabled.\n", t.Name) })
}

func toolRemove(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if err := c.RemoveTool(ctx, pos[0]); err != nil {
		return err
	}
	return inv.print(map[string]string{"removed": pos[0]}, func(w io.Writer) { fmt.Fprintf(w, "Tool %q removed.\n", pos[0]) })
}

func secretSet(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	if inv.env.Stdin == nil {
		return usagef("the secret's value is read from standard input")
	}
	b, err := io.ReadAll(io.LimitReader(inv.env.Stdin, 64<<10+1))
	if err != nil {
		return err
	}
	// A trailing newline from echo or a heredoc is not part of the secret.
	value := strings.TrimRight(string(b), "\r\n")
	if value == "" {
		return usagef("no value on standard input: e.g. printf %%s \"$TOKEN\" | warden secret set %s", pos[0])
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	s, err := c.PutSecret(ctx, pos[0], value)
	if err != nil {
		return err
	}
	return inv.print(s, func(w io.Writer) { fmt.Fprintf(w, "Secret %q stored (sealed; no API returns it).\n", s.Name) })
}

func secretList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.Secrets(ctx)
	if err != nil {
		return err
	}
	return inv.print(list, func(w io.Writer) {
		rows := make([][]string, 0, len(list))
		for _, s := range list {
			rows = append(rows, []string{s.Name, fmtTime(s.CreatedAt), fmtTime(s.UpdatedAt)})
		}
		table(w, []string{"NAME", "CREATED", "UPDATED"}, rows)
	})
}

func secretDelete(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if err := c.DeleteSecret(ctx, pos[0]); err != nil {
		return err
	}
	return inv.print(map[string]string{"deleted": pos[0]}, func(w io.Writer) { fmt.Fprintf(w, "Secret %q deleted.\n", pos[0]) })
}

func toolReview(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	ms, err := c.ToolManifests(ctx, pos[0])
	if err != nil {
		return err
	}
	return inv.print(ms, func(w io.Writer) {
		held := 0
		for _, m := range ms {
			if m.State == warden.ManifestHeld {
				held++
			}
		}
		fmt.Fprintf(w, "%s: %d tools pinned, %d held for review.\n", pos[0], len(ms)-held, held)
		for _, m := range ms {
			switch m.State {
			case warden.ManifestHeld:
				pinned := m.Digest
				if pinned == "" {
					pinned = "(none: added upstream)"
				}
				fmt.Fprintf(w, "\nHELD %s\n  pinned:  %s\n  listed:  %s\n", m.Name, pinned, m.HeldDigest)
				var diff []struct{ Path, Before, After string }
				_ = json.Unmarshal(m.Diff, &diff)
				for _, d := range diff {
					fmt.Fprintf(w, "  %s\n    - %s\n    + %s\n", d.Path, d.Before, d.After)
				}
				printFindings(w, m.Findings)
				fmt.Fprintf(w, "  accept: warden tool accept %s --tool %s --digest %s --reason TEXT\n", pos[0], m.Name, m.HeldDigest)
			case warden.ManifestRemoved:
				fmt.Fprintf(w, "removed %s (pinned %s)\n", m.Name, m.Digest)
			default:
				fmt.Fprintf(w, "pinned  %s %s\n", m.Name, m.Digest)
			}
		}
	})
}

// printFindings prints scanner findings stored as JSON.
func printFindings(w io.Writer, raw json.RawMessage) {
	var fs []struct{ Rule, Severity, Source, Message string }
	_ = json.Unmarshal(raw, &fs)
	for _, f := range fs {
		fmt.Fprintf(w, "  finding %s (%s) in %s: %s\n", f.Rule, f.Severity, f.Source, f.Message)
	}
}

func toolAccept(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.ManifestAcceptRequest
	inv.fs.StringVar(&req.Tool, "tool", "", "accept only this MCP tool of the server")
	inv.fs.StringVar(&req.Digest, "digest", "", "accept only the held manifest with this digest, the one reviewed (tool review prints it)")
	inv.reasonFlag(&req.Reason, true)
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	ms, err := c.AcceptManifests(ctx, pos[0], req)
	if err != nil {
		return err
	}
	return inv.print(ms, func(w io.Writer) {
		for _, m := range ms {
			fmt.Fprintf(w, "Pinned %s/%s at %s.\n", pos[0], m.Name, m.Digest)
		}
	})
}
