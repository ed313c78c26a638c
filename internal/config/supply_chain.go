package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wardenhq/warden/internal/supply"
)

// SupplyChain says whose artifacts warden trusts.
type SupplyChain struct {
	// Publishers sign skills: a skill signed by one of their keys is accepted without
	// --allow-unsigned.
	Publishers []Publisher `yaml:"publishers"`
	// NPMRegistry is where `tool add --npm` resolves packages (and their installs their
	// dependencies); "" is https://registry.npmjs.org.
	NPMRegistry string `yaml:"npm_registry"`
}

// DefaultNPMRegistry is the registry of a config that names none.
const DefaultNPMRegistry = "https://registry.npmjs.org"

// Registry is the npm registry in force, without a trailing slash.
func (s SupplyChain) Registry() string {
	if s.NPMRegistry == "" {
		return DefaultNPMRegistry
	}
	return strings.TrimSuffix(s.NPMRegistry, "/")
}

func (s SupplyChain) validateRegistry() error {
	if s.NPMRegistry == "" {
		return nil
	}
	u, err := url.Parse(s.NPMRegistry)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("supply_chain.npm_registry: give an http(s) URL without credentials, query or fragment")
	}
	return nil
}

// Publisher is a trusted publisher and its Ed25519 key in minisign's format.
type Publisher struct {
	Name string `yaml:"name"`
	// Minisign is the public key: the base64 line of a minisign .pub file (the comment line
	// before it may be included).
	Minisign string `yaml:"minisign"`
}

func (s SupplyChain) validate() error {
	if err := s.validateRegistry(); err != nil {
		return err
	}
	_, err := s.Trusted()
	return err
}

// Trusted parses the publishers' keys. Names and key ids must each be unique, so that a
// signature names one publisher.
func (s SupplyChain) Trusted() ([]supply.Publisher, error) {
	var out []supply.Publisher
	names, ids := map[string]bool{}, map[uint64]bool{}
	for i, p := range s.Publishers {
		pub, err := supply.ParsePublisher(p.Name, p.Minisign)
		if err != nil {
			return nil, fmt.Errorf("supply_chain.publishers[%d]: %w", i, err)
		}
		if names[p.Name] || ids[pub.Key.ID()] {
			return nil, fmt.Errorf("supply_chain.publishers[%d]: publisher %s or its key is listed twice", i, p.Name)
		}
		names[p.Name], ids[pub.Key.ID()] = true, true
		out = append(out, pub)
	}
	return out, nil
}
