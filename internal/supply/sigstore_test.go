package supply

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/skill"
)

// The fixtures (testdata/sigstore): skill-* were written by generate.go with a throwaway
// Sigstore; npm-attestations-sigstore-1.3.0.json is the npm registry's attestations of the real
// package sigstore@1.3.0 (its two bundles as sigstore-go v1.3.0's examples keep them), checked
// against the real Sigstore public-good trusted root.
const (
	fixtureIssuer  = "https://issuer.example.com"
	fixtureSubject = "publisher@example.com"
	// sigstore@1.3.0's dist.integrity, sha512-dhdv…
	npmIntegrity = "dhdv+jOAi1RgLHw13lxumk3rlgZtumUz9QrCNPTx9MazUnUV3BfAb74oYAMPQQ7uaeogB5vTosbz3POzKbEHUQ=="
	// the builder of sigstore@1.3.0, as its Fulcio certificate names it
	npmBuilder = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
	ghIssuer   = "https://token.actions.githubusercontent.com"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sigstore", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureDigest is the digest string the skill bundles sign.
func fixtureDigest(t testing.TB) string {
	t.Helper()
	tree, err := skill.ReadDir(filepath.Join("testdata", "sigstore", "skill"), skill.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return tree.Digest()
}

func newSigstore(t testing.TB, root string, ids ...SigstoreIdentity) *Sigstore {
	t.Helper()
	s, err := NewSigstore(fixture(t, root), ids)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// edit decodes a JSON document, lets f change it and encodes it again.
func edit(t testing.TB, doc []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipBase64 changes one bit of a base64 field's decoded bytes.
func flipBase64(t testing.TB, s any) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s.(string))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

func obj(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

// TestVerifyBundle holds what a Sigstore bundle over a skill's digest must be to name a
// publisher: signed over exactly that digest, by a certificate from the trusted root's CA with
// the trusted issuer and a SAN the publisher's anchored pattern matches, recorded in the
// trusted transparency log.
func TestVerifyBundle(t *testing.T) {
	digest := fixtureDigest(t)
	bundle := fixture(t, "skill-bundle.json")
	acme := SigstoreIdentity{Name: "acme", Issuer: fixtureIssuer, Subject: `publisher@example\.com`}
	cases := []struct {
		name   string
		ids    []SigstoreIdentity
		bundle []byte
		digest string
		code   string // "" accepted
		says   string
	}{
		{"trusted identity", []SigstoreIdentity{acme}, bundle, digest, "", ""},
		{"DSSE statement over the digest", []SigstoreIdentity{acme}, fixture(t, "skill-bundle-dsse.json"), digest, "", ""},
		{"DSSE statement, digest differs", []SigstoreIdentity{acme}, fixture(t, "skill-bundle-dsse.json"), "sha256:" + strings.Repeat("0", 64), warden.EForbidden, "does not verify"},
		{"second of two identities", []SigstoreIdentity{{Name: "other", Issuer: fixtureIssuer, Subject: `someone@example\.com`}, acme}, bundle, digest, "", ""},
		{"identity not trusted", []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer, Subject: `someone@example\.com`}}, bundle, digest, warden.EForbidden, "not a trusted publisher's identity"},
		{"pattern matches only part of the SAN", []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer, Subject: `publisher@example`}}, bundle, digest, warden.EForbidden, "not a trusted publisher's identity"},
		{"issuer differs", []SigstoreIdentity{{Name: "acme", Issuer: "https://accounts.example.com", Subject: `publisher@example\.com`}}, bundle, digest, warden.EForbidden, "not a trusted publisher's identity"},
		{"no identities", nil, bundle, digest, warden.EForbidden, "not a trusted publisher's identity"},
		{"digest differs", []SigstoreIdentity{acme}, bundle, "sha256:" + strings.Repeat("0", 64), warden.EForbidden, "does not verify"},
		{"digest with a newline", []SigstoreIdentity{acme}, bundle, digest + "\n", warden.EForbidden, "does not verify"},
		{"another Sigstore's bundle", []SigstoreIdentity{acme}, fixture(t, "skill-bundle-other-ca.json"), digest, warden.EForbidden, "does not verify"},
		{"signature changed", []SigstoreIdentity{acme}, edit(t, bundle, func(m map[string]any) {
			ms := obj(m, "messageSignature").(map[string]any)
			ms["signature"] = flipBase64(t, ms["signature"])
		}), digest, warden.EForbidden, "does not verify"},
		{"no transparency-log entry", []SigstoreIdentity{acme}, edit(t, bundle, func(m map[string]any) {
			delete(obj(m, "verificationMaterial").(map[string]any), "tlogEntries")
		}), digest, warden.EForbidden, "transparency log"},
		{"unknown field", []SigstoreIdentity{acme}, edit(t, bundle, func(m map[string]any) { m["extra"] = 1 }), digest, warden.EInvalid, "not a Sigstore bundle"},
		{"not JSON", []SigstoreIdentity{acme}, []byte("untrusted comment: x"), digest, warden.EInvalid, "not a Sigstore bundle"},
		{"too large", []SigstoreIdentity{acme}, append(bytes.Repeat([]byte(" "), MaxBundle), bundle...), digest, warden.EInvalid, "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSigstore(t, "skill-trusted-root.json", c.ids...)
			signer, err := s.VerifyBundle(c.bundle, c.digest)
			if c.code == "" {
				if err != nil || signer != "acme (sigstore "+fixtureSubject+")" {
					t.Fatalf("VerifyBundle = %q, %v; want acme", signer, err)
				}
				return
			}
			if warden.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("VerifyBundle = %q, %v; want %s saying %q", signer, err, c.code, c.says)
			}
		})
	}
	t.Run("no SCT from the root's CT log", func(t *testing.T) {
		s := newSigstore(t, "skill-trusted-root-ctlog.json", acme)
		if _, err := s.VerifyBundle(bundle, digest); warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "certificate timestamp") {
			t.Fatalf("a certificate without an SCT, under a root that names a CT log = %v; want refused", err)
		}
	})
	t.Run("against the public-good root", func(t *testing.T) {
		s := newSigstore(t, "trusted-root-public-good.json", acme)
		if _, err := s.VerifyBundle(bundle, digest); warden.ErrorCode(err) != warden.EForbidden {
			t.Fatalf("a bundle of a Sigstore the root does not name = %v; want refused", err)
		}
	})
}

func TestNewSigstore(t *testing.T) {
	root := fixture(t, "skill-trusted-root.json")
	ok := SigstoreIdentity{Name: "acme", Issuer: fixtureIssuer, Subject: `.*`}
	cases := []struct {
		name string
		root []byte
		ids  []SigstoreIdentity
		says string
	}{
		{"not JSON", []byte("{"), nil, "not a Sigstore trusted root"},
		{"not a trusted root", []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), nil, "no Fulcio"},
		{"too large", append(root, bytes.Repeat([]byte(" "), MaxTrustedRoot)...), nil, "larger than"},
		{"bad name", root, []SigstoreIdentity{{Name: "Acme Corp", Issuer: fixtureIssuer, Subject: ".*"}}, "publisher"},
		{"twice", root, []SigstoreIdentity{ok, ok}, "listed twice"},
		{"one identity under two names", root, []SigstoreIdentity{ok, {Name: "acme-too", Issuer: fixtureIssuer, Subject: `.*`}}, "one Sigstore identity"},
		{"no issuer", root, []SigstoreIdentity{{Name: "acme", Subject: ".*"}}, "sigstore.issuer"},
		{"issuer with space", root, []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer + " ", Subject: ".*"}}, "sigstore.issuer"},
		{"no subject", root, []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer}}, "sigstore.subject"},
		{"subject not a regexp", root, []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer, Subject: "a(b"}}, "not a regular expression"},
		{"subject too long", root, []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer, Subject: strings.Repeat("a", maxSubjectPattern+1)}}, "sigstore.subject"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSigstore(c.root, c.ids)
			if warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("NewSigstore = %v; want invalid saying %q", err, c.says)
			}
		})
	}
	if _, err := NewSigstore(root, []SigstoreIdentity{ok}); err != nil {
		t.Fatal(err)
	}
}

func TestIsBundle(t *testing.T) {
	for sig, want := range map[string]bool{
		string(fixture(t, "skill-bundle.json")):                                true,
		`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1"}`: true,
		"untrusted comment: signature from minisign secret key\nRWQ…":          false,
		`{"mediaType":"application/json"}`:                                     false,
		`{"mediaType":`:                                                        false,
		"":                                                                     false,
	} {
		if got := IsBundle([]byte(sig)); got != want {
			t.Errorf("IsBundle(%.40q) = %v, want %v", sig, got, want)
		}
	}
}

func TestPackageURL(t *testing.T) {
	for _, c := range [][3]string{{"sigstore", "1.3.0", "pkg:npm/sigstore@1.3.0"}, {"@sigstore/verify", "2.0.0", "pkg:npm/%40sigstore/verify@2.0.0"}} {
		if got := PackageURL(c[0], c[1]); got != c[2] {
			t.Errorf("PackageURL(%s, %s) = %s, want %s", c[0], c[1], got, c[2])
		}
	}
}

func npmSHA512(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(npmIntegrity)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyNPMProvenance verifies the real attestations of sigstore@1.3.0 offline against the
// public-good trusted root, and refuses them for another tarball, another package or version,
// and when a bundle was changed.
func TestVerifyNPMProvenance(t *testing.T) {
	att := fixture(t, "npm-attestations-sigstore-1.3.0.json")
	sum := npmSHA512(t)
	t.Run("verified, no trusted publisher", func(t *testing.T) {
		s := newSigstore(t, "trusted-root-public-good.json")
		p, err := s.VerifyNPMProvenance(att, "sigstore", "1.3.0", sum)
		if err != nil {
			t.Fatal(err)
		}
		want := "built by " + npmBuilder + " (issuer " + ghIssuer + ") from https://github.com/sigstore/sigstore-js@refs/heads/main (commit dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1); npm publish attestation verified"
		if p.Publisher != "" || p.Summary != want {
			t.Fatalf("VerifyNPMProvenance = %+v; want summary %q and no publisher", p, want)
		}
	})
	t.Run("trusted publisher", func(t *testing.T) {
		s := newSigstore(t, "trusted-root-public-good.json",
			SigstoreIdentity{Name: "elsewhere", Issuer: ghIssuer, Subject: `https://github\.com/acme/.*`},
			SigstoreIdentity{Name: "sigstore-js", Issuer: ghIssuer, Subject: `https://github\.com/sigstore/sigstore-js/\.github/workflows/release\.yml@refs/heads/main`})
		p, err := s.VerifyNPMProvenance(att, "sigstore", "1.3.0", sum)
		if err != nil || p.Publisher != "sigstore-js" {
			t.Fatalf("VerifyNPMProvenance = %+v, %v; want publisher sigstore-js", p, err)
		}
	})
	t.Run("publisher of another issuer", func(t *testing.T) {
		s := newSigstore(t, "trusted-root-public-good.json",
			SigstoreIdentity{Name: "sigstore-js", Issuer: "https://gitlab.com", Subject: `https://github\.com/sigstore/sigstore-js/.*`})
		p, err := s.VerifyNPMProvenance(att, "sigstore", "1.3.0", sum)
		if err != nil || p.Publisher != "" {
			t.Fatalf("VerifyNPMProvenance = %+v, %v; want verified with no publisher", p, err)
		}
	})

	otherSum := bytes.Clone(sum)
	otherSum[0] ^= 1
	provOnly := edit(t, att, func(m map[string]any) { m["attestations"] = obj(m, "attestations").([]any)[1:] })
	cases := []struct {
		name, pkg, version string
		att, sha512        []byte
		code, says         string
	}{
		{"provenance alone", "sigstore", "1.3.0", provOnly, sum, "", ""},
		{"wrong digest", "sigstore", "1.3.0", att, otherSum, warden.EForbidden, "does not verify over the tarball's sha512"},
		{"wrong name", "sigstore-js", "1.3.0", att, sum, warden.EForbidden, "subject is not pkg:npm/sigstore-js@1.3.0"},
		{"wrong scope", "@evil/sigstore", "1.3.0", att, sum, warden.EForbidden, "subject is not pkg:npm/%40evil/sigstore@1.3.0"},
		{"wrong version", "sigstore", "1.3.1", att, sum, warden.EForbidden, "subject is not"},
		{"provenance tampered", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			sig := obj(m, "attestations", 1, "bundle", "dsseEnvelope", "signatures", 0).(map[string]any)
			sig["sig"] = flipBase64(t, sig["sig"])
		}), sum, warden.EForbidden, "npm provenance of sigstore@1.3.0"},
		{"provenance payload changed", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			env := obj(m, "attestations", 1, "bundle", "dsseEnvelope").(map[string]any)
			env["payload"] = flipBase64(t, env["payload"])
		}), sum, warden.EForbidden, "npm provenance"},
		{"publish attestation tampered", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			sig := obj(m, "attestations", 0, "bundle", "dsseEnvelope", "signatures", 0).(map[string]any)
			sig["sig"] = flipBase64(t, sig["sig"])
		}), sum, warden.EForbidden, "npm publish attestation"},
		{"provenance listed as another predicate type", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			obj(m, "attestations", 1).(map[string]any)["predicateType"] = PredicateSLSAProvenanceV1
		}), sum, warden.EForbidden, "predicate type"},
		{"provenance listed as the publish attestation", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			as := obj(m, "attestations").([]any)
			as[0] = map[string]any{"predicateType": PredicateNPMPublish, "bundle": obj(as[1], "bundle")}
		}), sum, warden.EForbidden, "npm publish attestation"},
		{"no provenance", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) { m["attestations"] = obj(m, "attestations").([]any)[:1] }), sum, warden.EForbidden, "no SLSA provenance"},
		{"two provenances", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) {
			as := obj(m, "attestations").([]any)
			m["attestations"] = append(as, as[1])
		}), sum, warden.EInvalid, "more than one SLSA provenance"},
		{"unknown field", "sigstore", "1.3.0", edit(t, att, func(m map[string]any) { m["more"] = true }), sum, warden.EInvalid, "unknown field"},
		{"trailing data", "sigstore", "1.3.0", append(bytes.Clone(att), "{}"...), sum, warden.EInvalid, "after the JSON"},
		{"no bundle", "sigstore", "1.3.0", []byte(`{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1"}]}`), sum, warden.EInvalid, "required"},
		{"too many", "sigstore", "1.3.0", []byte(`{"attestations":[` + strings.Repeat(`{"predicateType":"x","bundle":{}},`, MaxAttestationCount) + `{"predicateType":"x","bundle":{}}]}`), sum, warden.EInvalid, "more than 8"},
		{"too large", "sigstore", "1.3.0", append(bytes.Repeat([]byte(" "), MaxAttestations), att...), sum, warden.EInvalid, "larger than"},
		{"short digest", "sigstore", "1.3.0", att, sum[:32], warden.EInvalid, "64 bytes"},
	}
	s := newSigstore(t, "trusted-root-public-good.json")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := s.VerifyNPMProvenance(c.att, c.pkg, c.version, c.sha512)
			if c.code == "" {
				if err != nil || !strings.HasPrefix(p.Summary, "built by "+npmBuilder) {
					t.Fatalf("VerifyNPMProvenance = %+v, %v; want verified", p, err)
				}
				return
			}
			if warden.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("VerifyNPMProvenance = %+v, %v; want %s saying %q", p, err, c.code, c.says)
			}
		})
	}
	t.Run("against another trusted root", func(t *testing.T) {
		s := newSigstore(t, "skill-trusted-root.json")
		if _, err := s.VerifyNPMProvenance(att, "sigstore", "1.3.0", sum); warden.ErrorCode(err) != warden.EForbidden {
			t.Fatalf("npm provenance against a root that does not name its CA = %v; want refused", err)
		}
	})
	t.Run("other attestation types are named", func(t *testing.T) {
		more := edit(t, att, func(m map[string]any) {
			as := obj(m, "attestations").([]any)
			m["attestations"] = append(as, map[string]any{"predicateType": "https://example.com/other", "bundle": map[string]any{}})
		})
		p, err := s.VerifyNPMProvenance(more, "sigstore", "1.3.0", sum)
		if err != nil || !strings.HasSuffix(p.Summary, "; 1 attestation(s) of other types not verified") {
			t.Fatalf("VerifyNPMProvenance = %+v, %v", p, err)
		}
	})
}

// TestVerifyNPMProvenanceGenerated uses the npm attestations generate.go made for the scoped
// package @acme/tool@1.0.0: a provenance names its trusted publisher, and a "publish
// attestation" signed with a Fulcio certificate, not the npm registry's key, is refused.
func TestVerifyNPMProvenanceGenerated(t *testing.T) {
	att := fixture(t, "npm-attestations-virtual.json")
	sum, err := base64.StdEncoding.DecodeString("O1/oernwi3uc5fE2EGohCPDmMWewVrIstvJlXrFZM28g1RZ4tLX/BWOb5O1DLCCCcWJXXUSkzwpfYUUasncvyA==")
	if err != nil {
		t.Fatal(err)
	}
	s := newSigstore(t, "skill-trusted-root.json",
		SigstoreIdentity{Name: "acme-tool", Issuer: ghIssuer, Subject: `https://github\.com/acme/tool/\.github/workflows/release\.yml@refs/tags/v.*`})
	provOnly := edit(t, att, func(m map[string]any) { m["attestations"] = obj(m, "attestations").([]any)[1:] })
	p, err := s.VerifyNPMProvenance(provOnly, "@acme/tool", "1.0.0", sum)
	want := "built by https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.0.0 (issuer " + ghIssuer + ")"
	if err != nil || p.Publisher != "acme-tool" || p.Summary != want {
		t.Fatalf("VerifyNPMProvenance = %+v, %v; want publisher acme-tool, summary %q", p, err, want)
	}
	if _, err := s.VerifyNPMProvenance(provOnly, "acme/tool", "1.0.0", sum); warden.ErrorCode(err) != warden.EForbidden {
		t.Fatalf("the provenance of @acme/tool for acme/tool = %v; want refused", err)
	}
	_, err = s.VerifyNPMProvenance(att, "@acme/tool", "1.0.0", sum)
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "npm publish attestation") {
		t.Fatalf("a publish attestation signed with a Fulcio certificate = %v; want refused", err)
	}
}

func FuzzVerifyBundle(f *testing.F) {
	f.Add(fixture(f, "skill-bundle.json"))
	f.Add(fixture(f, "skill-bundle-other-ca.json"))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte("{}"))
	s := newSigstore(f, "skill-trusted-root.json", SigstoreIdentity{Name: "acme", Issuer: fixtureIssuer, Subject: `.*`})
	digest := fixtureDigest(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		signer, err := s.VerifyBundle(b, digest)
		if err == nil && signer != "acme (sigstore "+fixtureSubject+")" {
			t.Fatalf("accepted with signer %q", signer)
		}
		if err != nil && warden.ErrorCode(err) != warden.EInvalid && warden.ErrorCode(err) != warden.EForbidden {
			t.Fatalf("error of kind %s: %v", warden.ErrorCode(err), err)
		}
	})
}

func FuzzVerifyNPMProvenance(f *testing.F) {
	f.Add(fixture(f, "npm-attestations-sigstore-1.3.0.json"))
	f.Add([]byte(`{"attestations":[]}`))
	f.Add([]byte(`{"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","bundle":{}}]}`))
	f.Add([]byte(`{"attestations":[{"predicateType":"https://github.com/npm/attestation/tree/main/specs/publish/v0.1","bundle":{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1"}}]}`))
	s := newSigstore(f, "trusted-root-public-good.json")
	sum := npmSHA512(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := s.VerifyNPMProvenance(b, "sigstore", "1.3.0", sum)
		if err == nil && !strings.HasPrefix(p.Summary, "built by ") {
			t.Fatalf("verified with summary %q", p.Summary)
		}
		if err != nil && warden.ErrorCode(err) != warden.EInvalid && warden.ErrorCode(err) != warden.EForbidden {
			t.Fatalf("error of kind %s: %v", warden.ErrorCode(err), err)
		}
	})
}

func FuzzNewSigstore(f *testing.F) {
	f.Add(fixture(f, "skill-trusted-root.json"), `publisher@example\.com`)
	f.Add(fixture(f, "trusted-root-public-good.json"), `https://github\.com/.*`)
	f.Add([]byte("{}"), "(")
	f.Fuzz(func(t *testing.T, root []byte, subject string) {
		s, err := NewSigstore(root, []SigstoreIdentity{{Name: "acme", Issuer: fixtureIssuer, Subject: subject}})
		if (s == nil) == (err == nil) {
			t.Fatalf("NewSigstore = %v, %v", s, err)
		}
	})
}

func BenchmarkVerifyBundle(b *testing.B) {
	s := newSigstore(b, "skill-trusted-root.json", SigstoreIdentity{Name: "acme", Issuer: fixtureIssuer, Subject: `publisher@example\.com`})
	bundle, digest := fixture(b, "skill-bundle.json"), fixtureDigest(b)
	for b.Loop() {
		if _, err := s.VerifyBundle(bundle, digest); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyNPMProvenance(b *testing.B) {
	s := newSigstore(b, "trusted-root-public-good.json")
	att, sum := fixture(b, "npm-attestations-sigstore-1.3.0.json"), npmSHA512(b)
	for b.Loop() {
		if _, err := s.VerifyNPMProvenance(att, "sigstore", "1.3.0", sum); err != nil {
			b.Fatal(err)
		}
	}
}
