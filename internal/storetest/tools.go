package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var toolTests = []storeTest{
	{"CreateAndGet", testCreateAndGetTool},
	{"FieldsRoundTrip", testToolFields},
	{"CreateConflict", testCreateToolConflict},
	{"NotFound", testToolNotFound},
	{"ListOrderedByName", testToolsOrderedByName},
	{"Update", testUpdateTool},
	{"UpdateErrorWritesNothing", testUpdateToolErrorWritesNothing},
	{"UpdateConcurrent", testUpdateToolConcurrent},
	{"Delete", testDeleteTool},
}

func newTool(name string) *warden.Tool {
	return &warden.Tool{
		Name:   name,
		Kind:   warden.ToolHTTP,
		URL:    "https://api.github.com",
		Risk:   warden.RiskHigh,
		Secret: "github-token",
		Inject: "Authorization: Bearer {{secret}}",
		Routes: []string{
			"POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}",
			"GET /user -> user.read",
		},
		SensitiveArgs: []string{"body"},
		Labels:        map[string]string{"team": "infra"},
		CreatedAt:     base,
		UpdatedAt:     base.Add(time.Second),
	}
}

// toolInUTC returns a copy of t with its times in UTC, as the store returns them.
func toolInUTC(t *warden.Tool) *warden.Tool {
	c := *t
	c.CreatedAt, c.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return &c
}

func createTool(t *testing.T, s warden.Store, tool *warden.Tool) {
	t.Helper()
	if err := s.CreateTool(t.Context(), tool); err != nil {
		t.Fatalf("CreateTool(%s): %v", tool.Name, err)
	}
}

func getTool(t *testing.T, s warden.Store, name string) *warden.Tool {
	t.Helper()
	tool, err := s.Tool(t.Context(), name)
	if err != nil {
		t.Fatalf("Tool(%s): %v", name, err)
	}
	return tool
}

func testCreateAndGetTool(t *testing.T, s warden.Store) {
	remote := newTool("github")
	local := &warden.Tool{
		Name:          "filesystem",
		Kind:          warden.ToolMCPCommand,
		Command:       []string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv/data"},
		Risk:          warden.RiskCritical,
		SecretEnv:     map[string]string{"FS_TOKEN": "fs-token", "OTHER": "other-secret"},
		SensitiveArgs: []string{"content", "path"},
		Approval:      []string{"write_file", "delete_file"},
		Sandbox:       &warden.ToolSandbox{ReadOnly: []string{"/srv/data"}, AllowHosts: []string{"registry.npmjs.org", "*.example.com:443"}},
		Package: &warden.ToolPackage{Source: warden.PackageNPM, Digest: "sha256:" + strings.Repeat("ab", 32),
			Name: "@modelcontextprotocol/server-filesystem", Version: "1.2.3", Integrity: "sha512-AAAA", Bin: "mcp-server-filesystem",
			Files: []warden.PackageFile{{Path: "node_modules/x/dist/index.js", Digest: "sha256:" + strings.Repeat("cd", 32)}}},
		Labels: map[string]string{"env": "prod", "owner": "alice", warden.LabelData: warden.DataPrivate},
		ActionLabels: map[string]map[string]string{
			"read_file":  {warden.LabelOutput: warden.OutputUntrusted},
			"write_file": {warden.LabelEffect: warden.EffectInternal, warden.LabelData: warden.DataPublic},
		},
		Disabled:  true,
		CreatedAt: base.Add(time.Minute),
		UpdatedAt: base.Add(time.Hour),
	}
	decisionOnly := &warden.Tool{
		Name: "bank",
		Kind: warden.ToolDecisionOnly,
		Risk: warden.RiskMedium,
		Actions: []warden.ToolAction{
			{Name: "balance"},
			{Name: "pay", Risk: warden.RiskHigh, InputSchema: []byte(`{"properties":{"to":{"format":"email","type":"string"}},"type":"object"}`)},
		},
		ActionLabels: map[string]map[string]string{"pay": {warden.LabelEffect: warden.EffectExternal}},
		CreatedAt:    base.Add(2 * time.Minute),
		UpdatedAt:    base.Add(2 * time.Minute),
	}
	createTool(t, s, remote)
	createTool(t, s, local)
	createTool(t, s, decisionOnly)
	wantEqual(t, "http tool", getTool(t, s, remote.Name), toolInUTC(remote))
	wantEqual(t, "mcp_command tool", getTool(t, s, local.Name), toolInUTC(local))
	wantEqual(t, "decision_only tool", getTool(t, s, decisionOnly.Name), toolInUTC(decisionOnly))
}

// testToolFields checks that the lists, maps and times of a tool come back as they were stored,
// none distinct from empty, whatever the characters.
func testToolFields(t *testing.T, s warden.Store) {
	tests := []struct {
		name string
		tool *warden.Tool
	}{
		{"none", &warden.Tool{Kind: warden.ToolMCP, Risk: warden.RiskLow}},
		{"empty", &warden.Tool{Kind: warden.ToolMCPCommand, Risk: warden.RiskMedium, Command: []string{},
			SecretEnv: map[string]string{}, Routes: []string{}, SensitiveArgs: []string{}, Labels: map[string]string{},
			ActionLabels: map[string]map[string]string{}}},
		{"awkward", &warden.Tool{
			Kind:          warden.ToolHTTP,
			URL:           "https://example.com/a?b=c&d=<e>#f",
			Command:       []string{"sh", "-c", `echo "quoted" 'single' \back\ $HOME`, "", "ünïcödé ✓", "nul\x00byte"},
			Risk:          warden.RiskHigh,
			Secret:        "s",
			Inject:        "X-Api-Key: {{secret}}",
			SecretEnv:     map[string]string{"A_B": "quote\"", "": "empty"},
			Routes:        []string{"GET /{a}/{b...} -> read thing:{a}"},
			SensitiveArgs: []string{"<html>", "&amp;"},
			Approval:      []string{"*"},
			Labels:        map[string]string{"ünï": "✓", "tab\t": "new\nline"},
			ActionLabels:  map[string]map[string]string{"ünï<&>": {"tab\t": "new\nline"}, "empty": {}},
			Disabled:      true,
			CreatedAt:     time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC),
			UpdatedAt:     time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC),
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.tool.Name = string(rune('a' + i))
			createTool(t, s, tt.tool)
			wantEqual(t, "tool", getTool(t, s, tt.tool.Name), toolInUTC(tt.tool))
		})
	}
	t.Run("time out of range", func(t *testing.T) {
		tool := newTool("year-3000")
		tool.UpdatedAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		wantCode(t, s.CreateTool(t.Context(), tool), warden.EInvalid)
		_, err := s.Tool(t.Context(), tool.Name)
		wantCode(t, err, warden.ENotFound)
	})
}

func testCreateToolConflict(t *testing.T, s warden.Store) {
	tool := newTool("taken")
	createTool(t, s, tool)
	other := newTool(tool.Name)
	other.Kind, other.URL, other.Risk = warden.ToolMCP, "https://other.example.com/mcp", warden.RiskLow
	wantCode(t, s.CreateTool(t.Context(), other), warden.EConflict)
	wantEqual(t, "tool after a conflict", getTool(t, s, tool.Name), toolInUTC(tool))
	if tools, err := s.Tools(t.Context()); err != nil || len(tools) != 1 {
		t.Fatalf("Tools() = %d tools, %v; want only the first", len(tools), err)
	}
}

func testToolNotFound(t *testing.T, s warden.Store) {
	createTool(t, s, newTool("present"))
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Tool", func(ctx context.Context) error { _, err := s.Tool(ctx, "absent"); return err }},
		{"UpdateTool", func(ctx context.Context) error {
			_, err := s.UpdateTool(ctx, "absent", func(*warden.Tool) error {
				t.Error("UpdateTool called fn for a tool that does not exist")
				return nil
			})
			return err
		}},
		{"DeleteTool", func(ctx context.Context) error { return s.DeleteTool(ctx, "absent") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(t.Context()), warden.ENotFound)
		})
	}
}

func testToolsOrderedByName(t *testing.T, s warden.Store) {
	tools, err := s.Tools(t.Context())
	if err != nil || len(tools) != 0 {
		t.Fatalf("Tools() of an empty store = %v, %v", tools, err)
	}
	want := []string{"a", "a-b", "a0", "ab", "github", "slack", "z-9"}
	for _, i := range rand.Perm(len(want)) {
		createTool(t, s, newTool(want[i]))
	}
	tools, err = s.Tools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tools, func(tool *warden.Tool) string { return tool.Name }, want)
	wantEqual(t, "first tool", tools[0], toolInUTC(newTool("a")))
}

func testUpdateTool(t *testing.T, s warden.Store) {
	tool := newTool("github")
	createTool(t, s, tool)
	later := base.Add(time.Hour)
	change := func(tool *warden.Tool) {
		tool.Kind, tool.URL, tool.Risk = warden.ToolMCP, "https://mcp.github.com/", warden.RiskCritical
		tool.Command = []string{"unused"}
		tool.Secret, tool.Inject = "rotated-token", "Authorization: token {{secret}}"
		tool.SecretEnv = map[string]string{"GH": "rotated-token"}
		tool.Routes = append(tool.Routes, "DELETE /repos/{owner}/{repo} -> repos.delete repo:{owner}/{repo}")
		tool.SensitiveArgs = nil
		tool.Labels["changed-by"] = "bob"
		tool.ActionLabels = map[string]map[string]string{"user.read": {warden.LabelOutput: warden.OutputTrusted}}
		tool.Disabled = true
		tool.UpdatedAt = later
	}
	updated, err := s.UpdateTool(t.Context(), tool.Name, func(tool *warden.Tool) error {
		change(tool)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := toolInUTC(newTool("github"))
	change(want)
	want.UpdatedAt = later.UTC()
	wantEqual(t, "UpdateTool result", toolInUTC(updated), want)
	wantEqual(t, "Tool after UpdateTool", getTool(t, s, tool.Name), want)

	t.Run("name cannot change", func(t *testing.T) {
		_, err := s.UpdateTool(t.Context(), tool.Name, func(tool *warden.Tool) error {
			tool.Name, tool.Disabled = "renamed", false
			return nil
		})
		wantCode(t, err, warden.EInvalid)
		wantEqual(t, "Tool after a refused rename", getTool(t, s, tool.Name), want)
		_, err = s.Tool(t.Context(), "renamed")
		wantCode(t, err, warden.ENotFound)
	})
}

func testUpdateToolErrorWritesNothing(t *testing.T, s warden.Store) {
	tool := newTool("steady")
	createTool(t, s, tool)
	errRefused := warden.Errorf(warden.EForbidden, "refused")
	tests := []struct {
		name string
		fn   func(cancel context.CancelFunc, tool *warden.Tool) error
		want error
	}{
		{"fn fails", func(_ context.CancelFunc, tool *warden.Tool) error {
			tool.Disabled, tool.Risk = true, warden.RiskLow
			return errRefused
		}, errRefused},
		{"context canceled in fn", func(cancel context.CancelFunc, tool *warden.Tool) error {
			tool.Disabled, tool.Risk = true, warden.RiskLow
			cancel()
			return nil
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			got, err := s.UpdateTool(ctx, tool.Name, func(tool *warden.Tool) error { return tt.fn(cancel, tool) })
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("UpdateTool = %v, %v; want nil, %v", got, err, tt.want)
			}
			wantEqual(t, "Tool after a failed update", getTool(t, s, tool.Name), toolInUTC(tool))
		})
	}
}

func testUpdateToolConcurrent(t *testing.T, s warden.Store) {
	const writers = 20
	createTool(t, s, newTool("contended"))
	err := concurrently(writers, func(int) error {
		_, err := s.UpdateTool(t.Context(), "contended", func(tool *warden.Tool) error {
			n, _ := strconv.Atoi(tool.Labels["calls"])
			tool.Labels["calls"] = strconv.Itoa(n + 1)
			tool.Disabled = !tool.Disabled
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got := getTool(t, s, "contended")
	if got.Labels["calls"] != strconv.Itoa(writers) || got.Disabled != (writers%2 == 1) {
		t.Fatalf("after %d concurrent updates: calls %s, disabled %v; want %d, %v: an update was lost",
			writers, got.Labels["calls"], got.Disabled, writers, writers%2 == 1)
	}
}

func testDeleteTool(t *testing.T, s warden.Store) {
	createTool(t, s, newTool("doomed"))
	createTool(t, s, newTool("survivor"))
	if err := s.DeleteTool(t.Context(), "doomed"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Tool(t.Context(), "doomed")
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.DeleteTool(t.Context(), "doomed"), warden.ENotFound)

	tools, err := s.Tools(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, tools, func(tool *warden.Tool) string { return tool.Name }, []string{"survivor"})
	// The name is free again.
	again := newTool("doomed")
	again.Kind, again.URL = warden.ToolMCP, "https://mcp.example.com/"
	createTool(t, s, again)
	wantEqual(t, "recreated tool", getTool(t, s, "doomed"), toolInUTC(again))
}
