package server_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
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
)

func needNode(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
		}
	}
}

// TestNPMServer is tool add --npm end to end, against a registry on 127.0.0.1: an unsigned
// package is refused without --allow-unsigned and a tarball that does not match its integrity
// is refused, each recorded and nothing stored; the package added with a reason is installed
// with its lifecycle scripts disabled, shown by tool show, recorded with its digest, integrity
// and provenance, and runs in the sandbox from its workspace: a tools/call through /mcp/echo
// answers, and the server cannot write its installed code. Its entry point changed on disk, the restarted server refuses to start it, and says
// so in the audit log.
func TestNPMServer(t *testing.T) {
	t.Parallel()
	needNode(t)
	reg := npmtest.NewRegistry(t)
	tarball := npmtest.Tarball(t, npmtest.EchoPackage("@acme/echo", "1.0.0"))
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
	bad := npmtest.Tarball(t, npmtest.EchoPackage("@acme/bad", "1.0.0"))
	reg.Publish(t, "@acme/bad", "1.0.0", bad, func(m map[string]any) {
		m["dist"].(map[string]any)["integrity"] = npmtest.Integrity(tarball)
	})
	dir := t.TempDir()
	withRegistry := func(c *config.Config) { c.SupplyChain.NPMRegistry = reg.URL }
	in := start(t, dir, withRegistry)

	if _, err := in.cli(in.admin, "tool", "add", "echo", "--npm", "@acme/echo@1.0.0"); err == nil || !strings.Contains(err.Error(), "unsigned") {
		t.Fatalf("unsigned without --allow-unsigned: %v", err)
	}
	if _, err := in.cli(in.admin, "tool", "add", "bad", "--npm", "@acme/bad@1.0.0", "--allow-unsigned", "--reason", "test"); err == nil || !strings.Contains(err.Error(), "dist.integrity") {
		t.Fatalf("integrity mismatch: %v", err)
	}
	if _, err := in.cli(in.admin, "tool", "add", "echo", "--npm", "@acme/echo@1.0.0", "--allow-unsigned"); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("--allow-unsigned without a reason: %v", err)
	}
	if _, err := in.cli(in.admin, "tool", "add", "echo", "--npm", "../../etc@1.0.0", "--allow-unsigned", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "invalid npm package name") {
		t.Fatalf("a bad name: %v", err)
	}
	for _, name := range []string{"echo", "bad"} {
		if _, err := in.cli(in.admin, "tool", "show", name); err == nil {
			t.Fatalf("tool %s was stored though refused", name)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "npm")); len(entries) != 0 {
		t.Fatalf("a refused package was kept: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dir, "mcp", "bad")); err == nil {
		t.Fatal("a refused package was installed")
	}
	refusals := in.events("type=" + warden.EventToolRefuse)
	if !hasEvent(refusals, warden.EventToolRefuse, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "bad" && ev.Decision.Reason == warden.ReasonPackageUnverified && strings.Contains(ev.Decision.Message, "dist.integrity")
	}) || !hasEvent(refusals, warden.EventToolRefuse, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "echo" && strings.Contains(ev.Decision.Message, "unsigned")
	}) {
		t.Fatalf("refusals not recorded: %+v", refusals)
	}

	out, err := in.cli(in.admin, "tool", "add", "echo", "--npm", "@acme/echo@1.0.0", "--allow-unsigned", "--reason", "built in house, INC-7", "--risk", "low")
	if err != nil {
		t.Fatal(err)
	}
	digest := npmpkg.Digest(tarball)
	for _, want := range []string{"npm @acme/echo@1.0.0", digest, npmtest.Integrity(tarball), "echo-mcp", "built in house, INC-7", "node .warden-npm/"} {
		if !strings.Contains(out, want) {
			t.Errorf("tool add output lacks %q:\n%s", want, out)
		}
	}
	if out, err := in.cli(in.admin, "tool", "list"); err != nil || !strings.Contains(out, "npm @acme/echo@1.0.0") {
		t.Fatalf("tool list: %v\n%s", err, out)
	}
	var tool warden.Tool
	in.cliJSON(in.admin, &tool, "tool", "show", "echo")
	if tool.Package == nil || tool.Package.Digest != digest || tool.Kind != warden.ToolMCPCommand || tool.Command[0] != "node" {
		t.Fatalf("stored tool %+v", tool)
	}
	// The dependency lock of the install at add: its digest and size shown, its bytes kept in
	// the store, not in the tool's answer.
	if !warden.ValidDigest(tool.Package.LockDigest) || tool.Package.LockPackages != 1 || !strings.Contains(out, "lock:") ||
		!strings.Contains(out, tool.Package.LockDigest+" (1 package)") {
		t.Fatalf("the add's lock: %+v\n%s", tool.Package, out)
	}
	if js, err := in.cli(in.admin, "tool", "show", "echo", "--json"); err != nil || strings.Contains(js, "lockfileVersion") {
		t.Fatalf("tool show --json carries the lock itself: %v\n%s", err, js)
	}
	if !hasEvent(in.events("type="+warden.EventToolAdd), warden.EventToolAdd, func(ev *warden.AuditEvent) bool {
		m := ev.Decision.Message
		return strings.Contains(m, "@acme/echo@1.0.0") && strings.Contains(m, digest) && strings.Contains(m, npmtest.Integrity(tarball)) && strings.Contains(m, "unsigned") && strings.Contains(m, "INC-7")
	}) {
		t.Fatal("the add event does not name the package, digest, integrity and provenance")
	}
	// Installed once, at add, without running its scripts.
	ws := filepath.Join(dir, "mcp", "echo")
	if _, err := os.Stat(filepath.Join(ws, tool.Package.Files[0].Path)); err != nil {
		t.Fatalf("not installed at add: %v", err)
	}
	_ = filepath.WalkDir(ws, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(d.Name(), "-ran") {
			t.Errorf("a lifecycle script ran: %s", p)
		}
		return nil
	})

	doc := `
agents:
  - name: echo-bot
    owner: bob@example.com
    purpose: Echo things
tools:
  - name: echo-applied
    npm: "@acme/echo@1.0.0"
    allow_unsigned: true
    unsigned_reason: built in house
grants:
  - agent: echo-bot
    tool: echo
    actions: [echo, overwrite]
`
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	cred := plan.Credentials["echo-bot"]
	token := in.mustToken(cred.ClientID, cred.ClientSecret)
	var again admin.Plan
	in.cliJSON(in.admin, &again, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	for _, c := range again.Changes {
		if c.Op != "unchanged" {
			t.Fatalf("applying the npm tool again changes %+v", c)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := mcpConnect(t, in.url+"/mcp/echo", token)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
	if err != nil || res.IsError || resultText(res) != "echo: hi" {
		t.Fatalf("call through /mcp/echo: %v %+v", err, res)
	}
	// The sandbox mounts the installed package read-only: the server cannot change its code.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "overwrite", Arguments: map[string]any{}})
	if err != nil || res.IsError || resultText(res) == "overwrite: done" || !strings.HasPrefix(resultText(res), "overwrite: ") {
		t.Fatalf("the server could write its installed code: %v %+v", err, res)
	}
	if b, err := os.ReadFile(filepath.Join(ws, tool.Package.Files[0].Path)); err != nil || string(b) != npmtest.EchoServer {
		t.Fatalf("the entry point changed: %v", err)
	}
	_ = cs.Close()

	// The entry point changed behind warden's back: the next start is refused.
	in.stop()
	entry := filepath.Join(ws, tool.Package.Files[0].Path)
	if err := os.WriteFile(entry, []byte(npmtest.EchoServer+"\n// changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	in = in.restart(withRegistry)
	// /mcp/<tool> initializes the upstream on connect: the refusal comes there.
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	_, err = c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: in.url + "/mcp/echo", HTTPClient: &http.Client{Transport: bearerRT{token}}, MaxRetries: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("connecting to the tampered server: %v", err)
	}
	if !hasEvent(in.events("type="+warden.EventToolPackageRefused), warden.EventToolPackageRefused, func(ev *warden.AuditEvent) bool {
		return ev.Target.Tool == "echo" && ev.Decision.Reason == warden.ReasonPackageTampered && strings.Contains(ev.Decision.Message, tool.Package.Files[0].Digest)
	}) {
		t.Fatal("the refused start is not in the audit log")
	}
}

// TestNPMServerFromRegistry installs a real MCP server from the public npm registry at an
// exact version (it has no provenance attestation: accepted unsigned with a reason), its
// dependencies by npm with scripts disabled, and calls its echo tool through /mcp/everything
// in the sandbox. Skipped when the registry cannot be reached.
func TestNPMServerFromRegistry(t *testing.T) {
	t.Parallel()
	needNode(t)
	const spec = "@modelcontextprotocol/server-everything@2026.8.31"
	probe := &http.Client{Timeout: 5 * time.Second}
	resp, err := probe.Get("https://registry.npmjs.org/@modelcontextprotocol/server-everything/2026.8.31")
	if err != nil {
		t.Skipf("the npm registry is unreachable: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("the npm registry answered %s", resp.Status)
	}
	in := start(t, t.TempDir(), nil)
	out, err := in.cli(in.admin, "tool", "add", "everything", "--npm", spec, "--allow-unsigned", "--reason", "reference server, reviewed", "--risk", "low")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "npm "+spec) || !strings.Contains(out, "mcp-server-everything") || !strings.Contains(out, "sha256:") {
		t.Fatalf("tool add:\n%s", out)
	}
	doc := `
agents:
  - name: everything-bot
    owner: bob@example.com
    purpose: Try everything
grants:
  - agent: everything-bot
    tool: everything
    actions: [echo]
`
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	cred := plan.Credentials["everything-bot"]
	token := in.mustToken(cred.ClientID, cred.ClientSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := mcpConnect(t, in.url+"/mcp/everything", token)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hello from npm"}})
	if err != nil || res.IsError || !strings.Contains(resultText(res), "hello from npm") {
		t.Fatalf("echo through /mcp/everything: %v %+v", err, res)
	}
}

// TestNPMServerQuarantinedNotInstalled: a replica whose workspace lacks the install of a
// quarantined npm package refuses its start before installing anything.
func TestNPMServerQuarantinedNotInstalled(t *testing.T) {
	t.Parallel()
	needNode(t)
	reg := npmtest.NewRegistry(t)
	tarball := npmtest.Tarball(t, npmtest.EchoPackage("@acme/echo", "1.0.0"))
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
	dir := t.TempDir()
	in := start(t, dir, func(c *config.Config) { c.SupplyChain.NPMRegistry = reg.URL })
	if _, err := in.cli(in.admin, "tool", "add", "echo", "--npm", "@acme/echo@1.0.0", "--allow-unsigned", "--reason", "test"); err != nil {
		t.Fatal(err)
	}
	var q any
	in.cliJSON(in.admin, &q, "quarantine", npmpkg.Digest(tarball), "--reason", "malicious, INC-8")
	installs := filepath.Join(dir, "mcp", "echo", npmpkg.InstallDir)
	if err := os.RemoveAll(installs); err != nil {
		t.Fatal(err)
	}
	doc := "agents:\n  - {name: echo-bot, owner: bob@example.com, purpose: Echo}\ngrants:\n  - {agent: echo-bot, tool: echo, actions: [echo]}\n"
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	token := in.mustToken(plan.Credentials["echo-bot"].ClientID, plan.Credentials["echo-bot"].ClientSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	if cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: in.url + "/mcp/echo", HTTPClient: &http.Client{Transport: bearerRT{token}}, MaxRetries: -1}, nil); err == nil {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
		_ = cs.Close()
		if err == nil && !res.IsError {
			t.Fatalf("the quarantined package answered: %+v", res)
		}
	}
	if _, err := os.Stat(installs); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the quarantined package was installed again: %v", err)
	}
}
