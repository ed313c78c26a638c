package npmpkg_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/npmpkg"
	"github.com/wardenhq/warden/internal/npmpkg/npmtest"
	"github.com/wardenhq/warden/internal/supply"
)

// TestPinVerifiesRealProvenance pins the real package sigstore@1.3.0 with its real provenance
// and publish attestations (internal/supply's fixture) through the real Sigstore verifier and
// the public-good trusted root: the tarball comes from the public registry (the test skips
// when it cannot be reached), the metadata and attestations from a registry on 127.0.0.1,
// because the registry reachable here serves no attestations. A trusted publisher's identity
// makes it signed; another identity leaves it unsigned; attestations of another package's
// bytes are refused whatever --allow-unsigned says.
func TestPinVerifiesRealProvenance(t *testing.T) {
	ctx := context.Background()
	tarball := download(t, "https://registry.npmjs.org/sigstore/-/sigstore-1.3.0.tgz")
	fixtures := filepath.Join("..", "supply", "testdata", "sigstore")
	root, err := os.ReadFile(filepath.Join(fixtures, "trusted-root-public-good.json"))
	if err != nil {
		t.Fatal(err)
	}
	att, err := os.ReadFile(filepath.Join(fixtures, "npm-attestations-sigstore-1.3.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "sigstore", "1.3.0", tarball, func(m map[string]any) {
		m["dist"].(map[string]any)["attestations"] = map[string]any{"url": "x", "provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"}}
	})
	reg.Set("/-/npm/v1/attestations/sigstore@1.3.0", att)
	verifier := func(subject string) *supply.Sigstore {
		s, err := supply.NewSigstore(root, []supply.SigstoreIdentity{{Name: "sigstore-js", Issuer: "https://token.actions.githubusercontent.com", Subject: subject}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	req := npmpkg.Request{Name: "sigstore", Version: "1.3.0"}

	trusted := &npmpkg.Registry{URL: reg.URL, Provenance: verifier(`https://github\.com/sigstore/sigstore-js/\.github/workflows/release\.yml@refs/heads/main`)}
	p, err := trusted.Pin(ctx, req)
	if err != nil {
		t.Fatalf("a package built by a trusted publisher: %v", err)
	}
	if !strings.Contains(p.Package.Provenance, "sigstore-js") || !strings.Contains(p.Package.Provenance, "github.com/sigstore/sigstore-js") {
		t.Fatalf("provenance recorded %q, want the builder and the publisher named", p.Package.Provenance)
	}

	other := &npmpkg.Registry{URL: reg.URL, Provenance: verifier(`https://github\.com/acme/.*`)}
	if _, err := other.Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "names no trusted publisher") {
		t.Fatalf("a provenance by an untrusted builder: %v, want refused as unsigned", err)
	}

	// The same attestations served for other bytes (a tarball swapped at the registry).
	swapped := npmtest.NewRegistry(t)
	swapped.Publish(t, "sigstore", "1.3.0", append(tarball[:len(tarball):len(tarball)], 0), func(m map[string]any) {
		m["dist"].(map[string]any)["attestations"] = map[string]any{"url": "x", "provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"}}
	})
	swapped.Set("/-/npm/v1/attestations/sigstore@1.3.0", att)
	_, err = (&npmpkg.Registry{URL: swapped.URL, Provenance: trusted.Provenance}).Pin(ctx, npmpkg.Request{Name: "sigstore", Version: "1.3.0", AllowUnsigned: true, Reason: "x"})
	if warden.ErrorCode(err) != warden.EForbidden {
		t.Fatalf("attestations of other bytes: %v, want refused", err)
	}
}

func download(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("the npm registry cannot be reached: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("the npm registry answered %s for %s", resp.Status, url)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Skipf("reading %s: %v", url, err)
	}
	return b
}
