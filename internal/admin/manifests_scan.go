package admin

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/scan"
)

// ScanToolManifests runs the scanner, with its rules of today, over an MCP server's pinned
// manifests and those held for review (`warden tool scan`). Findings name the MCP tool and the
// JSON Pointer of the string they are in; excerpts are made safe by the scanner.
func (s *Service) ScanToolManifests(ctx context.Context, tool string) (*apitype.ToolScan, error) {
	if err := warden.ValidateName("tool", tool); err != nil {
		return nil, err
	}
	t, err := s.store.Tool(ctx, tool)
	if err != nil {
		return nil, err
	}
	if t.Kind != warden.ToolMCP && t.Kind != warden.ToolMCPCommand {
		return nil, warden.Errorf(warden.EInvalid, "tool %s is an HTTP tool: it has no MCP manifests to scan", tool)
	}
	rows, err := s.store.ToolManifests(ctx, tool)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, r := range rows {
		if r.State != warden.ManifestRemoved {
			names = append(names, r.Name)
		}
	}
	out := &apitype.ToolScan{Tool: tool, Manifests: []apitype.ScannedManifest{}}
	for _, r := range rows {
		if r.State == warden.ManifestRemoved {
			continue
		}
		others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == r.Name })
		sc := scan.New(scan.Options{Self: r.Name, Tools: others})
		if r.Digest != "" {
			out.Manifests = append(out.Manifests, scanned(sc, tool, r.Name, warden.ManifestPinned, r.Digest, r.Manifest, ""))
		}
		if r.State == warden.ManifestHeld {
			out.Manifests = append(out.Manifests, scanned(sc, tool, r.Name, warden.ManifestHeld, r.HeldDigest, r.HeldManifest, "@held"))
		}
	}
	return out, nil
}

func scanned(sc *scan.Scanner, tool, name, state, digest string, manifest json.RawMessage, suffix string) apitype.ScannedManifest {
	source := "tool:" + tool + "/" + name + suffix
	fs, err := sc.JSON(source, manifest)
	if err != nil {
		// A stored manifest is canonical JSON warden wrote; one that does not read is reported,
		// never passed as clean.
		fs = []scan.Finding{{Rule: "unreadable", Severity: scan.SeverityHigh, Source: source, Line: 1, Column: 1, Message: "the stored manifest could not be read as JSON"}}
	}
	return apitype.ScannedManifest{Name: name, State: state, Digest: digest, Findings: jsonOf(fs)}
}
