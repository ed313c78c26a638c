package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/config"
)

// TestREADMEConfiguration: the configuration file the README shows parses and validates, so
// the example a new user copies is one warden accepts (fails when a key in it is misspelt or a
// section it shows does not exist).
func TestREADMEConfiguration(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for block := range strings.SplitSeq(string(b), "```yaml\n") {
		body, _, _ := strings.Cut(block, "```")
		if strings.HasPrefix(body, "listen:") {
			doc = body
		}
	}
	if doc == "" {
		t.Fatal("the README shows no configuration file (a yaml block starting with listen:)")
	}
	for _, section := range []string{"people:", "oauth:", "flow:", "audit:", "approvals:", "telemetry:"} {
		if !strings.Contains(doc, "\n"+section) {
			t.Errorf("the README's configuration leaves out %s", section)
		}
	}
	cfg := config.Default()
	if err := cfg.Parse("README.md", []byte(doc)); err != nil {
		t.Fatalf("the README's configuration: %v", err)
	}
	// The Sigstore trusted root is a file on the reader's machine, not in this repository:
	// validate the rest without the publishers that need it.
	cfg.SupplyChain.SigstoreTrustedRoot = ""
	var kept []config.Publisher
	for _, p := range cfg.SupplyChain.Publishers {
		if p.Sigstore == nil {
			kept = append(kept, p)
		}
	}
	cfg.SupplyChain.Publishers = kept
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the README's configuration: %v", err)
	}
	if cfg.People.OIDC == nil || cfg.People.OIDC.Roles["warden-approvers"] != "approver" {
		t.Fatalf("people.oidc as the README shows it: %+v", cfg.People.OIDC)
	}
}
