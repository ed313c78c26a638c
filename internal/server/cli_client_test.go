package server_test

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cli"
)

// TestCLIThroughAPIClient runs the commands the other tests do not, against a real server: each
// goes through apiclient's typed call with apitype's types, and what comes back is what the
// server did.
func TestCLIThroughAPIClient(t *testing.T) {
	in := start(t, t.TempDir(), nil)

	var p warden.Principal
	in.cliJSON(in.admin, &p, "whoami")
	if p.Role != warden.RoleAdmin {
		t.Fatalf("whoami: %+v", p)
	}
	// A refused credential says where the CLI's credential comes from, and exits 3.
	_, err := in.cli("wadm_not-a-token", "whoami")
	if cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(cli.ErrorLine(err), "(check WARDEN_TOKEN or DATA/admin.token)") {
		t.Fatalf("unknown token: exit %d, %q", cli.ExitCode(err), cli.ErrorLine(err))
	}

	var key warden.SigningKey
	in.cliJSON(in.admin, &key, "keys", "rotate")
	var keys []*warden.SigningKey
	in.cliJSON(in.admin, &keys, "keys", "list")
	if key.ID == "" || len(keys) != 2 {
		t.Fatalf("keys: rotated %+v, listed %d", key, len(keys))
	}

	var created, rotated apitype.CreatedAgent
	in.cliJSON(in.admin, &created, "agent", "create", "bot", "--owner", "owner@example.com", "--purpose", "test the typed client")
	var renewed warden.Agent
	in.cliJSON(in.admin, &renewed, "agent", "renew", "bot", "--ttl", "10d")
	in.cliJSON(in.admin, &rotated, "agent", "rotate-secret", "bot")
	if created.ClientSecret == "" || rotated.ClientSecret == "" || rotated.ClientSecret == created.ClientSecret || renewed.Name != "bot" {
		t.Fatalf("agent: created %q, rotated %q, renewed %+v", created.ClientSecret, rotated.ClientSecret, renewed)
	}

	if _, err := in.cli(in.admin, "tool", "add", "api", "--http", "http://127.0.0.1:9/api", "--risk", "low", "--route", "GET /items -> get"); err != nil {
		t.Fatal(err)
	}
	var tools []*warden.Tool
	in.cliJSON(in.admin, &tools, "tool", "list")
	var disabled apitype.ToolDisabled
	in.cliJSON(in.admin, &disabled, "tool", "disable", "api", "--reason", "maintenance")
	var tool warden.Tool
	in.cliJSON(in.admin, &tool, "tool", "show", "api")
	if len(tools) == 0 || disabled.Tool == nil || disabled.Name != "api" || !tool.Disabled {
		t.Fatalf("tool: listed %d, disabled %+v, shown %+v", len(tools), disabled, tool)
	}
	in.cliJSON(in.admin, &tool, "tool", "enable", "api", "--reason", "fixed")
	if tool.Disabled {
		t.Fatalf("tool enable: %+v", tool)
	}
	if _, err := in.cliStdin(in.admin, "s3cret-value\n", "secret", "set", "api-key"); err != nil {
		t.Fatal(err)
	}
	out, err := in.cli(in.admin, "secret", "list", "--json")
	if err != nil || !strings.Contains(out, `"api-key"`) || strings.Contains(out, "s3cret-value") {
		t.Fatalf("secret list: %v\n%s", err, out)
	}
	if _, err := in.cli(in.admin, "secret", "delete", "api-key"); err != nil {
		t.Fatal(err)
	}

	var budget warden.Budget
	in.cliJSON(in.admin, &budget, "budget", "set", "bot", "--tool", "api", "rate", "20/hour")
	var budgets []apitype.BudgetStatus
	in.cliJSON(in.admin, &budgets, "budget", "show", "bot")
	if budget.ID == "" || len(budgets) != 1 || budgets[0].Budget == nil || budgets[0].ID != budget.ID {
		t.Fatalf("budget: set %+v, shown %+v", budget, budgets)
	}
	if _, err := in.cli(in.admin, "budget", "delete", budget.ID); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	writeFile(t, dir, "p.cedar", `@id("list") permit(principal == Agent::"bot", action == Action::"api:get", resource);`)
	for range 2 {
		if _, err := in.cli(in.admin, "policy", "apply", dir, "--comment", "typed client"); err != nil {
			t.Fatal(err)
		}
	}
	var history []*warden.PolicySet
	in.cliJSON(in.admin, &history, "policy", "history")
	first := history[len(history)-1].Version
	var shown, back warden.PolicySet
	in.cliJSON(in.admin, &shown, "policy", "show", fmt.Sprint(first))
	in.cliJSON(in.admin, &back, "policy", "rollback", fmt.Sprint(first), "--reason", "back")
	if len(history) < 2 || shown.Version != first || back.Version <= history[0].Version {
		t.Fatalf("policy: history %d, shown %d, rolled back to %d", len(history), shown.Version, back.Version)
	}

	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("a skill")))
	var q warden.Quarantine
	in.cliJSON(in.admin, &q, "quarantine", digest, "--reason", "malicious skill")
	if q.Digest != digest {
		t.Fatalf("quarantine: %+v", q)
	}

	// The server's refusal comes back as its code and message, and the matching exit code.
	_, err = in.cli(in.admin, "tool", "show", "nope")
	if cli.ExitCode(err) != cli.ExitNotFound {
		t.Fatalf("tool show nope: exit %d, %v", cli.ExitCode(err), err)
	}
	if _, err := in.cli(in.admin, "agent", "delete", "bot"); err != nil {
		t.Fatal(err)
	}
	// The policies in force name the tool: removing it conflicts, and nothing changes.
	_, err = in.cli(in.admin, "tool", "remove", "api")
	if cli.ExitCode(err) != cli.ExitConflict || !strings.Contains(cli.ErrorLine(err), `unknown action Action::"api:get"`) {
		t.Fatalf("tool remove of a tool the policies name: exit %d, %q", cli.ExitCode(err), cli.ErrorLine(err))
	}
	in.cliJSON(in.admin, &tool, "tool", "show", "api")
}
