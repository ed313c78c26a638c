package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/npmpkg"
	"github.com/wardenhq/warden/internal/npmpkg/npmtest"
	"github.com/wardenhq/warden/internal/pgtest"
)

// TestNPMLockOnAnotherReplica runs two replicas on one PostgreSQL database. Replica a adds an
// npm server whose package depends on left-dep ^1.0.0 and installs it with left-dep 1.0.0; the
// registry then publishes left-dep 1.1.0. Replica b, which never installed the package, starts
// the server for an agent's call: it installs from the lock a kept in the store, so it runs
// left-dep 1.0.0 as a does, not the newer version the range now takes.
func TestNPMLockOnAnotherReplica(t *testing.T) {
	t.Parallel()
	needNode(t)
	store := pgtest.Database(t)
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "left-dep", "1.0.0", npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.0.0")), nil)
	tarball := npmtest.Tarball(t, npmtest.WithDependency(t, npmtest.EchoPackage("@acme/echo", "1.0.0"), "left-dep", "^1.0.0"))
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
	edit := func(c *config.Config) {
		c.Store = store
		c.SupplyChain.NPMRegistry = reg.URL
	}
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	b := startReplicaB(t, a, edit)

	if _, err := a.cli(a.admin, "tool", "add", "echo", "--npm", "@acme/echo@1.0.0", "--allow-unsigned", "--reason", "test", "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	var tool warden.Tool
	a.cliJSON(a.admin, &tool, "tool", "show", "echo")
	if tool.Package == nil || !warden.ValidDigest(tool.Package.LockDigest) || tool.Package.LockPackages != 2 {
		t.Fatalf("stored package %+v", tool.Package)
	}
	dep := func(dir string) string {
		b, err := os.ReadFile(filepath.Join(dir, "mcp", "echo", npmpkg.InstallDir, strings.TrimPrefix(npmpkg.Digest(tarball), "sha256:"), "node_modules", "left-dep", "index.js"))
		if err != nil {
			return err.Error()
		}
		return string(b)
	}
	const locked = "module.exports = \"1.0.0\";\n"
	if got := dep(a.dir); got != locked {
		t.Fatalf("replica a installed left-dep %q", got)
	}
	reg.Publish(t, "left-dep", "1.1.0", npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.1.0")), nil)

	doc := "agents:\n  - {name: echo-bot, owner: bob@example.com, purpose: Echo}\ngrants:\n  - {agent: echo-bot, tool: echo, actions: [echo]}\n"
	var plan admin.Plan
	a.cliJSON(a.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	token := b.mustToken(plan.Credentials["echo-bot"].ClientID, plan.Credentials["echo-bot"].ClientSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := mcpConnect(t, b.url+"/mcp/echo", token)
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("call through replica b: %v %+v", err, res)
	}
	if got := dep(b.dir); got != locked {
		t.Fatalf("replica b installed left-dep %q, want the locked 1.0.0", got)
	}
}
