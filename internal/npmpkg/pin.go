package npmpkg

import (
	"context"
	"crypto/sha512"
	"os"
	"path/filepath"
	"strings"

	"github.com/wardenhq/warden"
)

// Pinner pins the npm package of a tool being added: verified by Registry, its tarball kept
// by Installer, installed, and the dependency lock of that install checked and kept in
// Installer.Locks, so that an add whose package does not install, or whose dependencies are
// not all registry packages with an integrity, fails and stores nothing.
type Pinner struct {
	Registry  *Registry
	Installer *Installer
	// Workspaces is the parent of the local servers' workspaces (DATA/mcp, as mcpgw's), where
	// the add installs the package; "": the add installs it in a temporary directory, for its
	// lock only, and leaves the install to the first start.
	Workspaces string
}

// PinTool verifies req and fills in t's Package (its LockDigest included) and Command: node
// running the bin's entry point, as installed in t's workspace.
func (p *Pinner) PinTool(ctx context.Context, t *warden.Tool, req Request) error {
	if !filepath.IsLocal(t.Name) {
		return warden.Errorf(warden.EInvalid, "tool name %q cannot name a directory", t.Name)
	}
	in := p.Installer
	if in == nil || in.Locks == nil {
		return warden.Errorf(warden.EUnavailable, "this server has no store to keep npm packages' dependency locks")
	}
	pinned, err := p.Registry.Pin(ctx, req)
	if err != nil {
		return err
	}
	if err := in.Keep(pinned); err != nil {
		return err
	}
	pkg := *pinned.Package
	ws := ""
	if p.Workspaces == "" {
		if ws, err = os.MkdirTemp("", "warden-npm-pin-"); err != nil {
			return err
		}
		defer os.RemoveAll(ws)
	} else {
		ws = filepath.Join(p.Workspaces, t.Name)
		if err := mkdirPrivate(ws); err != nil {
			return err
		}
	}
	dir := filepath.Join(ws, InstallDir, strings.TrimPrefix(pkg.Digest, "sha256:"))
	lock, err := in.install(ctx, &pkg, ws, dir, nil, true)
	if err != nil {
		return warden.Errorf(warden.EUnavailable, "installing %s@%s: %s", pkg.Name, pkg.Version, err.Error())
	}
	base, err := p.Registry.base()
	if err != nil {
		return err
	}
	sum := sha512.Sum512(pinned.Tarball)
	n, err := CheckLock(lock, &pkg, sum[:], base)
	if err != nil {
		os.RemoveAll(dir)
		return warden.Errorf(warden.ErrorCode(err), "%s@%s's dependencies are not pinned: %s", pkg.Name, pkg.Version, warden.ErrorMessage(err))
	}
	pkg.LockDigest, pkg.LockPackages = Digest(lock), n
	if err := in.Locks.PutPackageLock(ctx, pkg.LockDigest, lock); err != nil {
		os.RemoveAll(dir)
		return err
	}
	t.Package = &pkg
	t.Command = []string{"node", pkg.Files[0].Path}
	// The entry point as installed must be the one pinned.
	if err := in.Prepare(ctx, t, ws); err != nil {
		return warden.Errorf(warden.EUnavailable, "%s", err.Error())
	}
	return nil
}
