package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The npm packages the client recipes of docs/clients.md are tested with.
const (
	tsSDKPackage     = "@modelcontextprotocol/sdk@1.32.2"
	inspectorPackage = "@modelcontextprotocol/inspector@2.12.0"
)

// TestConnectStdioNPMClients runs docs/clients.md's recipes for the MCP Inspector's CLI and
// the TypeScript SDK against `warden connect --stdio` (the warden binary, built here) with a
// credentials file: tools/list, a call, a denial, and — with the TypeScript SDK — the
// upstream's sampling, elicitation and roots requests answered by the client. It needs node,
// npm and the npm registry; without them it is skipped, saying what is missing.
func TestConnectStdioNPMClients(t *testing.T) {
	t.Parallel()
	needNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The packages, and Node 22 for the Inspector (it wants Node ≥ 22.19).
	pkgs := t.TempDir()
	if err := os.WriteFile(filepath.Join(pkgs, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	install := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tsSDKPackage, inspectorPackage)
	install.Dir = pkgs
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("npm install %s %s failed (is the npm registry reachable?): %v\n%s", tsSDKPackage, inspectorPackage, err, out)
	}
	node22 := []string{"npx", "-y", "node@22"}
	if out, err := exec.CommandContext(ctx, node22[0], append(node22[1:], "--version")...).CombinedOutput(); err != nil {
		t.Skipf("npx -y node@22 failed (is the npm registry reachable?): %v\n%s", err, out)
	}

	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/warden").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := newStdioUpstream(t)
	in := start(t, t.TempDir(), nil)
	id, secret := stdioSetup(t, in, up)
	creds := filepath.Join(t.TempDir(), "notes-bot.json")
	doc, _ := json.Marshal(map[string]string{"client_id": id, "client_secret": secret})
	if err := os.WriteFile(creds, doc, 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = pkgs, &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}

	t.Run("inspector", func(t *testing.T) {
		inspector := append(slices.Clone(node22[1:]), filepath.Join(pkgs, "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"),
			"--cli", "-e", "WARDEN_ADDR="+in.url, bin, "connect", "--stdio", "--credentials", creds)
		out := run(t, node22[0], append(slices.Clone(inspector), "--method", "tools/list")...)
		var list struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("tools/list printed %q: %v", out, err)
		}
		var names []string
		for _, tl := range list.Tools {
			names = append(names, tl.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"notes.echo", "notes.interact", "notes.slow"}) {
			t.Fatalf("tools/list = %v", names)
		}
		out = run(t, node22[0], append(slices.Clone(inspector), "--method", "tools/call", "--tool-name", "notes.echo", "--tool-arg", "message=hi")...)
		if !strings.Contains(out, "echo: hi") {
			t.Fatalf("tools/call printed %q", out)
		}
	})

	t.Run("typescript-sdk", func(t *testing.T) {
		script, err := os.ReadFile("testdata/stdio-client.mjs")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkgs, "stdio-client.mjs"), script, 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(t, "node", "stdio-client.mjs", bin, creds, in.url)
		var got struct {
			Tools  []string `json:"tools"`
			OK     string   `json:"ok"`
			Denied struct {
				IsError bool   `json:"isError"`
				Text    string `json:"text"`
			} `json:"denied"`
			Interact string `json:"interact"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("the script printed %q: %v", out, err)
		}
		if !slices.Equal(got.Tools, []string{"notes.echo", "notes.interact", "notes.slow"}) || got.OK != "echo: hi" ||
			!got.Denied.IsError || !strings.Contains(got.Denied.Text, "decision dec_") ||
			got.Interact != "sampled=hi from the client elicited=Ada roots=1" {
			t.Fatalf("the TypeScript client saw %+v", got)
		}
	})
}
