package server_test

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/seal"
	"github.com/wardenhq/warden/internal/server"
)

// TestQuarantinedPackageStopsOnAnotherReplica runs two replicas on one PostgreSQL database. The
// local server runs on replica b only (b's call started it, in b's workspace); quarantining its
// package on replica a cancels b's call in flight and ends b's process before the command
// returns — b's acknowledgement in a's report says so — and b refuses the tool with quarantined
// and starts nothing. The polls are slowed so that only the announcement can have done it.
func TestQuarantinedPackageStopsOnAnotherReplica(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("local MCP servers run in warden's Linux sandbox")
	}
	t.Parallel()
	store := pgtest.Database(t)
	edit := func(c *config.Config) {
		c.Store = store
		c.Tokens.RefreshInterval = config.Duration(time.Hour)
		c.KillSwitch.MaxStaleness = config.Duration(time.Minute)
		c.KillSwitch.AckTimeout = config.Duration(10 * time.Second)
	}
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	dirB := t.TempDir()
	for _, f := range []string{seal.MasterKeyFile, server.AdminTokenFile} {
		data, err := os.ReadFile(filepath.Join(a.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startPrepared(t, "127.0.0.1:0", dirB, clock.Real{}, func(c *config.Config) { edit(c); c.ReplicaID = "replica-b" }, nil)
	waitLive(t, a, "replica-b")

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := writeFile(t, t.TempDir(), "server.sh", "export WARDEN_TEST_LOCAL_PEER=1\nexec "+exe+"\n")
	if _, err := a.cli(a.admin, "tool", "add", "notes", "--mcp-command", "/bin/sh "+script, "--ro", filepath.Dir(exe), "--risk", "low"); err != nil {
		t.Fatal(err)
	}
	doc := `
agents:
  - name: notes-bot
    owner: bob@example.com
    purpose: Take notes
grants:
  - agent: notes-bot
    tool: notes
    actions: [echo, slow]
`
	var plan admin.Plan
	a.cliJSON(a.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc))
	cred := plan.Credentials["notes-bot"]
	tokenB := b.mustToken(cred.ClientID, cred.ClientSecret)
	var tool warden.Tool
	a.cliJSON(a.admin, &tool, "tool", "show", "notes")
	if tool.Package == nil {
		t.Fatal("no package pinned at add")
	}
	eventuallyTrue(t, "replica b has the tool", func() bool {
		t, ok := b.srv.Pipeline.Registry.Tool("notes")
		return ok && t.Package != nil
	})

	workspaceB := filepath.Join(b.dir, "mcp", "notes")
	onB := mcpConnect(t, b.url+"/mcp", tokenB)
	done := make(chan string, 1)
	go func() { done <- callReason(t, onB, "notes.slow") }()
	eventuallyTrue(t, "the slow call reaches b's server", func() bool {
		_, err := os.Stat(filepath.Join(workspaceB, "slow-started"))
		return err == nil
	})
	if !running(t, workspaceB) {
		t.Fatal("control: b's server's lock is free while it runs")
	}

	var q apitype.QuarantineReport
	a.cliJSON(a.admin, &q, "quarantine", tool.Package.Digest, "--reason", "compromised release")
	acked := false
	for _, ack := range q.Replicas {
		if ack.ID == "replica-b" {
			acked = ack.Acked && ack.CallsCancelled == 1
		}
	}
	if !acked || !slices.Equal(q.Servers, []string{"notes"}) {
		t.Fatalf("quarantine report: %+v (replicas %+v)", q, q.Replicas)
	}
	if running(t, workspaceB) {
		t.Fatal("b's server still runs once the quarantine returned")
	}
	select {
	case r := <-done:
		if r == "" {
			t.Fatal("the call on b to the quarantined server completed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call on b to the quarantined server was not cancelled")
	}
	starts := startsIn(workspaceB)
	if r := callReason(t, onB, "notes.echo"); r != warden.ReasonQuarantined {
		t.Errorf("b's call after the quarantine: %q, want quarantined", r)
	}
	if r := authorizeReason(t, b, tokenB, "notes", "echo"); r != warden.ReasonQuarantined {
		t.Errorf("b's /v1/authorize after the quarantine: %q", r)
	}
	if running(t, workspaceB) || startsIn(workspaceB) != starts {
		t.Error("b started the quarantined server again")
	}
}
