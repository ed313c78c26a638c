package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/supply"
)

// SupplyChain says whose artifacts warden trusts.
type SupplyChain struct {
	// Publishers sign skills: a skill signed by one of their keys, or by a Sigstore identity of
	// theirs, is accepted without --allow-unsigned.
	Publishers []Publisher `yaml:"publishers"`
	// SigstoreTrustedRoot is the path of a Sigstore trusted root (trusted_root.json: Fulcio CAs,
	// Rekor logs, CT logs, timestamp authorities) that Sigstore bundles and npm provenance are
	// verified against. Empty: no Sigstore verification (bundles are refused, and so is an npm package
	// that has a provenance attestation).
	SigstoreTrustedRoot string `yaml:"sigstore_trusted_root"`
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

// Publisher is a trusted publisher: exactly one of an Ed25519 key in minisign's format and a
// Sigstore identity.
type Publisher struct {
	Name string `yaml:"name"`
	// Minisign is the public key: the base64 line of a minisign .pub file (the comment line
	// before it may be included).
	Minisign string `yaml:"minisign"`
	// Sigstore is the identity a Fulcio certificate must name.
	Sigstore *SigstorePublisher `yaml:"sigstore"`
}

// SigstorePublisher is a Sigstore identity: the OIDC issuer (exact) and a regular expression
// over the certificate's subject alternative name (anchored at both ends).
type SigstorePublisher struct {
	Issuer  string `yaml:"issuer"`
	Subject string `yaml:"subject"`
}

func (s SupplyChain) validate() error {
	if err := s.validateRegistry(); err != nil {
		return err
	}
	if _, err := s.Trusted(); err != nil {
		return err
	}
	_, err := s.Sigstore()
	return err
}

// Trusted parses the minisign publishers' keys. Names and key ids must each be unique, so that
// a signature names one publisher; each publisher has exactly one of minisign and sigstore.
func (s SupplyChain) Trusted() ([]supply.Publisher, error) {
	var out []supply.Publisher
	names, ids := map[string]bool{}, map[uint64]bool{}
	for i, p := range s.Publishers {
		if (p.Minisign == "") == (p.Sigstore == nil) {
			return nil, fmt.Errorf("supply_chain.publishers[%d] (%s): set exactly one of minisign and sigstore", i, p.Name)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("supply_chain.publishers[%d]: publisher %s is listed twice", i, p.Name)
		}
		names[p.Name] = true
		if p.Sigstore != nil {
			continue
		}
		pub, err := supply.ParsePublisher(p.Name, p.Minisign)
		if err != nil {
			return nil, fmt.Errorf("supply_chain.publishers[%d]: %w", i, err)
		}
		if ids[pub.Key.ID()] {
			return nil, fmt.Errorf("supply_chain.publishers[%d]: publisher %s or its key is listed twice", i, p.Name)
		}
		ids[pub.Key.ID()] = true
		out = append(out, pub)
	}
	return out, nil
}

// Sigstore reads the trusted root and builds the verifier of the Sigstore publishers; nil
// without a trusted root. Sigstore publishers need one.
func (s SupplyChain) Sigstore() (*supply.Sigstore, error) {
	var ids []supply.SigstoreIdentity
	for _, p := range s.Publishers {
		if p.Sigstore != nil {
			ids = append(ids, supply.SigstoreIdentity{Name: p.Name, Issuer: p.Sigstore.Issuer, Subject: p.Sigstore.Subject})
		}
	}
	if s.SigstoreTrustedRoot == "" {
		if len(ids) > 0 {
			return nil, fmt.Errorf("supply_chain: publisher %s is a Sigstore identity: set supply_chain.sigstore_trusted_root to the Sigstore trusted root file (trusted_root.json) its bundles verify against", ids[0].Name)
		}
		return nil, nil
	}
	data, err := warden.ReadFileLimited(s.SigstoreTrustedRoot, supply.MaxTrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("supply_chain.sigstore_trusted_root: %w", err)
	}
	v, err := supply.NewSigstore(data, ids)
	if err != nil {
		return nil, fmt.Errorf("supply_chain.sigstore_trusted_root %s: %w", s.SigstoreTrustedRoot, err)
	}
	return v, nil
}
