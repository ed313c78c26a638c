package npmpkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/supply"
)

// DefaultRegistry is the public npm registry.
const DefaultRegistry = "https://registry.npmjs.org"

// Limits bound what warden reads from a registry.
type Limits struct {
	Metadata     int64         // a version's metadata document
	Tarball      int64         // the package tarball, compressed
	Attestations int64         // the attestations document
	Unpacked     int64         // the tarball's files, uncompressed
	Files        int           // entries of the tarball
	Timeout      time.Duration // each request, body included
}

// DefaultLimits are the limits of a zero Registry.Limits.
var DefaultLimits = Limits{Metadata: 4 << 20, Tarball: 64 << 20, Attestations: 4 << 20, Unpacked: 256 << 20, Files: 20000, Timeout: 2 * time.Minute}

// ProvenanceVerifier verifies an npm provenance attestations document; *supply.Sigstore is one.
type ProvenanceVerifier interface {
	VerifyNPMProvenance(attestations []byte, name, version string, sha512 []byte) (supply.Provenance, error)
}

// Registry reads packages from an npm registry.
type Registry struct {
	// URL is the registry's base URL (supply_chain.npm_registry); "" is DefaultRegistry.
	URL string
	// Provenance verifies attestations; nil: no Sigstore trusted root is configured, and a
	// package that has attestations is refused.
	Provenance ProvenanceVerifier
	// Client makes the requests; nil: a client that follows no redirect.
	Client *http.Client
	Limits Limits // zero: DefaultLimits
}

func (r *Registry) base() (*url.URL, error) {
	s := r.URL
	if s == "" {
		s = DefaultRegistry
	}
	u, err := url.Parse(strings.TrimSuffix(s, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("npm registry %q is not an http(s) URL", s)
	}
	return u, nil
}

func (r *Registry) limits() Limits {
	if r.Limits == (Limits{}) {
		return DefaultLimits
	}
	return r.Limits
}

func (r *Registry) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Request is a package to pin.
type Request struct {
	Name, Version string
	Bin           string // "" the default bin
	// AllowUnsigned accepts a package without a provenance attestation from a trusted
	// publisher; Reason (required with it) is recorded in Provenance.
	AllowUnsigned bool
	Reason        string
}

// Pinned is a verified package: what the tool records, and the tarball it was made from.
type Pinned struct {
	Package *warden.ToolPackage
	Tarball []byte
}

// versionDoc is the part of a version's metadata warden reads.
type versionDoc struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Dist    struct {
		Tarball      string          `json:"tarball"`
		Integrity    string          `json:"integrity"`
		Attestations json.RawMessage `json:"attestations"`
	} `json:"dist"`
}

// Pin resolves req's exact version, downloads its tarball, checks it against dist.integrity,
// verifies its provenance, and finds the bin it runs. Nothing is kept: the caller keeps the
// result (Installer.Keep) once it has recorded the tool.
func (r *Registry) Pin(ctx context.Context, req Request) (*Pinned, error) {
	if err := ValidateName(req.Name); err != nil {
		return nil, err
	}
	if err := ValidateVersion(req.Version); err != nil {
		return nil, err
	}
	if req.Bin != "" {
		if err := ValidateBin(req.Bin); err != nil {
			return nil, err
		}
	}
	id := req.Name + "@" + req.Version
	doc, err := r.metadata(ctx, req.Name, req.Version)
	if err != nil {
		return nil, err
	}
	tarball, err := r.fetch(ctx, doc.Dist.Tarball, r.limits().Tarball, "the tarball of "+id)
	if err != nil {
		return nil, err
	}
	sum512 := sha512.Sum512(tarball)
	if err := CheckIntegrity(doc.Dist.Integrity, sum512[:]); err != nil {
		return nil, warden.Errorf(warden.EForbidden, "%s: %s; nothing was installed", id, warden.ErrorMessage(err))
	}
	pkg := &warden.ToolPackage{Source: warden.PackageNPM, Digest: Digest(tarball), Name: req.Name, Version: req.Version, Integrity: doc.Dist.Integrity}
	bin, entry, err := readTarball(tarball, req.Name, req.Version, req.Bin, r.limits())
	if err != nil {
		return nil, err
	}
	pkg.Bin = bin
	pkg.Files = []warden.PackageFile{{Path: EntryPath(pkg.Digest, req.Name, entry.Path), Digest: entry.Digest}}
	if pkg.Provenance, err = r.provenance(ctx, req, doc, sum512[:]); err != nil {
		return nil, err
	}
	return &Pinned{Package: pkg, Tarball: tarball}, nil
}

// provenance verifies the version's attestations when it has some, and says what they proved;
// a package no trusted publisher vouches for passes only with AllowUnsigned and a reason.
func (r *Registry) provenance(ctx context.Context, req Request, doc *versionDoc, sum512 []byte) (string, error) {
	id := req.Name + "@" + req.Version
	why := "it has no provenance attestation"
	if len(doc.Dist.Attestations) > 0 && string(doc.Dist.Attestations) != "null" {
		if r.Provenance == nil {
			return "", warden.Errorf(warden.EForbidden, "%s has a provenance attestation and warden cannot verify it: configure supply_chain.sigstore_trusted_root", id)
		}
		base, err := r.base()
		if err != nil {
			return "", err
		}
		att, err := r.fetch(ctx, base.String()+"/-/npm/v1/attestations/"+id, r.limits().Attestations, "the attestations of "+id)
		if err != nil {
			return "", err
		}
		p, err := r.Provenance.VerifyNPMProvenance(att, req.Name, req.Version, sum512)
		if err != nil {
			return "", warden.Errorf(warden.EForbidden, "the provenance attestation of %s does not verify: %s; nothing was installed", id, warden.ErrorMessage(err))
		}
		if p.Publisher != "" {
			return fmt.Sprintf("verified: %s (trusted publisher %s)", p.Summary, p.Publisher), nil
		}
		why = "its provenance (" + p.Summary + ") names no trusted publisher"
	}
	if !req.AllowUnsigned {
		return "", warden.Errorf(warden.EForbidden, "%s is unsigned: %s (supply_chain.publishers); as an admin, accept it with --allow-unsigned --reason TEXT", id, why)
	}
	return "unsigned: " + why + "; allowed: " + req.Reason, nil
}

// metadata fetches and checks one version's metadata: it must name the version asked for, with
// a tarball on the registry's own host and an integrity.
func (r *Registry) metadata(ctx context.Context, name, version string) (*versionDoc, error) {
	base, err := r.base()
	if err != nil {
		return nil, err
	}
	id := name + "@" + version
	body, err := r.fetch(ctx, base.String()+"/"+name+"/"+version, r.limits().Metadata, "the metadata of "+id)
	if err != nil {
		return nil, err
	}
	var doc versionDoc
	if err := decodeOne(body, &doc); err != nil {
		return nil, warden.Errorf(warden.EUnavailable, "the registry's metadata of %s is not a JSON object: %v", id, err)
	}
	if doc.Name != name || doc.Version != version {
		return nil, warden.Errorf(warden.EUnavailable, "the registry answered %s@%s for %s", quote(doc.Name), quote(doc.Version), id)
	}
	t, err := url.Parse(doc.Dist.Tarball)
	if err != nil || t.Scheme != base.Scheme || t.Host != base.Host || t.User != nil {
		return nil, warden.Errorf(warden.EUnavailable, "the tarball of %s is not on the registry's host %s: %s", id, base.Host, quote(doc.Dist.Tarball))
	}
	if doc.Dist.Integrity == "" {
		return nil, warden.Errorf(warden.EForbidden, "the registry gives no dist.integrity for %s: its tarball cannot be checked", id)
	}
	return &doc, nil
}

// decodeOne decodes exactly one JSON value.
func decodeOne(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// fetch GETs a URL and reads at most limit bytes of a 200 answer.
func (r *Registry) fetch(ctx context.Context, u string, limit int64, what string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.limits().Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "%s: bad URL", what)
	}
	req.Header.Set("Accept", "application/json, application/octet-stream")
	resp, err := r.client().Do(req)
	if err != nil {
		return nil, warden.Errorf(warden.EUnavailable, "fetching %s from the npm registry failed: %v", what, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, warden.Errorf(warden.ENotFound, "the npm registry has no %s (404)", strings.TrimPrefix(what, "the "))
	case resp.StatusCode != http.StatusOK:
		return nil, warden.Errorf(warden.EUnavailable, "fetching %s: the npm registry answered %s", what, resp.Status)
	case resp.ContentLength > limit:
		return nil, warden.Errorf(warden.EInvalid, "%s is larger than warden's limit of %d bytes", what, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, warden.Errorf(warden.EUnavailable, "reading %s: %v", what, err)
	}
	if int64(len(body)) > limit {
		return nil, warden.Errorf(warden.EInvalid, "%s is larger than warden's limit of %d bytes", what, limit)
	}
	return body, nil
}

// CheckIntegrity checks a Subresource Integrity string (dist.integrity) against a tarball's
// SHA-512: one of its sha512 hashes must match. Weaker algorithms are ignored, and an integrity
// without sha512 is refused: sha1 (the old dist.shasum) does not hold against a forger.
func CheckIntegrity(integrity string, sum512 []byte) error {
	seen := false
	for _, tok := range strings.Fields(integrity) {
		alg, val, ok := strings.Cut(tok, "-")
		if !ok || alg != "sha512" {
			continue
		}
		val, _, _ = strings.Cut(val, "?")
		want, err := base64.StdEncoding.Strict().DecodeString(val)
		if err != nil || len(want) != sha512.Size {
			return warden.Errorf(warden.EInvalid, "dist.integrity %s is not a valid sha512 hash", quote(tok))
		}
		seen = true
		if bytes.Equal(want, sum512) {
			return nil
		}
	}
	if !seen {
		return warden.Errorf(warden.EInvalid, "dist.integrity %s has no sha512 hash", quote(integrity))
	}
	return warden.Errorf(warden.EForbidden, "the tarball does not match the registry's dist.integrity (its sha512 is %s)", "sha512-"+base64.StdEncoding.EncodeToString(sum512))
}

// Digest is a tarball's identity as a quarantine names it: "sha256:" over its bytes.
func Digest(tarball []byte) string {
	sum := sha256.Sum256(tarball)
	return "sha256:" + hex.EncodeToString(sum[:])
}
