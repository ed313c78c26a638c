package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSupplyChain(t *testing.T) {
	const key = "RWThnT+NMXLk/GxNdvV3O/6WjOU/QN6Q7DVBznVsX0LBHluJAFNCnnyd"
	cases := []struct {
		name, yaml, err string
	}{
		{"none", "", ""},
		{"one", "supply_chain:\n  publishers:\n    - {name: acme, minisign: " + key + "}\n", ""},
		{"with the comment line", "supply_chain:\n  publishers:\n    - name: acme\n      minisign: |\n        untrusted comment: minisign public key E1F48C4D3918D3E1\n        " + key + "\n", ""},
		{"unknown key", "supply_chain:\n  publisher: []\n", `unknown key "publisher"`},
		{"unknown publisher key", "supply_chain:\n  publishers:\n    - {name: acme, ed25519: " + key + "}\n", `unknown key "ed25519"`},
		{"not a key", "supply_chain:\n  publishers:\n    - {name: acme, minisign: hello}\n", "supply_chain.publishers[0]"},
		{"no name", "supply_chain:\n  publishers:\n    - {minisign: " + key + "}\n", "supply_chain.publishers[0]"},
		{"twice", "supply_chain:\n  publishers:\n    - {name: acme, minisign: " + key + "}\n    - {name: other, minisign: " + key + "}\n", "listed twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLoad(t, tc.yaml, tc.err) })
	}
}

func TestSupplyChainSigstore(t *testing.T) {
	const key = "RWThnT+NMXLk/GxNdvV3O/6WjOU/QN6Q7DVBznVsX0LBHluJAFNCnnyd"
	root, err := filepath.Abs("../supply/testdata/sigstore/skill-trusted-root.json")
	if err != nil {
		t.Fatal(err)
	}
	notRoot := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(notRoot, []byte(`{"mediaType":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, []byte(strings.Repeat(" ", 1<<20+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := func(name, issuer, subject string) string {
		return "    - name: " + name + "\n      sigstore: {issuer: '" + issuer + "', subject: '" + subject + "'}\n"
	}
	withRoot := func(path string, pubs ...string) string {
		return "supply_chain:\n  sigstore_trusted_root: " + path + "\n  publishers:\n" + strings.Join(pubs, "")
	}
	cases := []struct {
		name, yaml, err string
	}{
		{"root alone", "supply_chain:\n  sigstore_trusted_root: " + root + "\n", ""},
		{"sigstore and minisign publishers", withRoot(root, sig("acme", "https://issuer.example.com", `publisher@example\.com`), "    - {name: other, minisign: "+key+"}\n"), ""},
		{"sigstore publisher without a root", "supply_chain:\n  publishers:\n" + sig("acme", "https://issuer.example.com", ".*"), "set supply_chain.sigstore_trusted_root"},
		{"both kinds in one publisher", withRoot(root, "    - name: acme\n      minisign: "+key+"\n      sigstore: {issuer: 'https://i', subject: '.*'}\n"), "exactly one of minisign and sigstore"},
		{"neither", withRoot(root, "    - name: acme\n"), "exactly one of minisign and sigstore"},
		{"unknown sigstore key", withRoot(root, "    - name: acme\n      sigstore: {issuer: 'https://i', san: '.*'}\n"), `unknown key "san"`},
		{"no issuer", withRoot(root, sig("acme", "", ".*")), "sigstore.issuer"},
		{"no subject", withRoot(root, sig("acme", "https://i", "")), "sigstore.subject"},
		{"bad subject", withRoot(root, sig("acme", "https://i", "a(")), "not a regular expression"},
		{"same name twice", withRoot(root, sig("acme", "https://i", ".*"), "    - {name: acme, minisign: "+key+"}\n"), "listed twice"},
		{"missing root file", withRoot(filepath.Join(t.TempDir(), "none.json"), sig("acme", "https://i", ".*")), "no such file"},
		{"not a trusted root", withRoot(notRoot, sig("acme", "https://i", ".*")), "not a Sigstore trusted root"},
		{"root too large", withRoot(big, sig("acme", "https://i", ".*")), "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLoad(t, tc.yaml, tc.err) })
	}

	c := Default()
	if err := c.Parse("warden.yaml", []byte(withRoot(root, sig("acme", "https://issuer.example.com", `publisher@example\.com`)))); err != nil {
		t.Fatal(err)
	}
	if s, err := c.SupplyChain.Sigstore(); err != nil || s == nil {
		t.Fatalf("Sigstore() = %v, %v", s, err)
	}
	if pubs, err := c.SupplyChain.Trusted(); err != nil || len(pubs) != 0 {
		t.Fatalf("Trusted() = %v, %v; want no minisign publisher", pubs, err)
	}
	if s, err := Default().SupplyChain.Sigstore(); s != nil || err != nil {
		t.Fatalf("Sigstore() without a root = %v, %v; want nil", s, err)
	}
}
