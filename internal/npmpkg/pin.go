package npmpkg

import (
	"context"
	"path/filepath"

	"github.com/wardenhq/warden"
)

// Pinner pins the npm package of a tool being added: verified by Registry, its tarball kept
// by Installer, and installed into the tool's workspace under Workspaces, so that an add whose
// package does not install fails and stores nothing.
type Pinner struct {
	Registry  *Registry
	Installer *Installer
	// Workspaces is the parent of the local servers' workspaces (DATA/mcp, as mcpgw's); ""
	// leaves the install to the first start.
	Workspaces string
}

// PinTool verifies req and fills in t's Package and Command: node running the bin's entry
// point, as installed in t's workspace.
func (p *Pinner) PinTool(ctx context.Context, t *warden.Tool, req Request) error {
	pinned, err := p.Registry.Pin(ctx, req)
	if err != nil {
		return err
	}
	if err := p.Installer.Keep(pinned); err != nil {
		return err
	}
	t.Package = pinned.Package
	t.Command = []string{"node", pinned.Package.Files[0].Path}
	if p.Workspaces == "" {
		return nil
	}
	ws := filepath.Join(p.Workspaces, t.Name)
	if !filepath.IsLocal(t.Name) {
		return warden.Errorf(warden.EInvalid, "tool name %q cannot name a directory", t.Name)
	}
	if err := mkdirPrivate(ws); err != nil {
		return err
	}
	if err := p.Installer.Prepare(ctx, t, ws); err != nil {
		return warden.Errorf(warden.EUnavailable, "%s", err.Error())
	}
	return nil
}
