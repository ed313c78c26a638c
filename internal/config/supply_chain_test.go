package config

import "testing"

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
