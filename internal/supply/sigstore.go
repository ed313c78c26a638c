package supply

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/wardenhq/warden"
)

// Size limits of what Sigstore verification reads. A trusted root is a few kilobytes (the
// public-good one about 7 KB), a bundle a few (an npm provenance bundle about 11 KB), and an
// npm attestations body holds two bundles.
const (
	MaxTrustedRoot  = 1 << 20
	MaxBundle       = 256 << 10
	MaxAttestations = 1 << 20
	// MaxAttestationCount bounds the attestations of one npm package version.
	MaxAttestationCount = 8
	// maxSubjectPattern bounds a publisher's SAN pattern.
	maxSubjectPattern = 1024
)

// The predicate types of the npm registry's attestations.
const (
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	PredicateNPMPublish        = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
)

// SigstoreIdentity is a trusted Sigstore publisher: whoever holds a Fulcio certificate from
// Issuer (the OIDC issuer, compared exactly) for a subject alternative name that Subject (a
// regular expression, anchored at both ends) matches.
type SigstoreIdentity struct {
	Name, Issuer, Subject string
}

type sigstoreID struct {
	name string
	id   verify.CertificateIdentity
}

// Sigstore verifies Sigstore bundles against one trusted root (Fulcio CAs, Rekor logs, CT logs,
// timestamp authorities) with github.com/sigstore/sigstore-go. Every bundle must carry a
// transparency-log entry that verifies against the root's Rekor keys (its integrated time,
// or a signed timestamp, dates the signature), and its certificate must carry an SCT from one
// of the root's CT logs when the root names any. A *Sigstore is safe for concurrent use; a nil
// one must not be called: callers check and refuse.
type Sigstore struct {
	ids []sigstoreID
	// fulcio verifies bundles signed with a Fulcio certificate; npm verifies the npm
	// registry's publish attestations, signed with the registry's own key.
	fulcio, npm *verify.Verifier
}

// NewSigstore parses a trusted root (the JSON of a Sigstore trusted_root.json) and the trusted
// identities.
func NewSigstore(trustedRootJSON []byte, ids []SigstoreIdentity) (*Sigstore, error) {
	if len(trustedRootJSON) > MaxTrustedRoot {
		return nil, warden.Errorf(warden.EInvalid, "the Sigstore trusted root is larger than %d bytes", MaxTrustedRoot)
	}
	tr, err := root.NewTrustedRootFromJSON(trustedRootJSON)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "not a Sigstore trusted root: %v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 || len(tr.RekorLogs()) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "the Sigstore trusted root names no Fulcio certificate authority or no Rekor log: no bundle could verify against it")
	}
	s := &Sigstore{}
	names := map[string]bool{}
	same := map[[2]string]string{} // issuer and subject pattern → publisher
	for _, id := range ids {
		if err := warden.ValidateName("publisher", id.Name); err != nil {
			return nil, err
		}
		if names[id.Name] {
			return nil, warden.Errorf(warden.EInvalid, "publisher %s is listed twice", id.Name)
		}
		names[id.Name] = true
		// A bundle names one publisher, as a minisign key id does: two with one identity would
		// leave the signer recorded to the order of the list.
		if other, ok := same[[2]string{id.Issuer, id.Subject}]; ok {
			return nil, warden.Errorf(warden.EInvalid, "publishers %s and %s are one Sigstore identity (issuer %s, subject %s)", other, id.Name, id.Issuer, id.Subject)
		}
		same[[2]string{id.Issuer, id.Subject}] = id.Name
		ci, err := newIdentity(id)
		if err != nil {
			return nil, err
		}
		s.ids = append(s.ids, sigstoreID{name: id.Name, id: ci})
	}
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	if len(tr.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	if s.fulcio, err = verify.NewVerifier(tr, opts...); err != nil {
		return nil, fmt.Errorf("sigstore verifier: %w", err)
	}
	keys, err := npmRegistryKeys()
	if err != nil {
		return nil, err
	}
	if s.npm, err = verify.NewVerifier(root.TrustedMaterialCollection{tr, keys},
		verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)); err != nil {
		return nil, fmt.Errorf("sigstore verifier: %w", err)
	}
	return s, nil
}

func newIdentity(id SigstoreIdentity) (verify.CertificateIdentity, error) {
	issuer := strings.TrimSpace(id.Issuer)
	if issuer == "" || issuer != id.Issuer || len(issuer) > 512 {
		return verify.CertificateIdentity{}, warden.Errorf(warden.EInvalid, "publisher %s: sigstore.issuer must be the OIDC issuer's URL, e.g. https://token.actions.githubusercontent.com", id.Name)
	}
	if id.Subject == "" || len(id.Subject) > maxSubjectPattern {
		return verify.CertificateIdentity{}, warden.Errorf(warden.EInvalid, "publisher %s: sigstore.subject must be a regular expression of at most %d bytes over the certificate's subject alternative name", id.Name, maxSubjectPattern)
	}
	// Anchored, so that a pattern for one repository cannot match a look-alike one that
	// merely contains it.
	pattern := "^(?:" + id.Subject + ")$"
	if _, err := regexp.Compile(pattern); err != nil {
		return verify.CertificateIdentity{}, warden.Errorf(warden.EInvalid, "publisher %s: sigstore.subject is not a regular expression: %v", id.Name, err)
	}
	ci, err := verify.NewShortCertificateIdentity(issuer, "", "", pattern)
	if err != nil {
		return verify.CertificateIdentity{}, warden.Errorf(warden.EInvalid, "publisher %s: %v", id.Name, err)
	}
	return ci, nil
}

// match returns the name of the first trusted identity the certificate matches, "" for none.
func (s *Sigstore) match(cert certificate.Summary) string {
	for _, id := range s.ids {
		if id.id.Verify(cert) == nil {
			return id.name
		}
	}
	return ""
}

// IsBundle reports whether a signature file is a Sigstore bundle rather than a minisign
// signature: JSON whose mediaType is a Sigstore bundle's.
func IsBundle(sig []byte) bool {
	sig = bytes.TrimSpace(sig)
	if len(sig) == 0 || sig[0] != '{' {
		return false
	}
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if json.Unmarshal(sig, &head) != nil {
		return false
	}
	return strings.HasPrefix(head.MediaType, "application/vnd.dev.sigstore.bundle")
}

func parseBundle(data []byte) (*bundle.Bundle, error) {
	if len(data) > MaxBundle {
		return nil, warden.Errorf(warden.EInvalid, "the Sigstore bundle is larger than %d bytes", MaxBundle)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil { // protojson: unknown fields are errors
		return nil, warden.Errorf(warden.EInvalid, "not a Sigstore bundle: %v", err)
	}
	return &b, nil
}

// VerifyBundle verifies a Sigstore bundle over an artifact's digest string (SignedMessage:
// "sha256:<hex>") and returns the signer as "NAME (sigstore SAN)". The bundle is either a
// message signature over those bytes (cosign sign-blob --bundle) or a DSSE in-toto statement
// whose subject has their SHA-256. It must verify against the trusted root (certificate chain
// to a Fulcio CA, transparency-log entry, SCT when the root names CT logs) and its certificate
// must match a trusted identity; anything else is refused.
func (s *Sigstore) VerifyBundle(data []byte, digest string) (string, error) {
	b, err := parseBundle(data)
	if err != nil {
		return "", err
	}
	res, err := s.fulcio.Verify(b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(SignedMessage(digest))), verify.WithoutIdentitiesUnsafe()))
	if err != nil {
		return "", warden.Errorf(warden.EForbidden, "the Sigstore bundle does not verify over %s against the trusted root: %v", digest, err)
	}
	cert := res.Signature.Certificate
	if cert == nil { // sigstore-go verified a key, not a certificate: no identity to trust
		return "", warden.Errorf(warden.EForbidden, "the Sigstore bundle is signed with a key, not a Fulcio certificate: it names no identity to trust")
	}
	name := s.match(*cert)
	if name == "" {
		return "", warden.Errorf(warden.EForbidden, "the Sigstore bundle is signed by %s (issuer %s), which is not a trusted publisher's identity (supply_chain.publishers)", cert.SubjectAlternativeName, cert.Extensions.Issuer)
	}
	return fmt.Sprintf("%s (sigstore %s)", name, cert.SubjectAlternativeName), nil
}

// Provenance is what an npm package version's attestations say about where it was built.
type Provenance struct {
	// Summary names the builder's identity: the certificate's SAN and OIDC issuer, the source
	// repository and ref (and commit) from its Fulcio extensions, and whether the registry's
	// publish attestation verified too.
	Summary string
	// Publisher is the trusted Sigstore publisher the builder's certificate matched; "" when
	// it matched none (the provenance verified, but nobody warden trusts vouches for it).
	Publisher string
}

type attestationsBody struct {
	Attestations []struct {
		PredicateType string          `json:"predicateType"`
		Bundle        json.RawMessage `json:"bundle"`
	} `json:"attestations"`
}

// PackageURL is the in-toto subject name of an npm package version: pkg:npm/NAME@VERSION with a
// scope's "@" escaped, as npm writes it (pkg:npm/%40scope/name@1.2.3).
func PackageURL(name, version string) string {
	if rest, ok := strings.CutPrefix(name, "@"); ok {
		name = "%40" + rest
	}
	return "pkg:npm/" + name + "@" + version
}

// VerifyNPMProvenance verifies an npm package version's attestations: the body of the
// registry's GET /-/npm/v1/attestations/NAME@VERSION. Its SLSA provenance attestation is
// required and must verify against the trusted root (a Fulcio certificate of the build, a
// transparency-log entry); the registry's publish attestation, when present, must verify with
// the npm registry's key. Each statement's subject must be PackageURL(name, version) with the
// tarball's SHA-512 (the bytes dist.integrity names). Attestations of other predicate types are
// not verified and named in the summary.
func (s *Sigstore) VerifyNPMProvenance(attestations []byte, name, version string, sha512 []byte) (Provenance, error) {
	if len(sha512) != 64 {
		return Provenance{}, warden.Errorf(warden.EInvalid, "the tarball's digest must be 64 bytes of SHA-512, not %d", len(sha512))
	}
	if name == "" || version == "" {
		return Provenance{}, warden.Errorf(warden.EInvalid, "an npm package name and version are required")
	}
	body, err := parseAttestations(attestations)
	if err != nil {
		return Provenance{}, err
	}
	var prov, publish json.RawMessage
	var provType string
	var others []string
	for _, a := range body.Attestations {
		switch a.PredicateType {
		case PredicateSLSAProvenanceV02, PredicateSLSAProvenanceV1:
			if prov != nil {
				return Provenance{}, warden.Errorf(warden.EInvalid, "npm attestations: more than one SLSA provenance attestation")
			}
			prov, provType = a.Bundle, a.PredicateType
		case PredicateNPMPublish:
			if publish != nil {
				return Provenance{}, warden.Errorf(warden.EInvalid, "npm attestations: more than one publish attestation")
			}
			publish = a.Bundle
		default:
			others = append(others, a.PredicateType)
		}
	}
	if prov == nil {
		return Provenance{}, warden.Errorf(warden.EForbidden, "npm attestations of %s@%s hold no SLSA provenance attestation", name, version)
	}
	purl := PackageURL(name, version)
	res, err := s.verifyStatement(s.fulcio, prov, provType, purl, sha512, verify.WithoutIdentitiesUnsafe())
	if err != nil {
		return Provenance{}, fmt.Errorf("npm provenance of %s@%s: %w", name, version, err)
	}
	cert := res.Signature.Certificate
	if cert == nil {
		return Provenance{}, warden.Errorf(warden.EForbidden, "npm provenance of %s@%s is signed with a key, not a build's Fulcio certificate", name, version)
	}
	p := Provenance{Publisher: s.match(*cert), Summary: builderSummary(*cert)}
	if publish != nil {
		if _, err := s.verifyStatement(s.npm, publish, PredicateNPMPublish, purl, sha512, verify.WithKey()); err != nil {
			return Provenance{}, fmt.Errorf("npm publish attestation of %s@%s: %w", name, version, err)
		}
		p.Summary += "; npm publish attestation verified"
	}
	if len(others) > 0 {
		p.Summary += fmt.Sprintf("; %d attestation(s) of other types not verified", len(others))
	}
	return p, nil
}

func parseAttestations(data []byte) (*attestationsBody, error) {
	if len(data) > MaxAttestations {
		return nil, warden.Errorf(warden.EInvalid, "the npm attestations are larger than %d bytes", MaxAttestations)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var body attestationsBody
	if err := dec.Decode(&body); err != nil {
		return nil, warden.Errorf(warden.EInvalid, "npm attestations: not the registry's attestations JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, warden.Errorf(warden.EInvalid, "npm attestations: data after the JSON value")
	}
	if len(body.Attestations) > MaxAttestationCount {
		return nil, warden.Errorf(warden.EInvalid, "npm attestations: more than %d attestations", MaxAttestationCount)
	}
	for i, a := range body.Attestations {
		if a.PredicateType == "" || len(a.Bundle) == 0 {
			return nil, warden.Errorf(warden.EInvalid, "npm attestations[%d]: predicateType and bundle are required", i)
		}
	}
	return &body, nil
}

// verifyStatement verifies a DSSE bundle of an in-toto statement of predicateType over the
// tarball's SHA-512, and checks that the statement names the package.
func (s *Sigstore) verifyStatement(v *verify.Verifier, data json.RawMessage, predicateType, purl string, sha512 []byte, id verify.PolicyOption) (*verify.VerificationResult, error) {
	b, err := parseBundle(data)
	if err != nil {
		return nil, err
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha512", sha512), id))
	if err != nil {
		return nil, warden.Errorf(warden.EForbidden, "does not verify over the tarball's sha512 against the trusted root: %v", err)
	}
	st := res.Statement
	if st == nil { // a message signature: no statement names the package
		return nil, warden.Errorf(warden.EForbidden, "not an in-toto statement")
	}
	if st.GetPredicateType() != predicateType {
		return nil, warden.Errorf(warden.EForbidden, "the statement's predicate type is %q, not the %q it was listed as", st.GetPredicateType(), predicateType)
	}
	want := hex.EncodeToString(sha512)
	for _, sub := range st.GetSubject() {
		if sub.GetName() == purl && strings.EqualFold(sub.GetDigest()["sha512"], want) {
			return res, nil
		}
	}
	return nil, warden.Errorf(warden.EForbidden, "the statement's subject is not %s with the tarball's sha512", purl)
}

// builderSummary names a build's certificate in one line.
func builderSummary(c certificate.Summary) string {
	e := c.Extensions
	repo, ref, commit := e.SourceRepositoryURI, e.SourceRepositoryRef, e.SourceRepositoryDigest
	if repo == "" && e.GithubWorkflowRepository != "" { // certificates before Fulcio's v2 extensions
		repo = "https://github.com/" + e.GithubWorkflowRepository
	}
	if ref == "" {
		ref = e.GithubWorkflowRef
	}
	if commit == "" {
		commit = e.GithubWorkflowSHA
	}
	out := fmt.Sprintf("built by %s (issuer %s)", c.SubjectAlternativeName, e.Issuer)
	if repo != "" {
		out += " from " + repo
		if ref != "" {
			out += "@" + ref
		}
		if commit != "" {
			out += " (commit " + commit + ")"
		}
	}
	return out
}

// npmKey is a key the npm registry signs its publish attestations with, as its
// /-/npm/v1/keys lists them (and corepack's and sigstore-js's copies agree).
type npmKey struct {
	id, key string
	expires time.Time // zero: none
}

var npmKeys = []npmKey{
	{"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
		"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Olb3zMAFFxXKHiIkQO5cJ3Yhl5i6UPp+IhuteBJbuHcA5UogKo0EWtlWwW6KSaKoTNEYL7JlCQiVnkhBktUgg==",
		time.Date(2025, 1, 29, 0, 0, 0, 0, time.UTC)},
	{"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
		"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEY6Ya7W++7aUPzvMTrezH6Ycx3c+HOKYCcNGybJZSCJq/fd7Qa8uuAKtdIkUQtQiEKERhAmE5lMMJhP8OkDOa2g==",
		time.Time{}},
}

// npmRegistryKeys is the npm registry's keys as sigstore-go trusted material: a key is valid
// for attestations the transparency log recorded before it expired.
func npmRegistryKeys() (root.TrustedMaterial, error) {
	m := map[string]*root.ExpiringKey{}
	for _, k := range npmKeys {
		der, err := base64.StdEncoding.DecodeString(k.key)
		if err != nil {
			return nil, fmt.Errorf("npm registry key %s: %w", k.id, err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, fmt.Errorf("npm registry key %s: %w", k.id, err)
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("npm registry key %s: %w", k.id, err)
		}
		m[k.id] = root.NewExpiringKey(v, time.Time{}, k.expires)
	}
	return root.NewTrustedPublicKeyMaterialFromMapping(m), nil
}
