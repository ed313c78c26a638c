package server

import (
	"log/slog"
	"path/filepath"

	"github.com/wardenhq/warden"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/npmpkg"
)

// newNPM builds what pins, keeps and installs the npm packages of local MCP servers (tool add
// --npm): the registry of supply_chain.npm_registry, verified tarballs kept in DATA/npm, and
// installs into the servers' workspaces in DATA/mcp, with the dependency locks written at add
// kept in the store, so that every replica installs the same dependencies.
func newNPM(cfg config.Config, locks warden.PackageLockStore, auditLog npmpkg.Auditor, log *slog.Logger) *npmpkg.Pinner {
	reg := &npmpkg.Registry{URL: cfg.SupplyChain.Registry()}
	return &npmpkg.Pinner{
		Registry:   reg,
		Installer:  &npmpkg.Installer{Cache: filepath.Join(cfg.Data, "npm"), Registry: reg, Locks: locks, Audit: auditLog, Log: log},
		Workspaces: filepath.Join(cfg.Data, "mcp"),
	}
}
