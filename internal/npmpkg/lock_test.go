package npmpkg_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/npmpkg"
	"github.com/wardenhq/warden/internal/npmpkg/npmtest"
	"github.com/wardenhq/warden/internal/sqlite"
)

// lockWorld is a registry serving left-dep 1.0.0 and @acme/echo 1.0.0, which depends on
// left-dep ^1.0.0, and a SQLite store for the locks.
type lockWorld struct {
	reg    *npmtest.Registry
	r      *npmpkg.Registry
	store  *sqlite.Store
	dbPath string
	rec    *auditRecorder
}

func newLockWorld(t *testing.T) *lockWorld {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed")
	}
	w := &lockWorld{reg: npmtest.NewRegistry(t), rec: &auditRecorder{}}
	w.reg.Publish(t, "left-dep", "1.0.0", npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.0.0")), nil)
	w.reg.Publish(t, "@acme/echo", "1.0.0", npmtest.Tarball(t, npmtest.WithDependency(t, npmtest.EchoPackage("@acme/echo", "1.0.0"), "left-dep", "^1.0.0")), nil)
	w.r = &npmpkg.Registry{URL: w.reg.URL}
	w.dbPath = filepath.Join(t.TempDir(), "warden.db")
	s, err := sqlite.Open(context.Background(), w.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.store = s
	return w
}

// replica is the installer of one replica: its own cache, the shared store.
func (w *lockWorld) replica(t *testing.T) *npmpkg.Installer {
	return &npmpkg.Installer{Cache: t.TempDir(), Registry: w.r, Locks: w.store, Audit: w.rec, Timeout: 2 * time.Minute}
}

func (w *lockWorld) pin(t *testing.T, ws string) (*warden.Tool, error) {
	tool := &warden.Tool{Name: "echo", Kind: warden.ToolMCPCommand}
	p := &npmpkg.Pinner{Registry: w.r, Installer: w.replica(t), Workspaces: ws}
	return tool, p.PinTool(context.Background(), tool, npmpkg.Request{Name: "@acme/echo", Version: "1.0.0", AllowUnsigned: true, Reason: "x"})
}

func installedDep(t *testing.T, ws string, tool *warden.Tool) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ws, "echo", npmpkg.InstallDir, strings.TrimPrefix(tool.Package.Digest, "sha256:"), "node_modules/left-dep/index.js"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPinLocksDependencies: the add records the lock of its install (digest, package count,
// bytes in the store); a replica that installs later, after the registry published a newer
// left-dep that ^1.0.0 takes, installs the locked 1.0.0. A package pinned before locks were
// kept (no LockDigest) resolves its dependencies again and gets the newer one.
func TestPinLocksDependencies(t *testing.T) {
	ctx := context.Background()
	w := newLockWorld(t)
	ws := t.TempDir()
	tool, err := w.pin(t, ws)
	if err != nil {
		t.Fatal(err)
	}
	pkg := tool.Package
	if !warden.ValidDigest(pkg.LockDigest) || pkg.LockPackages != 2 {
		t.Fatalf("package %+v: want a lock digest and 2 packages", pkg)
	}
	lock, err := w.store.PackageLock(ctx, pkg.LockDigest)
	if err != nil || npmpkg.Digest(lock) != pkg.LockDigest || !strings.Contains(string(lock), "left-dep-1.0.0.tgz") {
		t.Fatalf("stored lock %s: %v", lock, err)
	}
	if got := installedDep(t, ws, tool); got != "module.exports = \"1.0.0\";\n" {
		t.Fatalf("the add installed left-dep %q", got)
	}

	w.reg.Publish(t, "left-dep", "1.1.0", npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.1.0")), nil)
	other := t.TempDir()
	if err := w.replica(t).Prepare(ctx, tool, filepath.Join(other, "echo")); err != nil {
		t.Fatal(err)
	}
	if got := installedDep(t, other, tool); got != "module.exports = \"1.0.0\";\n" {
		t.Fatalf("another replica installed left-dep %q, want the locked 1.0.0", got)
	}
	if w.reg.Hits(npmtest.TarballPath("left-dep", "1.1.0")) != 0 {
		t.Fatal("the newer left-dep was fetched")
	}

	legacy := *tool
	lp := *pkg
	lp.LockDigest, lp.LockPackages = "", 0
	legacy.Package = &lp
	third := t.TempDir()
	if err := w.replica(t).Prepare(ctx, &legacy, filepath.Join(third, "echo")); err != nil {
		t.Fatal(err)
	}
	if got := installedDep(t, third, &legacy); got != "module.exports = \"1.1.0\";\n" {
		t.Fatalf("a package without a lock installed left-dep %q, want the newest", got)
	}
}

// TestInstallRefusesTamperedLock: a lock changed in the store (here to take the newer left-dep)
// is refused before npm runs: nothing installed, one package_tampered event however often the
// server restarts.
func TestInstallRefusesTamperedLock(t *testing.T) {
	ctx := context.Background()
	w := newLockWorld(t)
	tool, err := w.pin(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w.reg.Publish(t, "left-dep", "1.1.0", npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.1.0")), nil)
	lock, err := w.store.PackageLock(ctx, tool.Package.LockDigest)
	if err != nil {
		t.Fatal(err)
	}
	newer := npmtest.Integrity(npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.1.0")))
	var doc map[string]any
	if err := json.Unmarshal(lock, &doc); err != nil {
		t.Fatal(err)
	}
	dep := doc["packages"].(map[string]any)["node_modules/left-dep"].(map[string]any)
	dep["version"], dep["resolved"], dep["integrity"] = "1.1.0", w.reg.URL+npmtest.TarballPath("left-dep", "1.1.0"), newer
	tampered, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: w.dbPath, RawQuery: "_busy_timeout=10000"}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE tool_package_locks SET lock = ? WHERE digest = ?`, string(tampered), tool.Package.LockDigest); err != nil {
		t.Fatal(err)
	}
	in := w.replica(t)
	ws := t.TempDir()
	for range 3 {
		err := in.Prepare(ctx, tool, ws)
		if !errors.Is(err, npmpkg.ErrLockTampered) || !strings.Contains(err.Error(), "pinned "+tool.Package.LockDigest) {
			t.Fatalf("a tampered lock: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, npmpkg.InstallDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("something was installed: %v", err)
	}
	evs := w.rec.events()
	if len(evs) != 1 || evs[0].Type != warden.EventToolPackageRefused || evs[0].Decision.Reason != warden.ReasonPackageTampered ||
		!strings.Contains(evs[0].Decision.Message, "dependency lock") {
		t.Fatalf("events %+v", evs)
	}
	// Without the lock in the store, nothing is installed either.
	missing := *tool
	mp := *tool.Package
	mp.LockDigest = "sha256:" + strings.Repeat("0", 64)
	missing.Package = &mp
	if err := in.Prepare(ctx, &missing, t.TempDir()); warden.ErrorCode(errors.Unwrap(err)) != warden.ENotFound {
		t.Fatalf("a lock not in the store: %v", err)
	}
}

// TestPinRefusesForeignDependency: a dependency whose tarball the registry places on another
// host is refused at add: no lock stored, nothing left installed.
func TestPinRefusesForeignDependency(t *testing.T) {
	w := newLockWorld(t)
	elsewhere := npmtest.NewRegistry(t)
	tb := npmtest.Tarball(t, npmtest.LibPackage("left-dep", "1.0.0"))
	elsewhere.Set(npmtest.TarballPath("left-dep", "1.0.0"), tb)
	w.reg.Publish(t, "left-dep", "1.0.0", tb, func(m map[string]any) {
		m["dist"].(map[string]any)["tarball"] = elsewhere.URL + npmtest.TarballPath("left-dep", "1.0.0")
	})
	ws := t.TempDir()
	tool, err := w.pin(t, ws)
	if warden.ErrorCode(err) != warden.EForbidden || !strings.Contains(err.Error(), "outside the registry") || !strings.Contains(err.Error(), elsewhere.URL) {
		t.Fatalf("a dependency from another host: %v", err)
	}
	if elsewhere.Hits(npmtest.TarballPath("left-dep", "1.0.0")) == 0 {
		t.Fatal("npm did not fetch the dependency from the other host: the test proves nothing")
	}
	if tool.Package != nil {
		t.Fatalf("the tool was given a package: %+v", tool.Package)
	}
	var n int
	if err := countLocks(t, w, &n); err != nil || n != 0 {
		t.Fatalf("%d locks stored: %v", n, err)
	}
	entries, _ := filepath.Glob(filepath.Join(ws, "echo", npmpkg.InstallDir, "[0-9a-f]*"))
	if len(entries) != 0 {
		t.Fatalf("left installed: %v", entries)
	}
}

func countLocks(t *testing.T, w *lockWorld, n *int) error {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: w.dbPath, RawQuery: "_busy_timeout=10000"}).String())
	if err != nil {
		return err
	}
	defer db.Close()
	return db.QueryRowContext(t.Context(), `SELECT count(*) FROM tool_package_locks`).Scan(n)
}

// A lock as npm writes it for the echo package with one dependency, for CheckLock's tests.
const lockTemplate = `{
  "name": "warden-npm-install",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {"name": "warden-npm-install", "dependencies": {"@acme/echo": "file:package.tgz"}},
    "node_modules/@acme/echo": {"version": "1.0.0", "resolved": "file:package.tgz", "integrity": "SELF", "dependencies": {"left-dep": "^1.0.0"}},
    "node_modules/left-dep": {"version": "1.0.0", "resolved": "http://127.0.0.1:4873/left-dep/-/left-dep-1.0.0.tgz", "integrity": "DEP"}
  }
}`

func TestCheckLock(t *testing.T) {
	tarball := []byte("the pinned tarball")
	sum := sha512(tarball)
	self := npmtest.Integrity(tarball)
	dep := npmtest.Integrity([]byte("left-dep"))
	pkg := &warden.ToolPackage{Name: "@acme/echo", Version: "1.0.0"}
	reg, _ := url.Parse("http://127.0.0.1:4873")
	mk := func(old, new string) []byte {
		s := strings.NewReplacer("SELF", self, "DEP", dep).Replace(lockTemplate)
		if !strings.Contains(s, old) {
			t.Fatalf("template lacks %q", old)
		}
		return []byte(strings.Replace(s, old, new, 1))
	}
	if n, err := npmpkg.CheckLock(mk("", ""), pkg, sum[:], reg); err != nil || n != 2 {
		t.Fatalf("a good lock: %d %v", n, err)
	}
	bad := map[string][]byte{
		"outside the registry":     mk("http://127.0.0.1:4873/left-dep", "http://127.0.0.2:4873/left-dep"),
		"outside the registry ":    mk("http://127.0.0.1:4873/left-dep", "https://127.0.0.1:4873/left-dep"),
		"outside the registry  ":   mk("http://127.0.0.1:4873/left-dep", "http://u:p@127.0.0.1:4873/left-dep"),
		"outside the registry   ":  mk("http://127.0.0.1:4873/left-dep/-/left-dep-1.0.0.tgz", "git+https://127.0.0.1:4873/x.git"),
		"outside the registry    ": mk("http://127.0.0.1:4873/left-dep/-/left-dep-1.0.0.tgz", "file:../x.tgz"),
		"no integrity":             mk(`, "integrity": "`+dep+`"`, ""),
		"no integrity ":            mk(dep, "sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
		"no integrity  ":           mk(dep, "sha512-AAAA"),
		"not the pinned tarball's": mk(self, dep),
		"not the pinned tarball":   mk(`"resolved": "file:package.tgz"`, `"resolved": "http://127.0.0.1:4873/@acme/echo/-/echo-1.0.0.tgz"`),
		"not the pinned tarball ":  mk(`"version": "1.0.0", "resolved": "file:package.tgz"`, `"version": "1.0.1", "resolved": "file:package.tgz"`),
		"links":                    mk(`"node_modules/left-dep": {`, `"node_modules/left-dep": {"link": true, `),
		"outside node_modules":     mk(`"node_modules/left-dep"`, `"../left-dep"`),
		"exactly the pinned":       mk(`{"@acme/echo": "file:package.tgz"}`, `{"@acme/echo": "file:package.tgz", "x": "1"}`),
		"does not install":         mk(`"node_modules/@acme/echo"`, `"node_modules/@acme/other"`),
		"lockfileVersion 1":        mk(`"lockfileVersion": 3`, `"lockfileVersion": 1`),
		"not valid JSON":           append(mk("", ""), " x"...),
		"not valid JSON ":          []byte(`{"packages": []}`),
	}
	for want, lock := range bad {
		_, err := npmpkg.CheckLock(lock, pkg, sum[:], reg)
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%q: %v", want, err)
		}
	}
	// A dependency bundled inside its parent's tarball has neither: it is covered by the parent.
	bundled := mk(`"node_modules/left-dep": {`, `"node_modules/@acme/echo/node_modules/b": {"version": "1.0.0", "inBundle": true}, "node_modules/left-dep": {`)
	if n, err := npmpkg.CheckLock(bundled, pkg, sum[:], reg); err != nil || n != 3 {
		t.Fatalf("a bundled dependency: %d %v", n, err)
	}
	if _, err := npmpkg.CheckLock(make([]byte, npmpkg.MaxLock+1), pkg, sum[:], reg); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("a huge lock: %v", err)
	}
}

// FuzzCheckLock: whatever the lock, CheckLock does not panic, and a lock it accepts resolves
// every package it fetches from the registry's host, the package itself from the pinned tarball.
func FuzzCheckLock(f *testing.F) {
	tarball := []byte("the pinned tarball")
	sum := sha512(tarball)
	good := strings.NewReplacer("SELF", npmtest.Integrity(tarball), "DEP", npmtest.Integrity([]byte("d"))).Replace(lockTemplate)
	f.Add(good)
	f.Add(strings.Replace(good, "127.0.0.1:4873", "evil.example", 1))
	f.Add(`{"lockfileVersion":3,"packages":{"":{"dependencies":{"@acme/echo":"file:package.tgz"}}}}`)
	f.Add(`{}`)
	pkg := &warden.ToolPackage{Name: "@acme/echo", Version: "1.0.0"}
	reg, _ := url.Parse("http://127.0.0.1:4873")
	f.Fuzz(func(t *testing.T, lock string) {
		n, err := npmpkg.CheckLock([]byte(lock), pkg, sum[:], reg)
		if err != nil {
			return
		}
		var doc struct {
			Packages map[string]struct {
				Resolved string `json:"resolved"`
				InBundle bool   `json:"inBundle"`
			} `json:"packages"`
		}
		if json.Unmarshal([]byte(lock), &doc) != nil || n != len(doc.Packages)-1 {
			t.Fatalf("accepted %q (%d packages)", lock, n)
		}
		for k, e := range doc.Packages {
			if k == "" || e.InBundle && k != "node_modules/@acme/echo" {
				continue
			}
			if k == "node_modules/@acme/echo" {
				if e.Resolved != "file:package.tgz" {
					t.Fatalf("accepted %q: the package from %q", lock, e.Resolved)
				}
				continue
			}
			u, err := url.Parse(e.Resolved)
			if err != nil || u.Host != "127.0.0.1:4873" || u.Scheme != "http" {
				t.Fatalf("accepted %q: %s from %q", lock, k, e.Resolved)
			}
		}
	})
}

// TestInstallRefusesLockFromOtherRegistry: a replica configured with another registry than the
// one the lock's dependencies come from refuses the install before npm runs, though the lock's
// bytes are the pinned ones.
func TestInstallRefusesLockFromOtherRegistry(t *testing.T) {
	ctx := context.Background()
	w := newLockWorld(t)
	tool, err := w.pin(t, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in := w.replica(t)
	tarball := npmtest.Tarball(t, npmtest.WithDependency(t, npmtest.EchoPackage("@acme/echo", "1.0.0"), "left-dep", "^1.0.0"))
	if err := in.Keep(&npmpkg.Pinned{Package: tool.Package, Tarball: tarball}); err != nil {
		t.Fatal(err)
	}
	in.Registry = &npmpkg.Registry{URL: "http://127.0.0.2:9"}
	ws := t.TempDir()
	err = in.Prepare(ctx, tool, ws)
	if err == nil || !strings.Contains(err.Error(), "outside the registry http://127.0.0.2:9") {
		t.Fatalf("a lock from another registry: %v", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(ws, npmpkg.InstallDir, "[0-9a-f]*")); len(entries) != 0 {
		t.Fatalf("installed: %v", entries)
	}
}
