package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

// The Node.js peers (testdata/node/package.json, pinned by its package-lock.json) install
// themselves into testdata/node/node_modules, which git ignores. These tests skip only when
// node or npm is missing.

var (
	npmOnce sync.Once
	npmErr  error
)

// nodePeers returns the absolute path of testdata/node with its packages installed.
func nodePeers(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed: skipping the tests with real Node.js MCP peers", bin)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	npmOnce.Do(func() {
		if fresh(filepath.Join(dir, "node_modules", ".package-lock.json"), filepath.Join(dir, "package-lock.json"), filepath.Join(dir, "package.json")) {
			return
		}
		cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm install in %s: %v\n%s", dir, err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	return dir
}

// fresh reports whether target exists and is newer than every source.
func fresh(target string, sources ...string) bool {
	ti, err := os.Stat(target)
	if err != nil {
		return false
	}
	for _, s := range sources {
		if si, err := os.Stat(s); err != nil || si.ModTime().After(ti.ModTime()) {
			return false
		}
	}
	return true
}

func TestEverythingServerOverStdio(t *testing.T) {
	dir := nodePeers(t)
	everything := &warden.Tool{
		Name: "everything", Kind: warden.ToolMCPCommand, Risk: warden.RiskLow,
		Command:   []string{"node", filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"},
		SecretEnv: map[string]string{"EVERYTHING_TOKEN": "everything-token"},
	}
	tg := newTestGateway(t, everything)
	tg.p.env["everything-token"] = "s3cret-env-value"
	token, _ := tg.p.addAgent("alice")
	ctx := ctxT(t)

	for _, tc := range []struct{ path, echo string }{{"/mcp", "everything.echo"}, {"/mcp/everything", "echo"}} {
		cs := connect(t, tg.srv.URL+tc.path, token, nil)
		tools, err := cs.ListTools(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == tc.echo }) {
			t.Fatalf("%s: tools/list has no %s: %d tools", tc.path, tc.echo, len(tools.Tools))
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tc.echo, Arguments: map[string]any{"message": "hello through warden"}})
		if err != nil {
			t.Fatal(err)
		}
		if res.IsError || !strings.Contains(text(t, res), "hello through warden") {
			t.Errorf("%s: echo = %q", tc.path, text(t, res))
		}
	}
	// Both endpoints shared one process.
	tg.g.mu.Lock()
	n := len(tg.g.stdio)
	tg.g.mu.Unlock()
	if n != 1 {
		t.Errorf("%d local servers running, want 1", n)
	}
	recs := tg.p.records("everything", "echo")
	if len(recs) != 2 {
		t.Fatalf("decisions = %d, want 2", len(recs))
	}
	for _, r := range recs {
		if outs := waitOutcomes(t, r, 1); len(outs) != 1 || outs[0].Status != warden.StatusOK {
			t.Errorf("outcomes = %+v", outs)
		}
	}
}

func TestStdioServerIsRestarted(t *testing.T) {
	dir := nodePeers(t)
	everything := &warden.Tool{
		Name: "everything", Kind: warden.ToolMCPCommand,
		Command: []string{"node", filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"},
	}
	tg := newTestGateway(t, everything)
	token, _ := tg.p.addAgent("alice")
	cs := connect(t, tg.srv.URL+"/mcp/everything", token, nil)
	ctx := ctxT(t)
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "one"}}); err != nil {
		t.Fatal(err)
	}
	tg.g.mu.Lock()
	st := tg.g.stdio["everything"]
	tg.g.mu.Unlock()
	st.mu.Lock()
	proc := st.up.proc.Process
	st.mu.Unlock()
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	// The server comes back; the agent's session goes on.
	var last error
	eventually(t, func() bool {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "two"}})
		last = err
		return err == nil && !res.IsError && strings.Contains(text(t, res), "two")
	})
	if last != nil {
		t.Fatalf("after the restart: %v", last)
	}
	st.mu.Lock()
	newPID := st.up.proc.Process.Pid
	st.mu.Unlock()
	if newPID == proc.Pid {
		t.Error("the server was not restarted")
	}
	_ = tg.g.Close()
	if err := syscallAlive(newPID); err == nil {
		t.Errorf("process %d still runs after Close", newPID)
	}
}

func syscallAlive(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(syscallZero)
}

func TestTypeScriptClient(t *testing.T) {
	dir := nodePeers(t)
	up := startUpstream(t)
	tg := newTestGateway(t, remoteTool("up", up.URL))
	tg.p.deny["up/secret"] = "not granted"
	token, _ := tg.p.addAgent("alice")

	ctx := ctxT(t)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "tsclient.mjs"), tg.srv.URL+"/mcp", token,
		`{"name":"up.echo","arguments":{"text":"from typescript"}}`,
		`{"name":"up.secret","arguments":{}}`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tsclient: %v\n%s", err, stderr.String())
	}
	var got struct {
		Server          struct{ Name string }
		ProtocolVersion string
		SessionID       string
		Tools           []string
		Results         []struct {
			IsError bool
			Content []struct{ Type, Text string }
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Server.Name != "warden" || got.SessionID == "" || got.ProtocolVersion == "" {
		t.Errorf("server %q, session %q, protocol %q", got.Server.Name, got.SessionID, got.ProtocolVersion)
	}
	if !slices.Contains(got.Tools, "up.echo") {
		t.Errorf("tools = %v", got.Tools)
	}
	if len(got.Results) != 2 {
		t.Fatalf("results = %+v", got.Results)
	}
	if r := got.Results[0]; r.IsError || len(r.Content) == 0 || r.Content[0].Text != "echo: from typescript" {
		t.Errorf("echo = %+v", r)
	}
	if r := got.Results[1]; !r.IsError || len(r.Content) == 0 || !strings.HasPrefix(r.Content[0].Text, "not granted (decision dec_") {
		t.Errorf("denied = %+v", r)
	}
}

// conformanceCheck is one check of the MCP conformance suite.
type conformanceCheck struct {
	Scenario string
	ID       string `json:"id"`
	Status   string `json:"status"`
	Error    string `json:"errorMessage"`
}

var resultDirRE = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T`)

// runConformance runs the suite's server checks against url and returns them.
func runConformance(t *testing.T, dir, url string) []conformanceCheck {
	t.Helper()
	out := t.TempDir()
	node := filepath.Join(dir, "node_modules", ".bin", "node") // Node.js 22, from npm
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"),
		"server", "--url", url, "-o", out)
	log, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("conformance suite timed out:\n%s", log)
	}
	_ = err // failing checks exit non-zero; the checks say which
	files, _ := filepath.Glob(filepath.Join(out, "*", "checks.json"))
	if len(files) == 0 {
		t.Fatalf("conformance suite wrote no results (%v):\n%s", err, log)
	}
	var checks []conformanceCheck
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []conformanceCheck
		if err := json.Unmarshal(data, &cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Directory names are server-<scenario>-<timestamp>.
		scenario := filepath.Base(filepath.Dir(f))
		if m := resultDirRE.FindStringSubmatch(scenario); m != nil {
			scenario = m[1]
		}
		for _, c := range cs {
			if c.Status == "SUCCESS" || c.Status == "FAILURE" {
				c.Scenario = scenario
				checks = append(checks, c)
			}
		}
	}
	slices.SortFunc(checks, func(a, b conformanceCheck) int {
		return strings.Compare(a.Scenario+"/"+a.ID, b.Scenario+"/"+b.ID)
	})
	return checks
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestConformance runs the MCP conformance suite against the Go SDK's conformance server, once
// directly and once through warden's /mcp/<tool>, behind a forwarder that adds the agent's
// token (the suite does not do OAuth; warden connect plays that part in production). Set
// MCPGW_UPDATE_CONFORMANCE=1 to rewrite docs/CONFORMANCE.md.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite takes several seconds")
	}
	dir := nodePeers(t)
	bin := filepath.Join(t.TempDir(), "everything-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance server: %v\n%s", err, out)
	}
	addr := freePort(t)
	server := exec.Command(bin, "-http="+addr, "-stateless=false")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = server.Process.Kill()
		_ = server.Wait()
	})
	upstreamURL := "http://" + addr + "/mcp"
	eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	tg := newTestGateway(t, remoteTool("conformance", upstreamURL))
	token, _ := tg.p.addAgent("conformance")
	target, _ := url.Parse(tg.srv.URL)
	forwarder := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // warden judges the Host the client sent, as a local server would
			pr.Out.Header.Set("Authorization", "Bearer "+token)
		},
		FlushInterval: -1,
	})
	t.Cleanup(forwarder.Close)

	direct := runConformance(t, dir, upstreamURL)
	through := runConformance(t, dir, forwarder.URL+"/mcp/conformance")

	passed := func(cs []conformanceCheck) map[string]conformanceCheck {
		m := map[string]conformanceCheck{}
		for _, c := range cs {
			m[c.Scenario+"/"+c.ID] = c
		}
		return m
	}
	d, w := passed(direct), passed(through)
	var keys []string
	for k := range d {
		keys = append(keys, k)
	}
	for k := range w {
		if _, ok := d[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	count := func(m map[string]conformanceCheck) (n int) {
		for _, c := range m {
			if c.Status == "SUCCESS" {
				n++
			}
		}
		return n
	}
	t.Logf("conformance: direct %d/%d, through warden %d/%d", count(d), len(d), count(w), len(w))
	for _, k := range keys {
		if d[k].Status == "SUCCESS" && w[k].Status != "SUCCESS" {
			t.Errorf("%s passes directly but not through warden: %s %s", k, w[k].Status, w[k].Error)
		}
	}
	if count(w) < 40 {
		t.Errorf("through warden %d checks pass, want at least 40", count(w))
	}

	if os.Getenv("MCPGW_UPDATE_CONFORMANCE") != "" {
		var b strings.Builder
		b.WriteString(conformanceHeader)
		fmt.Fprintf(&b, "| scenario | check | direct | through warden |\n|---|---|---|---|\n")
		mark := func(c conformanceCheck) string {
			switch c.Status {
			case "SUCCESS":
				return "pass"
			case "":
				return "—"
			}
			return "FAIL"
		}
		for _, k := range keys {
			c := d[k]
			if c.ID == "" {
				c = w[k]
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", c.Scenario, c.ID, mark(d[k]), mark(w[k]))
		}
		fmt.Fprintf(&b, "| **total** | | **%d/%d** | **%d/%d** |\n", count(d), len(d), count(w), len(w))
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "CONFORMANCE.md"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const conformanceHeader = `# MCP conformance of warden's MCP gateway

The server checks of the MCP conformance suite (npm ` + "`@modelcontextprotocol/conformance@0.1.16`" + `, run with
Node.js 22 from npm ` + "`node@22.23.3`" + `) against the official Go SDK's conformance server
(` + "`github.com/modelcontextprotocol/go-sdk/conformance/everything-server`" + ` v1.8.0, ` + "`-stateless=false`" + `): once
directly, and once through warden at ` + "`/mcp/<tool>`" + `, where every call passes the pipeline (authentication,
policy, audit) and the upstream is reached with a brokered credential. The suite does not do OAuth, so a
local forwarder adds the agent's Bearer token, as ` + "`warden connect`" + ` does in production.

` + "`go test ./internal/mcpgw -run TestConformance`" + ` runs both in CI; ` + "`MCPGW_UPDATE_CONFORMANCE=1`" + ` rewrites this table.

`
