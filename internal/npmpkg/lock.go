package npmpkg

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/wardenhq/warden"
)

// MaxLock bounds a package-lock.json warden keeps.
const MaxLock = 16 << 20

// lockRootName is the name of the package.json warden installs a package with: the lock
// records it, so every install of one package writes the same lock.
const lockRootName = "warden-npm-install"

// LockFile is the name of the dependency lock beside the install's package.json.
const LockFile = "package-lock.json"

type lockDoc struct {
	LockfileVersion int                  `json:"lockfileVersion"`
	Packages        map[string]lockEntry `json:"packages"`
}

type lockEntry struct {
	Version      string            `json:"version"`
	Resolved     string            `json:"resolved"`
	Integrity    string            `json:"integrity"`
	Link         bool              `json:"link"`
	InBundle     bool              `json:"inBundle"`
	Dependencies map[string]string `json:"dependencies"`
}

// packageJSON is the package.json an install of pkg runs in: one dependency, the pinned
// tarball beside it. npm install records it so in the lock, and npm ci installs the lock only
// when the two agree.
func packageJSON(pkg *warden.ToolPackage) []byte {
	b, _ := json.Marshal(map[string]any{"name": lockRootName, "private": true, "dependencies": map[string]string{pkg.Name: "file:package.tgz"}})
	return append(b, '\n')
}

// CheckLock checks the package-lock.json of an install of pkg, whose tarball's sha512 is
// sum512, from registry, and returns how many packages it installs. Every package but those
// bundled inside another's tarball must have a sha512 integrity and come from registry's host
// (same scheme and host:port); the package itself must be the pinned tarball. Anything else
// (a git, file or link dependency, another host) is refused.
func CheckLock(lock []byte, pkg *warden.ToolPackage, sum512 []byte, registry *url.URL) (int, error) {
	if len(lock) > MaxLock {
		return 0, warden.Errorf(warden.EInvalid, "the dependency lock is larger than %d bytes", MaxLock)
	}
	var doc lockDoc
	if err := json.Unmarshal(lock, &doc); err != nil {
		return 0, warden.Errorf(warden.EInvalid, "the dependency lock is not valid JSON: %v", err)
	}
	if doc.LockfileVersion != 2 && doc.LockfileVersion != 3 {
		return 0, warden.Errorf(warden.EInvalid, "the dependency lock has lockfileVersion %d, want 2 or 3", doc.LockfileVersion)
	}
	root, ok := doc.Packages[""]
	if !ok || len(root.Dependencies) != 1 || root.Dependencies[pkg.Name] != "file:package.tgz" {
		return 0, warden.Errorf(warden.EInvalid, "the dependency lock's root does not depend on exactly the pinned package")
	}
	self := "node_modules/" + pkg.Name
	if _, ok := doc.Packages[self]; !ok {
		return 0, warden.Errorf(warden.EInvalid, "the dependency lock does not install %s", quote(pkg.Name))
	}
	n := 0
	for key, e := range doc.Packages {
		if key == "" {
			continue
		}
		n++
		what := quote(key)
		if !strings.HasPrefix(key, "node_modules/") || strings.Contains(key, "\\") {
			return 0, warden.Errorf(warden.EInvalid, "the dependency lock installs %s outside node_modules", what)
		}
		if e.Link {
			return 0, warden.Errorf(warden.EForbidden, "the dependency lock links %s to a directory, not a registry package", what)
		}
		if e.InBundle && key != self {
			continue // inside its parent's tarball, which the parent's integrity covers
		}
		if err := sha512Integrity(e.Integrity); err != nil {
			return 0, warden.Errorf(warden.EForbidden, "the dependency lock has no integrity for %s: %s", what, warden.ErrorMessage(err))
		}
		if key == self {
			if e.Resolved != "file:package.tgz" || e.Version != pkg.Version {
				return 0, warden.Errorf(warden.EForbidden, "the dependency lock installs %s from %s, not the pinned tarball", what, quote(e.Resolved))
			}
			if err := CheckIntegrity(e.Integrity, sum512); err != nil {
				return 0, warden.Errorf(warden.EForbidden, "the dependency lock's integrity of %s is not the pinned tarball's", what)
			}
			continue
		}
		u, err := url.Parse(e.Resolved)
		if err != nil || u.Scheme != registry.Scheme || u.Host != registry.Host || u.User != nil || e.Version == "" {
			return 0, warden.Errorf(warden.EForbidden, "the dependency lock resolves %s from %s, outside the registry %s", what, quote(e.Resolved), registry.Scheme+"://"+registry.Host)
		}
	}
	return n, nil
}

// sha512Integrity checks that an integrity names at least one well-formed sha512 hash, and
// nothing malformed.
func sha512Integrity(integrity string) error {
	toks := strings.Fields(integrity)
	seen := false
	for _, tok := range toks {
		alg, val, ok := strings.Cut(tok, "-")
		if !ok {
			return fmt.Errorf("integrity %s is malformed", quote(tok))
		}
		if alg != "sha512" {
			continue
		}
		val, _, _ = strings.Cut(val, "?")
		b, err := base64.StdEncoding.Strict().DecodeString(val)
		if err != nil || len(b) != sha512.Size {
			return fmt.Errorf("integrity %s is not a valid sha512 hash", quote(tok))
		}
		seen = true
	}
	if !seen {
		return fmt.Errorf("integrity %s has no sha512 hash", quote(integrity))
	}
	return nil
}
