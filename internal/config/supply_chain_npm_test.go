package config

import (
	"strings"
	"testing"
)

func TestSupplyChainNPMRegistry(t *testing.T) {
	cases := []struct {
		name, yaml, err string
	}{
		{"default", "", ""},
		{"a mirror", "supply_chain:\n  npm_registry: https://npm.example.com/\n", ""},
		{"not a URL", "supply_chain:\n  npm_registry: registry.npmjs.org\n", "supply_chain.npm_registry"},
		{"credentials", "supply_chain:\n  npm_registry: https://u:secretpw@npm.example.com\n", "without credentials"},
		{"query", "supply_chain:\n  npm_registry: https://npm.example.com/?x=1\n", "supply_chain.npm_registry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkLoad(t, tc.yaml, tc.err); err != nil && strings.Contains(err.Error(), "secretpw") {
				t.Errorf("the error shows the registry's password: %v", err)
			}
		})
	}
	if got := Default().SupplyChain.Registry(); got != DefaultNPMRegistry {
		t.Errorf("default registry %q", got)
	}
	if got := (SupplyChain{NPMRegistry: "http://127.0.0.1:1/"}).Registry(); got != "http://127.0.0.1:1" {
		t.Errorf("registry %q keeps its slash", got)
	}
}
