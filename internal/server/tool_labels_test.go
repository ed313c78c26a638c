package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/httpapi"
)

// newAnnotatedUpstream is an MCP server whose tools carry annotations, as a mail server's would.
func newAnnotatedUpstream(t *testing.T) string {
	s := mcp.NewServer(&mcp.Implementation{Name: "mail", Version: "1"}, nil)
	yes, no := true, false
	tools := []*mcp.Tool{
		{Name: "send_email", Description: "send a mail", Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes, OpenWorldHint: &yes}},
		{Name: "read_inbox", Description: "read the inbox", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &yes}},
		{Name: "list_folders", Description: "list folders", Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: &no}},
	}
	for _, tool := range tools {
		mcp.AddTool(s, tool, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
		})
	}
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(ts.Close)
	return ts.URL
}

// flowLines returns the rows of tool show's flow labels section, each with its runs of spaces
// made one.
func flowLines(out string) []string {
	_, section, ok := strings.Cut(out, "flow labels:\n")
	if !ok {
		return nil
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimRight(section, "\n"), "\n") {
		if !strings.HasPrefix(line, "  ") {
			break
		}
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	return rows
}

// TestToolLabels labels an MCP server's and an HTTP API's actions through the CLI against a
// real server: tool show resolves every action's labels from the admin's labels, the pinned
// annotations and the defaults, the same in text and JSON; only an admin may label (a label
// loosens or tightens what policy sees, as a policy change does): an operator and an auditor
// may not; every change is audited; bad labels and bad bodies are refused.
func TestToolLabels(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	tokens := map[string]string{}
	for _, role := range []string{"operator", "auditor", "admin"} {
		var c httpapi.CreatedAdminToken
		in.cliJSON(in.admin, &c, "admin", "token", "create", role+"-1", "--role", role)
		tokens[role] = c.Token
	}
	if _, err := in.cli(in.admin, "tool", "add", "mail", "--mcp", newAnnotatedUpstream(t), "--label", "data=private"); err != nil {
		t.Fatal(err)
	}
	show := func(name string) []string {
		t.Helper()
		out, err := in.cli(tokens["auditor"], "tool", "show", name)
		if err != nil {
			t.Fatal(err)
		}
		return flowLines(out)
	}
	want := []string{
		"list_folders output=trusted (annotation openWorldHint=false) data=private (tool) effect=none (annotation readOnlyHint=true)",
		"read_inbox output=untrusted (annotation openWorldHint=true) data=private (tool) effect=none (annotation readOnlyHint=true)",
		"send_email output=untrusted (annotation openWorldHint=true) data=private (tool) effect=external (annotation destructiveHint=true)",
		"(other actions) output=untrusted (default) data=private (tool) effect=external (default)",
	}
	if got := show("mail"); !slices.Equal(got, want) {
		t.Fatalf("tool show mail:\n got %q\nwant %q", got, want)
	}

	var view apitype.ToolView
	in.cliJSON(tokens["admin"], &view, "tool", "label", "mail", "--action", "send_email", "output=trusted", "effect=internal")
	if view.ActionLabels["send_email"]["output"] != "trusted" || len(view.Flow) != 4 || view.Flow[2].Action != "send_email" ||
		view.Flow[2].Labels.Output != (warden.FlowLabel{Value: "trusted", Source: warden.LabelFromAction}) {
		t.Fatalf("tool label: %+v", view)
	}
	want[2] = "send_email output=trusted (action) data=private (tool) effect=internal (action)"
	if got := show("mail"); !slices.Equal(got, want) {
		t.Fatalf("tool show after the label:\n got %q\nwant %q", got, want)
	}
	in.cliJSON(tokens["auditor"], &view, "tool", "show", "mail")
	if len(view.Flow) != 4 || view.Flow[2].Labels.Effect != (warden.FlowLabel{Value: "internal", Source: warden.LabelFromAction}) ||
		view.Flow[1].Labels.Effect != (warden.FlowLabel{Value: "none", Source: warden.LabelFromAnnotation, Detail: "readOnlyHint=true"}) ||
		view.Flow[1].Manifest != warden.ManifestPinned || !view.Flow[3].Other {
		t.Fatalf("tool show --json: %+v", view.Flow)
	}
	evs := in.events("type=" + warden.EventToolLabels)
	if len(evs) != 1 || evs[0].Actor.Name != "admin-1" || evs[0].Target.Tool != "mail" || evs[0].Target.Action != "send_email" ||
		evs[0].Decision.Message != "action send_email: (none) -> output=trusted effect=internal" {
		t.Fatalf("events: %+v", evs)
	}

	// The whole tool, then unset: back to the annotations.
	if _, err := in.cli(tokens["admin"], "tool", "label", "mail", "output=untrusted"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(tokens["admin"], "tool", "label", "mail", "--action", "send_email", "--unset", "output", "--unset", "effect"); err != nil {
		t.Fatal(err)
	}
	want[2] = "send_email output=untrusted (tool) data=private (tool) effect=external (annotation destructiveHint=true)"
	if got := show("mail"); !slices.Equal(got[2:3], want[2:3]) || !strings.HasPrefix(got[0], "list_folders output=untrusted (tool)") {
		t.Fatalf("tool show after unset:\n got %q", got)
	}
	if n := len(in.events("type=" + warden.EventToolLabels)); n != 3 {
		t.Fatalf("%d admin.tool.labels events; want 3", n)
	}

	// An HTTP API: one row per route and method, each method its default effect.
	if _, err := in.cli(in.admin, "tool", "add", "api", "--http", "http://127.0.0.1:9/api", "--route", "GET /items -> list", "--route", "POST /items -> create"); err != nil {
		t.Fatal(err)
	}
	if _, err := in.cli(tokens["admin"], "tool", "label", "api", "--action", "create", "effect=internal"); err != nil {
		t.Fatal(err)
	}
	if got, want := show("api"), []string{
		"list (GET) output=untrusted (default) data=public (default) effect=none (default GET)",
		"create (POST) output=untrusted (default) data=public (default) effect=internal (action)",
	}; !slices.Equal(got, want) {
		t.Fatalf("tool show api:\n got %q\nwant %q", got, want)
	}

	refusals := []struct {
		name  string
		token string
		args  []string
		code  int
		msg   string
	}{
		{"auditor", tokens["auditor"], []string{"tool", "label", "mail", "data=public"}, cli.ExitUnauthorized, "needs role"},
		{"operator", tokens["operator"], []string{"tool", "label", "mail", "output=trusted"}, cli.ExitUnauthorized, "needs role"},
		{"not a flow label", tokens["admin"], []string{"tool", "label", "mail", "colour=red"}, cli.ExitUsage, `unknown flow label "colour"`},
		{"bad value", tokens["admin"], []string{"tool", "label", "mail", "effect=everything"}, cli.ExitUsage, "use none or internal or external"},
		{"no value", tokens["admin"], []string{"tool", "label", "mail", "effect"}, cli.ExitUsage, "give KEY=VALUE"},
		{"twice", tokens["admin"], []string{"tool", "label", "mail", "effect=none", "effect=internal"}, cli.ExitUsage, "given twice"},
		{"nothing", tokens["admin"], []string{"tool", "label", "mail"}, cli.ExitUsage, "give the labels to set"},
		{"not an MCP tool name", tokens["admin"], []string{"tool", "label", "mail", "--action", "send email", "effect=none"}, cli.ExitUsage, "invalid MCP tool name"},
		{"no such route", tokens["admin"], []string{"tool", "label", "api", "--action", "delete", "effect=none"}, cli.ExitUsage, "which no route of the tool has (list, create)"},
		{"egress", tokens["admin"], []string{"tool", "label", "egress", "effect=none"}, cli.ExitUsage, "built-in egress tool"},
		{"no such tool", tokens["admin"], []string{"tool", "label", "nosuch", "effect=none"}, cli.ExitNotFound, "not found"},
	}
	for _, r := range refusals {
		_, err := in.cli(r.token, r.args...)
		if err == nil {
			t.Errorf("%s: accepted; want exit %d with %q", r.name, r.code, r.msg)
			continue
		}
		if cli.ExitCode(err) != r.code || !strings.Contains(cli.ErrorLine(err), r.msg) {
			t.Errorf("%s: exit %d, %q; want %d with %q", r.name, cli.ExitCode(err), cli.ErrorLine(err), r.code, r.msg)
		}
	}
	auth := map[string]string{"Authorization": "Bearer " + in.admin, "Content-Type": "application/json"}
	for _, b := range []struct {
		name, body string
		status     int
	}{
		{"unknown field", `{"set":{"output":"trusted"},"reason":"x"}`, http.StatusBadRequest},
		{"trailing data", `{"set":{"output":"trusted"}} {}`, http.StatusBadRequest},
		{"too large", `{"unset":["` + strings.Repeat("a", 2<<20) + `"]}`, http.StatusRequestEntityTooLarge},
	} {
		if r := in.do("PATCH", "/v1/tools/mail/labels", auth, b.body); r.status != b.status {
			t.Errorf("%s: %d %s; want %d", b.name, r.status, r.body, b.status)
		}
	}
	if n := len(in.events("type=" + warden.EventToolLabels)); n != 4 {
		t.Fatalf("%d admin.tool.labels events after the refusals; want 4 (none for a refusal)", n)
	}
}

// TestApplyToolLabels: warden.yaml's tools[].labels and tools[].action_labels reach the store
// through warden apply, a change of either is an update, and a bad label refuses the document.
func TestApplyToolLabels(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	doc := func(effect string) string {
		return `
tools:
  - name: bank
    http: http://127.0.0.1:9/bank
    routes:
      - "GET /balance -> balance"
      - "POST /transfers -> transfer"
    labels:
      data: private
      team: payments
    action_labels:
      balance: {output: trusted}
      transfer: {effect: ` + effect + `}
`
	}
	var plan admin.Plan
	in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc("external")))
	if len(plan.Changes) != 1 || plan.Changes[0].Op != "create" {
		t.Fatalf("first apply: %+v", plan)
	}
	var view apitype.ToolView
	in.cliJSON(in.admin, &view, "tool", "show", "bank")
	if view.Labels["data"] != "private" || view.ActionLabels["transfer"]["effect"] != "external" || len(view.Flow) != 2 ||
		view.Flow[0].Labels.Output.Source != warden.LabelFromAction || view.Flow[1].Labels.Data.Source != warden.LabelFromTool {
		t.Fatalf("tool show after apply: %+v %+v", view.Tool, view.Flow)
	}
	for _, step := range []struct{ effect, op string }{{"external", "unchanged"}, {"internal", "update"}} {
		plan = admin.Plan{}
		in.cliJSON(in.admin, &plan, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc(step.effect)))
		if len(plan.Changes) != 1 || plan.Changes[0].Op != step.op {
			t.Fatalf("apply with effect %s: %+v; want %s", step.effect, plan, step.op)
		}
	}
	in.cliJSON(in.admin, &view, "tool", "show", "bank")
	if view.ActionLabels["transfer"]["effect"] != "internal" {
		t.Fatalf("the update was not stored: %+v", view.ActionLabels)
	}
	for _, bad := range []struct{ effect, msg string }{
		{"huge", `tool bank, action transfer: label effect="huge"`},
		{"external, colour: red", `unknown flow label "colour"`},
	} {
		_, err := in.cli(in.admin, "apply", "-f", writeFile(t, t.TempDir(), "warden.yaml", doc(bad.effect)))
		if cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(cli.ErrorLine(err), bad.msg) {
			t.Errorf("effect %s: exit %d, %v; want a usage error with %q", bad.effect, cli.ExitCode(err), err, bad.msg)
		}
	}
}
