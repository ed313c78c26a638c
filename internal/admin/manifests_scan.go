package admin

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
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
		if r.Digest != "" {
			fs := scanManifest(tool, r.Name, names, r.Manifest, "")
			out.Manifests = append(out.Manifests, apitype.ScannedManifest{Name: r.Name, State: warden.ManifestPinned, Digest: r.Digest, Findings: jsonOf(fs)})
		}
		if r.State == warden.ManifestHeld {
			fs := scanManifest(tool, r.Name, names, r.HeldManifest, "@held")
			out.Manifests = append(out.Manifests, apitype.ScannedManifest{Name: r.Name, State: warden.ManifestHeld, Digest: r.HeldDigest, Findings: jsonOf(fs)})
		}
	}
	return out, nil
}
