package npmpkg

import (
	"bytes"
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/toolpkg"
)

// Auditor appends an event to the audit log; *audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, ev *warden.AuditEvent) error
}

// Installer keeps verified tarballs and installs them into tools' workspaces, with lifecycle
// scripts disabled (--ignore-scripts), so that no script of the package or of its dependencies
// ever runs. At add the tarball is installed by `npm install`, which resolves the dependencies
// and writes package-lock.json: the lock is checked (CheckLock) and kept in Locks, named by
// the package's LockDigest. Every later install runs `npm ci` on that lock, so it installs the
// same dependency versions, each checked against its integrity in the lock.
//
// Each replica installs into its own workspaces. A replica that lacks a tool's install takes
// the tarball from its cache or downloads it again, and installs it only when its bytes match
// the integrity and the digest pinned when the tool was added, and the lock only when its
// bytes match the LockDigest. A package pinned before locks were kept (no LockDigest) is
// installed by `npm install`, its dependencies resolved again.
type Installer struct {
	// Cache holds verified tarballs, by digest (DATA/npm); "" keeps none.
	Cache string
	// Registry is where dependencies and missing tarballs come from.
	Registry *Registry
	// Locks keeps the dependency locks written at add; without it no package can be pinned,
	// and a package with a LockDigest cannot be installed.
	Locks warden.PackageLockStore
	// NPM is the npm command; "" is npm, looked up in Path.
	NPM string
	// Path is the PATH npm runs with; "" is warden's.
	Path string
	// Timeout bounds one install; 0 is ten minutes.
	Timeout time.Duration
	// Audit records a start refused because the installed entry point changed; nil logs it.
	Audit Auditor
	Log   *slog.Logger

	mu      sync.Mutex
	refused map[string]string // tool → the entry digest last refused, so that restarts record it once
}

// ErrTampered is the error of a start refused because the installed entry point is not the one
// pinned.
var ErrTampered = errors.New("the installed entry point is not the one pinned")

// Keep stores a verified tarball in the cache, so that installs need not download it again.
func (in *Installer) Keep(p *Pinned) error {
	if in.Cache == "" {
		return nil
	}
	if Digest(p.Tarball) != p.Package.Digest || !warden.ValidDigest(p.Package.Digest) {
		return fmt.Errorf("keeping %s: the tarball is not the pinned one", p.Package.Digest)
	}
	if err := os.MkdirAll(in.Cache, 0o700); err != nil {
		return err
	}
	return writeAtomic(in.cachePath(p.Package.Digest), p.Tarball)
}

func (in *Installer) cachePath(digest string) string {
	return filepath.Join(in.Cache, strings.TrimPrefix(digest, "sha256:")+".tgz")
}

// Prepare makes a local server's pinned package ready to start in its workspace: installed
// when the workspace lacks it, and its entry point's digest the pinned one. On any doubt the
// server does not start.
func (in *Installer) Prepare(ctx context.Context, tool *warden.Tool, workspace string) error {
	pkg := tool.Package
	if pkg == nil || pkg.Source != warden.PackageNPM || len(pkg.Files) != 1 || !warden.ValidDigest(pkg.Digest) {
		return fmt.Errorf("tool %s: no pinned npm package to run", tool.Name)
	}
	entry := pkg.Files[0]
	dir := filepath.Join(workspace, InstallDir, strings.TrimPrefix(pkg.Digest, "sha256:"))
	if rel, err := filepath.Rel(dir, filepath.Join(workspace, entry.Path)); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("tool %s: its entry point %q is not inside its package", tool.Name, entry.Path)
	}
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		var lock []byte
		if pkg.LockDigest != "" {
			if lock, err = in.lock(ctx, tool); err != nil {
				return err
			}
		}
		if _, err := in.install(ctx, pkg, workspace, dir, lock, false); err != nil {
			return fmt.Errorf("installing %s@%s: %w", pkg.Name, pkg.Version, err)
		}
	} else if err != nil {
		return err
	}
	got, err := fileDigest(filepath.Join(workspace, entry.Path))
	if err != nil {
		got = "unreadable (" + err.Error() + ")"
	}
	if got == entry.Digest {
		in.mu.Lock()
		delete(in.refused, tool.Name)
		in.mu.Unlock()
		return nil
	}
	in.recordRefused(ctx, tool, "entry "+got, fmt.Sprintf("the local MCP server did not start: its entry point %s is %s, pinned %s; remove %s to install the pinned package again", pkg.Files[0].Path, got, pkg.Files[0].Digest, dir))
	return fmt.Errorf("%w: %s of %s@%s is %s, pinned %s; remove %s to install the pinned package again",
		ErrTampered, entry.Path, pkg.Name, pkg.Version, got, entry.Digest, dir)
}

// lock returns the dependency lock of a tool's package, from the store: its bytes must give
// the pinned LockDigest, and still pass CheckLock. A lock that does not is recorded as a
// refused start (package_tampered).
func (in *Installer) lock(ctx context.Context, tool *warden.Tool) ([]byte, error) {
	pkg := tool.Package
	if in.Locks == nil {
		return nil, fmt.Errorf("tool %s: no store holds the dependency lock %s of %s@%s", tool.Name, pkg.LockDigest, pkg.Name, pkg.Version)
	}
	lock, err := in.Locks.PackageLock(ctx, pkg.LockDigest)
	if err != nil {
		return nil, fmt.Errorf("tool %s: reading the dependency lock of %s@%s: %w", tool.Name, pkg.Name, pkg.Version, err)
	}
	if got := Digest(lock); got != pkg.LockDigest {
		msg := fmt.Sprintf("the local MCP server did not start: the stored dependency lock of %s@%s is %s, pinned %s", pkg.Name, pkg.Version, got, pkg.LockDigest)
		in.recordRefused(ctx, tool, "lock "+got, msg)
		return nil, fmt.Errorf("%w: %s", ErrLockTampered, msg)
	}
	return lock, nil
}

// ErrLockTampered is the error of an install refused because the stored dependency lock is not
// the one pinned.
var ErrLockTampered = errors.New("the dependency lock is not the one pinned")

// recordRefused records a refused start once per tool and observed digest (key): the
// supervisor retries with backoff, and each retry would otherwise add the same event.
func (in *Installer) recordRefused(ctx context.Context, tool *warden.Tool, key, msg string) {
	in.mu.Lock()
	if in.refused == nil {
		in.refused = map[string]string{}
	}
	seen := in.refused[tool.Name] == key
	in.refused[tool.Name] = key
	in.mu.Unlock()
	if seen {
		return
	}
	pkg := tool.Package
	ev := &warden.AuditEvent{
		Type:     warden.EventToolPackageRefused,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target:   warden.EventTarget{Tool: tool.Name, Resource: "package:" + pkg.Name + "@" + pkg.Version + "@" + pkg.Digest},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonPackageTampered, Message: msg},
	}
	if in.Audit == nil {
		in.log().Error("local mcp server refused", "tool", tool.Name, "reason", msg)
		return
	}
	if err := in.Audit.Append(ctx, ev); err != nil {
		in.log().Error("audit append failed", "type", ev.Type, "tool", tool.Name, "err", err)
	}
}

func (in *Installer) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

// install unpacks the pinned tarball into dir (WORKSPACE/.warden-npm/<digest>) with npm,
// lifecycle scripts disabled, in a temporary directory renamed into place when done: `npm ci`
// on lock when one is given (its dependencies exactly those of the lock), `npm install`
// otherwise. It returns the package-lock.json of the install. replace replaces an install
// already in dir (an add installs afresh); otherwise one there is an error.
func (in *Installer) install(ctx context.Context, pkg *warden.ToolPackage, workspace, dir string, lock []byte, replace bool) ([]byte, error) {
	if in.Registry == nil {
		return nil, errors.New("no registry to install from")
	}
	base, err := in.Registry.base()
	if err != nil {
		return nil, err
	}
	tarball, err := in.tarball(ctx, pkg)
	if err != nil {
		return nil, err
	}
	sum := sha512.Sum512(tarball)
	if lock != nil {
		// Checked again here: the registry configured now must still be the lock's.
		if n, err := CheckLock(lock, pkg, sum[:], base); err != nil {
			return nil, fmt.Errorf("the stored dependency lock: %s", warden.ErrorMessage(err))
		} else if n != pkg.LockPackages {
			return nil, fmt.Errorf("the stored dependency lock installs %d packages, pinned %d", n, pkg.LockPackages)
		}
	}
	root := filepath.Join(workspace, InstallDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(root, ".install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), packageJSON(pkg), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "package.tgz"), tarball, 0o644); err != nil {
		return nil, err
	}
	args := NPMArgs(base.String(), filepath.Join(root, ".cache"), tmp)
	if lock != nil {
		if err := os.WriteFile(filepath.Join(tmp, LockFile), lock, 0o644); err != nil {
			return nil, err
		}
		args = NPMCIArgs(base.String(), filepath.Join(root, ".cache"), tmp)
	}
	if err := in.npmRun(ctx, tmp, args); err != nil {
		return nil, err
	}
	written, err := readLimited(filepath.Join(tmp, LockFile), MaxLock)
	if err != nil {
		return nil, fmt.Errorf("reading the dependency lock npm wrote: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if replace {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return written, nil
}

// readLimited reads a regular file of at most limit bytes.
func readLimited(p string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s is not a regular file of at most %d bytes", filepath.Base(p), limit)
	}
	return warden.ReadFileLimited(p, limit)
}

// NPMArgs are the arguments of the install: no lifecycle script runs (--ignore-scripts), no
// audit or funding request leaves, no dev dependency is installed, and no user or global npm
// configuration is read (they point to files that do not exist in dir).
func NPMArgs(registry, cache, dir string) []string {
	return []string{"install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev", "--no-update-notifier",
		"--userconfig", filepath.Join(dir, ".no-user-npmrc"), "--globalconfig", filepath.Join(dir, ".no-global-npmrc"),
		"--registry", registry + "/", "--cache", cache, "./package.tgz"}
}

// NPMCIArgs are the arguments of an install from a kept lock: `npm ci`, which installs exactly
// the lock's packages, checks each against its integrity, and fails when package.json and the
// lock disagree; otherwise as NPMArgs.
func NPMCIArgs(registry, cache, dir string) []string {
	return []string{"ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev", "--no-update-notifier",
		"--userconfig", filepath.Join(dir, ".no-user-npmrc"), "--globalconfig", filepath.Join(dir, ".no-global-npmrc"),
		"--registry", registry + "/", "--cache", cache}
}

func (in *Installer) npmRun(ctx context.Context, dir string, args []string) error {
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	path := in.Path
	if path == "" {
		path = os.Getenv("PATH")
	}
	npm := in.NPM
	if npm == "" {
		npm = "npm"
	}
	if !strings.Contains(npm, "/") {
		p, err := toolpkg.LookPath(npm, path)
		if err != nil {
			return fmt.Errorf("npm is not installed where warden looks (PATH %s): %w", path, err)
		}
		npm = p
	}
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	// npm gets no secret of warden's: PATH, its own HOME, and how to reach the registry (the
	// proxy settings and the extra CA certificates of a network that inspects TLS).
	cmd.Env = []string{"PATH=" + path, "HOME=" + dir}
	for _, k := range []string{"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out bytes.Buffer
	lw := &limitedWriter{w: &out, n: 16 << 10} // one writer: exec then writes from one goroutine at a time
	cmd.Stdout, cmd.Stderr = lw, lw
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm %s failed: %v: %s", args[0], err, strings.TrimSpace(lastLines(out.String(), 5)))
	}
	return nil
}

// tarball returns the pinned tarball: from the cache, or downloaded again. Either way its
// bytes must give the pinned digest, and a downloaded one match the pinned integrity too.
func (in *Installer) tarball(ctx context.Context, pkg *warden.ToolPackage) ([]byte, error) {
	if in.Cache != "" {
		b, err := os.ReadFile(in.cachePath(pkg.Digest))
		if err == nil && Digest(b) == pkg.Digest {
			return b, nil
		}
	}
	if in.Registry == nil {
		return nil, errors.New("no registry to download the package from")
	}
	doc, err := in.Registry.metadata(ctx, pkg.Name, pkg.Version)
	if err != nil {
		return nil, err
	}
	b, err := in.Registry.fetch(ctx, doc.Dist.Tarball, in.Registry.limits().Tarball, "the tarball of "+pkg.Name+"@"+pkg.Version)
	if err != nil {
		return nil, err
	}
	sum := sha512.Sum512(b)
	if err := CheckIntegrity(pkg.Integrity, sum[:]); err != nil {
		return nil, fmt.Errorf("the registry's tarball of %s@%s is not the one pinned: %s", pkg.Name, pkg.Version, warden.ErrorMessage(err))
	}
	if got := Digest(b); got != pkg.Digest {
		return nil, fmt.Errorf("the registry's tarball of %s@%s is %s, pinned %s", pkg.Name, pkg.Version, got, pkg.Digest)
	}
	if err := in.Keep(&Pinned{Package: pkg, Tarball: b}); err != nil {
		in.log().Warn("keeping a verified npm tarball", "package", pkg.Name, "err", err)
	}
	return b, nil
}

// fileDigest hashes a regular file, refusing a symlink in its place.
func fileDigest(p string) (string, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", p)
	}
	return toolpkg.FileDigest(p)
}

func writeAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// mkdirPrivate makes a workspace as mcpgw does: mode 0700.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
