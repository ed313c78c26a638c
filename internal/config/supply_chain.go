package config

import (
	"fmt"

	"github.com/wardenhq/warden/internal/supply"
)

// SupplyChain says whose artifacts warden trusts.
type SupplyChain struct {
	// Publishers sign skills: a skill signed by one of their keys is accepted without
	// --allow-unsigned.
	Publishers []Publisher `yaml:"publishers"`
}

// Publisher is a trusted publisher and its Ed25519 key in minisign's format.
type Publisher struct {
	Name string `yaml:"name"`
	// Minisign is the public key: the base64 line of a minisign .pub file (the comment line
	// before it may be included).
	Minisign string `yaml:"minisign"`
}

func (s SupplyChain) validate() error {
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
