package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/scan"
)

// printPins says what warden pinned of an MCP server when it was registered.
func printPins(w io.Writer, m *apitype.ManifestPins) {
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\nManifests of %s: %s.\n", m.Tool, m.Message)
	var fs []scan.Finding
	_ = json.Unmarshal(m.Findings, &fs)
	for _, f := range fs {
		fmt.Fprintf(w, "  finding %s (%s) in %s: %s\n", f.Rule, f.Severity, f.Source, f.Message)
	}
}

func toolScan(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var format, failOn string
	inv.fs.StringVar(&format, "format", "text", "text, json or sarif")
	inv.fs.StringVar(&failOn, "fail-on", "high", "exit 1 when a finding is at least this severe: low, medium or high")
	pos, err := inv.parse("NAME")
	if err != nil {
		return err
	}
	if inv.json {
		format = "json"
	}
	if format != "text" && format != "json" && format != "sarif" {
		return usagef("--format must be text, json or sarif")
	}
	var threshold scan.Severity
	if err := threshold.UnmarshalText([]byte(failOn)); err != nil {
		return usagef("--fail-on: %v", err)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	res, err := c.ScanToolManifests(ctx, pos[0])
	if err != nil {
		return err
	}
	var all []scan.Finding
	for _, m := range res.Manifests {
		var fs []scan.Finding
		if len(m.Findings) > 0 {
			if err := json.Unmarshal(m.Findings, &fs); err != nil {
				return fmt.Errorf("reading the findings on %s/%s: %w", res.Tool, m.Name, err)
			}
		}
		all = append(all, fs...)
	}
	out := inv.env.Stdout
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	case "sarif":
		b, err := scan.SARIF(Version, all)
		if err != nil {
			return err
		}
		if _, err := out.Write(append(b, '\n')); err != nil {
			return err
		}
	default:
		if len(res.Manifests) == 0 {
			fmt.Fprintf(out, "%s: nothing pinned yet, so nothing to scan; the first listing of the server pins its tools.\n", res.Tool)
		}
		for _, m := range res.Manifests {
			var fs []scan.Finding
			_ = json.Unmarshal(m.Findings, &fs)
			fmt.Fprintf(out, "%s/%s (%s %s): %s\n", res.Tool, m.Name, m.State, m.Digest, findingCount(fs))
			for _, f := range fs {
				fmt.Fprintf(out, "  %s:%d:%d: %s [%s] %s", f.Source, f.Line, f.Column, f.Severity, f.Rule, f.Message)
				if f.Excerpt != "" {
					fmt.Fprintf(out, " %q", f.Excerpt)
				}
				fmt.Fprintln(out)
			}
		}
	}
	if scan.Max(all) >= threshold {
		return &ExitStatus{ExitError}
	}
	return nil
}

func findingCount(fs []scan.Finding) string {
	if len(fs) == 0 {
		return "no findings"
	}
	return fmt.Sprintf("%d findings, worst %s", len(fs), scan.Max(fs))
}
