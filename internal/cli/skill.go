package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/scan"
	"github.com/wardenhq/warden/internal/skill"
	"github.com/wardenhq/warden/internal/supply"
)

// skillCommands come before killCommands: "quarantine list" must not be read as "quarantine".
var skillCommands = []command{
	{"skill add", "PATH|ARCHIVE [--name N] [--signature FILE] [--allow-unsigned] [--override-findings] [--reason TEXT]", "register a skill version: verified, signed (or accepted unsigned with a reason), scanned", skillAdd},
	{"skill list", "[NAME]", "list skill versions", skillList},
	{"skill show", "NAME[@sha256:…]", "show a skill version (default the newest), its signer, findings, quarantine and grants", skillShow},
	{"skill remove", "NAME[@sha256:…]", "remove a skill version, or every version (admin)", skillRemove},
	{"skill grant", "NAME --agent A", "let an agent load a skill (Cedar skill.load) (admin)", skillGrant},
	{"skill revoke", "NAME --agent A", "take a skill grant back (admin)", skillRevoke},
	{"skill scan", "PATH|ARCHIVE [--format text|json|sarif]", "scan a skill here, without a server; exit 1 on high findings", skillScan},
	{"skill digest", "PATH|ARCHIVE", "print a skill's canonical digest, without a newline: exactly the message a publisher signs", skillDigest},
	{"quarantine list", "", "list quarantined digests", quarantineList},
	{"quarantine lift", "DIGEST --reason TEXT", "put a quarantined digest back into use (admin)", quarantineLift},
}

// readSkill reads a folder or an archive into a verified tree.
func readSkill(path string) (*skill.Tree, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	if st.IsDir() {
		return skill.ReadDir(path, skill.DefaultLimits)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return skill.ReadArchive(data, skill.DefaultLimits)
}

// splitVersion splits NAME[@sha256:…].
func splitVersion(arg string) (name, digest string) {
	name, digest, _ = strings.Cut(arg, "@")
	return name, digest
}

func skillAdd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var req apitype.SkillAddRequest
	var sigFile, reason string
	inv.fs.StringVar(&req.Name, "name", "", "register under this name instead of SKILL.md's")
	inv.fs.StringVar(&sigFile, "signature", "", "a minisign signature (.minisig) or a Sigstore bundle (JSON) over the skill's digest string by a trusted publisher")
	inv.fs.BoolVar(&req.AllowUnsigned, "allow-unsigned", false, "accept the skill without a signature (admin; needs --reason)")
	inv.fs.BoolVar(&req.OverrideFindings, "override-findings", false, "accept the skill despite high scanner findings (admin; needs --reason)")
	inv.fs.StringVar(&reason, "reason", "", "why an unsigned skill or its findings are accepted (recorded in the audit log and shown by 'skill show')")
	pos, err := inv.parse("PATH")
	if err != nil {
		return err
	}
	if (req.AllowUnsigned || req.OverrideFindings) && strings.TrimSpace(reason) == "" {
		return usagef("--allow-unsigned and --override-findings need --reason TEXT: say why")
	}
	if req.AllowUnsigned {
		req.UnsignedReason = reason
	}
	if req.OverrideFindings {
		req.OverrideReason = reason
	}
	t, err := readSkill(pos[0])
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Archive(&buf); err != nil {
		return err
	}
	req.Archive, req.Digest = buf.Bytes(), t.Digest()
	if sigFile != "" {
		sig, err := os.ReadFile(sigFile)
		if err != nil {
			return usagef("%v", err)
		}
		req.Signature = string(sig)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	r, err := c.AddSkill(ctx, req)
	if err != nil {
		return err
	}
	return inv.print(r, func(w io.Writer) {
		if r.Added {
			fmt.Fprintf(w, "Skill %s@%s added.\n\n", r.Skill.Name, r.Skill.Digest)
		} else {
			fmt.Fprintf(w, "Skill %s@%s was already registered; nothing changed.\n\n", r.Skill.Name, r.Skill.Digest)
		}
		printSkill(w, r.Skill)
	})
}

func printSkill(w io.Writer, s *warden.Skill) {
	kv(w, "name", s.Name, "digest", s.Digest, "description", s.Description, "license", s.License,
		"allowed tools", strings.Join(s.AllowedTools, " ")+informational(s.AllowedTools),
		"files", strconv.Itoa(s.Files), "size", strconv.FormatInt(s.Size, 10)+" bytes",
		"signer", s.Signer, "unsigned because", s.UnsignedReason, "findings", findingsSummary(s.Findings),
		"findings accepted because", s.OverrideReason, "added by", s.AddedBy, "added at", fmtTime(s.AddedAt))
}

func informational(tools []string) string {
	if len(tools) == 0 {
		return ""
	}
	return " (informational, not a grant)"
}

func findingsSummary(raw json.RawMessage) string {
	var fs []scan.Finding
	if len(raw) == 0 || json.Unmarshal(raw, &fs) != nil || len(fs) == 0 {
		return "none"
	}
	count := map[scan.Severity]int{}
	for _, f := range fs {
		count[f.Severity]++
	}
	return fmt.Sprintf("%d high, %d medium, %d low", count[scan.SeverityHigh], count[scan.SeverityMedium], count[scan.SeverityLow])
}

func skillList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parseOptional(0, "NAME")
	if err != nil {
		return err
	}
	name := ""
	if len(pos) > 0 {
		name = pos[0]
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	list, err := c.Skills(ctx, name)
	if err != nil {
		return err
	}
	return inv.print(list, func(w io.Writer) {
		if len(list) == 0 {
			fmt.Fprintln(w, "No skills. Add one with 'warden skill add PATH'.")
			return
		}
		var rows [][]string
		for _, s := range list {
			rows = append(rows, []string{s.Name, s.Digest, s.Signer, findingsSummary(s.Findings), fmtTime(s.AddedAt)})
		}
		table(w, []string{"NAME", "DIGEST", "SIGNER", "FINDINGS", "ADDED"}, rows)
	})
}

func skillShow(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME[@DIGEST]")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	name, digest := splitVersion(pos[0])
	info, err := c.Skill(ctx, name, digest)
	if err != nil {
		return err
	}
	return inv.print(info, func(w io.Writer) {
		printSkill(w, info.Skill)
		q := "no"
		if info.Quarantined {
			q = "yes: " + info.QuarantineReason
		}
		kv(w, "quarantined", q, "granted to", strings.Join(info.GrantedTo, ", "))
	})
}

func skillRemove(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	pos, err := inv.parse("NAME[@DIGEST]")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	name, digest := splitVersion(pos[0])
	r, err := c.RemoveSkill(ctx, name, digest)
	if err != nil {
		return err
	}
	return inv.print(r, func(w io.Writer) { fmt.Fprintf(w, "Removed %d version(s) of skill %s.\n", r.Versions, r.Name) })
}

func skillGrant(ctx context.Context, inv *invocation) error {
	return skillGrantOrRevoke(ctx, inv, true)
}

func skillRevoke(ctx context.Context, inv *invocation) error {
	return skillGrantOrRevoke(ctx, inv, false)
}

func skillGrantOrRevoke(ctx context.Context, inv *invocation, grant bool) error {
	inv.clientFlags()
	var agent string
	inv.fs.StringVar(&agent, "agent", "", "the agent (required)")
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	if agent == "" {
		return usagef("--agent is required")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	what := "may now load"
	if grant {
		err = c.GrantSkill(ctx, pos[0], agent)
	} else {
		err, what = c.RevokeSkill(ctx, pos[0], agent), "may no longer load"
	}
	if err != nil {
		return err
	}
	r := map[string]any{"agent": agent, "skill": pos[0], "granted": grant}
	return inv.print(r, func(w io.Writer) { fmt.Fprintf(w, "Agent %s %s skill %s.\n", agent, what, pos[0]) })
}

func skillScan(ctx context.Context, inv *invocation) error {
	var format string
	inv.fs.StringVar(&format, "format", "text", "text, json or sarif")
	inv.fs.BoolVar(&inv.json, "json", false, "the same as --format json")
	pos, err := inv.parse("PATH")
	if err != nil {
		return err
	}
	if inv.json {
		format = "json"
	}
	t, err := readSkill(pos[0])
	if err != nil {
		return err
	}
	name := ""
	if m, err := t.Manifest(); err == nil {
		name = m.Name
	}
	fs := supply.ScanTree(t, name, scan.Options{})
	out := inv.env.Stdout
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if fs == nil {
			fs = []scan.Finding{}
		}
		if err := enc.Encode(fs); err != nil {
			return err
		}
	case "sarif":
		b, err := scan.SARIF(Version, fs)
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
	case "text":
		if len(fs) == 0 {
			fmt.Fprintf(out, "%s: no findings (%s).\n", pos[0], t.Digest())
		}
		for _, f := range fs {
			fmt.Fprintf(out, "%s:%d:%d: %s [%s] %s", f.Source, f.Line, f.Column, f.Severity, f.Rule, f.Message)
			if f.Excerpt != "" {
				fmt.Fprintf(out, " %q", f.Excerpt)
			}
			fmt.Fprintln(out)
		}
	default:
		return usagef("--format must be text, json or sarif")
	}
	if scan.Blocking(fs) {
		return &ExitStatus{ExitError}
	}
	return nil
}

func skillDigest(ctx context.Context, inv *invocation) error {
	pos, err := inv.parse("PATH")
	if err != nil {
		return err
	}
	t, err := readSkill(pos[0])
	if err != nil {
		return err
	}
	// Exactly the signed message, no newline: 'warden skill digest DIR > digest.txt' then
	// 'minisign -Sm digest.txt' signs what warden verifies.
	_, err = inv.env.Stdout.Write(supply.SignedMessage(t.Digest()))
	return err
}

func quarantineList(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	qs, err := c.Quarantines(ctx)
	if err != nil {
		return err
	}
	return inv.print(qs, func(w io.Writer) {
		if len(qs) == 0 {
			fmt.Fprintln(w, "Nothing is quarantined.")
			return
		}
		var rows [][]string
		for _, q := range qs {
			rows = append(rows, []string{q.Digest, q.By, fmtTime(q.At), q.Reason})
		}
		table(w, []string{"DIGEST", "BY", "AT", "REASON"}, rows)
	})
}

func quarantineLift(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var reason string
	inv.reasonFlag(&reason, true)
	pos, err := inv.parse("DIGEST")
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	q, err := c.LiftQuarantine(ctx, pos[0], reason)
	if err != nil {
		return err
	}
	return inv.print(q, func(w io.Writer) {
		fmt.Fprintf(w, "Quarantine of %s lifted (it was quarantined by %s: %s).\n", q.Digest, q.By, q.Reason)
	})
}
