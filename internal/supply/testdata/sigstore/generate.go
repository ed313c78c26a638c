//go:build ignore

// Command generate writes the offline Sigstore fixtures of internal/supply's tests: a trusted
// root of a throwaway Sigstore (sigstore-go's VirtualSigstore acting as Fulcio, Rekor and a
// timestamp authority) and bundles it issued over the digest string of the skill in ./skill.
// The bundles stay verifiable after the run: a verifier judges the certificate and the log by
// the times the log and the timestamp authority recorded, which lie inside the validity
// periods the trusted root names. Every run makes new keys, so commit its outputs together.
// sigstore-go's pkg/testing/ca needs modules warden's go.mod does not (Rekor's, the timestamp
// authority's), so run it from this folder against a scratch copy of go.mod, leaving the
// module's own untouched:
//
//	cp ../../../../go.mod /tmp/gen.mod && cp ../../../../go.sum /tmp/gen.sum
//	go get -modfile=/tmp/gen.mod github.com/sigstore/sigstore-go/pkg/testing/ca@v1.3.0
//	go run -modfile=/tmp/gen.mod generate.go
//
// It writes:
//
//	skill-trusted-root.json   the trusted root (Fulcio CA, Rekor key, TSA chain; no CT log)
//	skill-trusted-root-ctlog.json the same with a CT log, whose SCT the bundles' certificates
//	                          lack
//	skill-bundle.json         a message signature by SAN publisher@example.com, issuer
//	                          https://issuer.example.com, over the skill's digest string
//	skill-bundle-dsse.json    the same identity's DSSE in-toto statement whose subject has the
//	                          SHA-256 of the digest string
//	npm-attestations-virtual.json an npm attestations body for @acme/tool@1.0.0 (tarball: the
//	                          bytes "the tarball of @acme/tool@1.0.0"): a SLSA provenance by
//	                          the build identity npmBuilder, and a "publish attestation"
//	                          forged with a Fulcio certificate instead of the registry's key
//	skill-bundle-other-ca.json the same identity and digest from another VirtualSigstore,
//	                          whose CA the trusted root does not name
package main

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"github.com/wardenhq/warden/internal/skill"
	"github.com/wardenhq/warden/internal/supply"
)

const (
	identity = "publisher@example.com"
	issuer   = "https://issuer.example.com"

	npmName    = "@acme/tool"
	npmVersion = "1.0.0"
	npmIssuer  = "https://token.actions.githubusercontent.com"
	npmBuilder = "https://github.com/acme/tool/.github/workflows/release.yml@refs/tags/v1.0.0"
	npmForger  = "https://github.com/mallory/tool/.github/workflows/publish.yml@refs/heads/main"
)

func main() {
	t, err := skill.ReadDir("skill", skill.DefaultLimits)
	if err != nil {
		log.Fatal(err)
	}
	digest := t.Digest()

	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		log.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil,
		vs.TimestampingAuthorities(), rekorLogs(vs))
	if err != nil {
		log.Fatal(err)
	}
	trJSON, err := tr.MarshalJSON()
	if err != nil {
		log.Fatal(err)
	}
	write("skill-trusted-root.json", indent(trJSON))
	withCT, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(),
		vs.TimestampingAuthorities(), rekorLogs(vs))
	if err != nil {
		log.Fatal(err)
	}
	if trJSON, err = withCT.MarshalJSON(); err != nil {
		log.Fatal(err)
	}
	write("skill-trusted-root-ctlog.json", indent(trJSON))
	write("skill-bundle.json", sign(vs, digest))
	sum := sha256.Sum256(supply.SignedMessage(digest))
	write("skill-bundle-dsse.json", dsseBundle(vs, identity, issuer, map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "skill", "digest": map[string]string{"sha256": hex.EncodeToString(sum[:])}}},
		"predicateType": "https://example.com/skill-release/v1",
		"predicate":     map[string]any{},
	}))

	npm, err := json.Marshal(map[string]any{"attestations": []any{
		map[string]any{"predicateType": supply.PredicateNPMPublish, "bundle": json.RawMessage(attest(vs, npmForger, supply.PredicateNPMPublish))},
		map[string]any{"predicateType": supply.PredicateSLSAProvenanceV1, "bundle": json.RawMessage(attest(vs, npmBuilder, supply.PredicateSLSAProvenanceV1))},
	}})
	if err != nil {
		log.Fatal(err)
	}
	write("npm-attestations-virtual.json", indent(npm))
	fmt.Printf("npm %s@%s sha512 %s\n", npmName, npmVersion, base64.StdEncoding.EncodeToString(npmTarballSHA512()))

	other, err := ca.NewVirtualSigstore()
	if err != nil {
		log.Fatal(err)
	}
	write("skill-bundle-other-ca.json", sign(other, digest))
	fmt.Println("signed", digest)
}

// sign has vs sign the digest string and returns the bundle.
func sign(vs *ca.VirtualSigstore, digest string) []byte {
	e, err := vs.Sign(identity, issuer, supply.SignedMessage(digest))
	if err != nil {
		log.Fatal(err)
	}
	return toBundle(vs, e, "hashedrekord", "0.0.1")
}

// attest has vs sign an in-toto statement of predicateType about an npm package version in a
// DSSE envelope, as a build (or, for the forged publish attestation, anyone with a Fulcio
// certificate) would.
func attest(vs *ca.VirtualSigstore, san, predicateType string) []byte {
	return dsseBundle(vs, san, npmIssuer, map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": supply.PackageURL(npmName, npmVersion), "digest": map[string]string{"sha512": hex.EncodeToString(npmTarballSHA512())}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{"buildDefinition": map[string]any{"buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"}},
	})
}

// dsseBundle has vs sign an in-toto statement in a DSSE envelope for san of oidcIssuer.
func dsseBundle(vs *ca.VirtualSigstore, san, oidcIssuer string, st map[string]any) []byte {
	body, err := json.Marshal(st)
	if err != nil {
		log.Fatal(err)
	}
	e, err := vs.AttestAtTime(san, oidcIssuer, body, time.Now().Add(5*time.Minute), true)
	if err != nil {
		log.Fatal(err)
	}
	return toBundle(vs, e, "dsse", "0.0.1")
}

// npmTarballSHA512 is the SHA-512 of the made-up tarball the npm fixture's statements name.
func npmTarballSHA512() []byte {
	sum := sha512.Sum512([]byte("the tarball of " + npmName + "@" + npmVersion))
	return sum[:]
}

// toBundle writes a VirtualSigstore entity as a v0.3 bundle: the leaf certificate, the message
// signature or DSSE envelope, the Rekor entry (of kind/version) with its inclusion promise and
// proof, an RFC 3161 timestamp.
func toBundle(vs *ca.VirtualSigstore, e *ca.TestEntity, kind, version string) []byte {
	vc, err := e.VerificationContent()
	if err != nil {
		log.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		log.Fatal(err)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		log.Fatal(err)
	}
	timestamps, err := e.Timestamps()
	if err != nil {
		log.Fatal(err)
	}
	var tles []*protorekor.TransparencyLogEntry
	for _, entry := range entries {
		tles = append(tles, logEntry(vs, entry, kind, version))
	}
	var rfc3161 []*protocommon.RFC3161SignedTimestamp
	for _, ts := range timestamps {
		rfc3161 = append(rfc3161, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{
				Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw},
			},
			TlogEntries:               tles,
			TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: rfc3161},
		},
	}
	if ms := sc.MessageSignatureContent(); ms != nil {
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: ms.Digest()},
			Signature:     ms.Signature(),
		}}
	} else {
		env := sc.(*bundle.Envelope).RawEnvelope()
		payload, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			log.Fatal(err)
		}
		var sigs []*protodsse.Signature
		for _, s := range env.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				log.Fatal(err)
			}
			sigs = append(sigs, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType, Signatures: sigs}}
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		log.Fatal(err)
	}
	out, err := b.MarshalJSON()
	if err != nil {
		log.Fatal(err)
	}
	return indent(out)
}

// logEntry completes the Rekor entry VirtualSigstore made with what a bundle carries: its kind,
// its inclusion promise (a signed entry timestamp by the virtual Rekor's key) and an inclusion
// proof with a signed checkpoint.
func logEntry(vs *ca.VirtualSigstore, entry *tlog.Entry, kind, version string) *protorekor.TransparencyLogEntry {
	tle := entry.TransparencyLogEntry()
	set, err := vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime,
		LogIndex:       tle.LogIndex,
		LogID:          hex.EncodeToString(tle.LogId.KeyId),
	})
	if err != nil {
		log.Fatal(err)
	}
	proof, err := vs.GetInclusionProof(tle.CanonicalizedBody)
	if err != nil {
		log.Fatal(err)
	}
	var hashes [][]byte
	for _, h := range proof.Hashes {
		b, err := hex.DecodeString(h)
		if err != nil {
			log.Fatal(err)
		}
		hashes = append(hashes, b)
	}
	rootHash, err := hex.DecodeString(*proof.RootHash)
	if err != nil {
		log.Fatal(err)
	}
	tle.KindVersion = &protorekor.KindVersion{Kind: kind, Version: version}
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.InclusionProof = &protorekor.InclusionProof{
		LogIndex: *proof.LogIndex, RootHash: rootHash, TreeSize: *proof.TreeSize, Hashes: hashes,
		Checkpoint: &protorekor.Checkpoint{Envelope: *proof.Checkpoint},
	}
	return tle
}

// rekorLogs is the virtual Rekor as a trusted root names it. VirtualSigstore keeps its log id
// as the bytes of the id's hex string; a trusted root holds the id itself (the SHA-256 of the
// log's key), which is what a log entry names.
func rekorLogs(vs *ca.VirtualSigstore) map[string]*root.TransparencyLog {
	out := map[string]*root.TransparencyLog{}
	for id, tl := range vs.RekorLogs() {
		raw, err := hex.DecodeString(id)
		if err != nil {
			log.Fatal(err)
		}
		tl.ID = raw
		out[id] = tl
	}
	return out
}

func indent(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		log.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	return append(out, '\n')
}

func write(name string, b []byte) {
	if err := os.WriteFile(name, b, 0o644); err != nil {
		log.Fatal(err)
	}
}
