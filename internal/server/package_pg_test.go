package server_test

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/pgtest"
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
	edit := onlyAnnouncements(store)
	a := start(t, t.TempDir(), func(c *config.Config) { edit(c); c.ReplicaID = "replica-a" })
	b := startReplicaB(t, a, edit)

	_, _, cred := addLocalNotes(t, a, "echo, slow")
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
