package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyRefusesSupplyChain holds that warden apply never carries trust roots: a document with
// supply_chain: is refused before any server is asked, saying where publishers belong.
func TestApplyRefusesSupplyChain(t *testing.T) {
	file := filepath.Join(t.TempDir(), "warden.yaml")
	doc := "agents: []\nsupply_chain:\n  publishers:\n    - {name: mallory, sigstore: {issuer: 'https://i', subject: '.*'}}\n"
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	asked := false
	env := Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		asked = asked || k == "WARDEN_ADDR"
		return map[string]string{"WARDEN_ADDR": "http://127.0.0.1:1", "WARDEN_TOKEN": "wadm_x"}[k]
	}}
	err := Run(context.Background(), []string{"apply", "-f", file}, env)
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "supply_chain (trusted publishers, the Sigstore trusted root) is server configuration") {
		t.Fatalf("apply with supply_chain = %v (exit %d); want a usage error saying where it belongs", err, ExitCode(err))
	}
	if asked {
		t.Fatal("the server was asked about a document that is refused")
	}
}
