package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

// tsOAuthClient returns the absolute path of testdata/tsoauth with the TypeScript SDK installed
// (pinned by its package-lock.json; node_modules is ignored by git). It skips when node or npm
// is missing.
func tsOAuthClient(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed: skipping the TypeScript SDK's OAuth flow", bin)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "tsoauth"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	return dir
}

// TestOAuthTypeScriptSDK: the TypeScript SDK's client (StreamableHTTPClientTransport with an
// OAuthClientProvider) follows warden from the 401 at /mcp through discovery, registration and
// PKCE; this test plays the person's browser (sign-in, consent as desk-bot), the SDK redeems the
// code and calls a tool as the agent, for the person.
func TestOAuthTypeScriptSDK(t *testing.T) {
	t.Parallel()
	dir := tsOAuthClient(t)
	in, people, creds := startOAuth(t)
	agentID := creds["desk-bot"].ClientID
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "oauth.mjs"), in.url+"/mcp", `{"name":"notes.echo","arguments":{"message":"from ts"}}`)
	cmd.Dir = dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, in, people, "ann")
	var result string
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "AUTHORIZE "):
			q := b.authorize(strings.TrimPrefix(line, "AUTHORIZE "), agentID)
			if q.Get("code") == "" || q.Get("iss") != in.url {
				t.Fatalf("authorization answered %v", q)
			}
			fmt.Fprintf(stdin, "CODE %s %s\n", q.Get("code"), q.Get("state"))
		case strings.HasPrefix(line, "RESULT "):
			result = strings.TrimPrefix(line, "RESULT ")
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	var out struct {
		Tools  []string `json:"tools"`
		Result struct {
			IsError bool `json:"isError"`
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
		Refresh  bool   `json:"refresh"`
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(result), &out); err != nil {
		t.Fatalf("result %q: %v\n%s", result, err, stderr.String())
	}
	if out.Result.IsError || len(out.Result.Content) != 1 || out.Result.Content[0].Text != "echo: from ts" || !out.Refresh || !strings.HasPrefix(out.ClientID, "cli_") {
		t.Fatalf("the TS client saw %+v", out)
	}
	if !hasEvent(in.events("type=tool.call&agent=desk-bot"), warden.EventToolCall, func(ev *warden.AuditEvent) bool {
		return ev.Actor.ID == agentID && ev.Actor.OnBehalfOf == "ann@example.com"
	}) {
		t.Fatal("no tool.call by the agent for ann")
	}
}
