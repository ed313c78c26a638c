package npmpkg

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// InstallDir is the directory of a tool's workspace that holds its installed packages, one
// directory per tarball digest. The sandbox mounts it read-only.
const InstallDir = ".warden-npm"

// EntryPath is where an installed package's entry point lives, relative to the workspace.
func EntryPath(digest, name, entry string) string {
	return path.Join(InstallDir, strings.TrimPrefix(digest, "sha256:"), "node_modules", name, entry)
}

// manifest is the part of the tarball's package.json warden reads.
type manifest struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	Bin     json.RawMessage `json:"bin"`
}

const maxPackageJSON = 1 << 20

// readTarball reads a package tarball as npm unpacks it (the first path element stripped),
// checks that its package.json names the package, and returns the bin it runs and the digest of
// that bin's file. Only package.json is held in memory; other files are hashed as they pass.
func readTarball(tarball []byte, name, version, bin string, l Limits) (string, warden.PackageFile, error) {
	id := name + "@" + version
	bad := func(format string, args ...any) (string, warden.PackageFile, error) {
		return "", warden.PackageFile{}, warden.Errorf(warden.EInvalid, "the tarball of %s: %s", id, fmt.Sprintf(format, args...))
	}
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		return bad("not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	sums := map[string]string{}
	var pkgJSON []byte
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return bad("not a tar archive: %v", err)
		}
		if n >= l.Files {
			return bad("more than %d entries", l.Files)
		}
		if h.Typeflag != tar.TypeReg { // the reader reports the old TypeRegA as TypeReg
			continue // npm installs regular files only
		}
		_, rel, ok := strings.Cut(h.Name, "/")
		if !ok || rel == "" {
			continue
		}
		rel = path.Clean(rel)
		if !localPath(rel) {
			return bad("entry %s leaves the package", quote(h.Name))
		}
		total += h.Size
		if h.Size < 0 || total > l.Unpacked {
			return bad("its files are larger than warden's limit of %d bytes", l.Unpacked)
		}
		sum := sha256.New()
		var w io.Writer = sum
		var buf bytes.Buffer
		if rel == "package.json" {
			if h.Size > maxPackageJSON {
				return bad("package.json is larger than %d bytes", maxPackageJSON)
			}
			w = io.MultiWriter(sum, &buf)
		}
		if _, err := io.Copy(w, io.LimitReader(tr, h.Size)); err != nil {
			return bad("reading %s: %v", quote(rel), err)
		}
		sums[rel] = "sha256:" + hex.EncodeToString(sum.Sum(nil))
		if rel == "package.json" {
			pkgJSON = buf.Bytes()
		}
	}
	if pkgJSON == nil {
		return bad("no package.json")
	}
	var m manifest
	if err := decodeOne(pkgJSON, &m); err != nil {
		return bad("package.json is not a JSON object: %v", err)
	}
	if m.Name != name || m.Version != version {
		return bad("its package.json names %s@%s", quote(m.Name), quote(m.Version))
	}
	bins, err := parseBins(name, m.Bin)
	if err != nil {
		return bad("%s", warden.ErrorMessage(err))
	}
	chosen, err := chooseBin(id, name, bin, bins)
	if err != nil {
		return "", warden.PackageFile{}, err
	}
	if err := ValidateBin(chosen); err != nil {
		return "", warden.PackageFile{}, err
	}
	entry := path.Clean(strings.TrimPrefix(bins[chosen], "./"))
	if !localPath(entry) {
		return bad("bin %s points outside the package: %s", quote(chosen), quote(bins[chosen]))
	}
	digest, ok := sums[entry]
	if !ok {
		return bad("bin %s names %s, which is not a file of the package", quote(chosen), quote(entry))
	}
	return chosen, warden.PackageFile{Path: entry, Digest: digest}, nil
}

func localPath(p string) bool {
	return p != "." && p != ".." && !strings.HasPrefix(p, "../") && !path.IsAbs(p) && !strings.ContainsRune(p, 0) && !strings.Contains(p, "\\")
}

// parseBins reads package.json's bin: a path (the bin is named after the package) or an object
// of bin names to paths.
func parseBins(name string, raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]string{}, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return map[string]string{unscoped(name): one}, nil
	}
	var bins map[string]string
	if err := json.Unmarshal(raw, &bins); err != nil {
		return nil, warden.Errorf(warden.EInvalid, "package.json's bin is neither a path nor an object of paths")
	}
	return bins, nil
}

// chooseBin picks the bin to run: the one asked for; else the only one; else the one named
// after the package, as npx picks it.
func chooseBin(id, name, want string, bins map[string]string) (string, error) {
	names := make([]string, 0, len(bins))
	for b := range bins {
		names = append(names, b)
	}
	slices.Sort(names)
	switch {
	case len(bins) == 0:
		return "", warden.Errorf(warden.EInvalid, "%s has no bin: it has no command to run as a local MCP server", id)
	case want != "":
		if _, ok := bins[want]; !ok {
			return "", warden.Errorf(warden.EInvalid, "%s has no bin %s; its bins: %s", id, quote(want), strings.Join(names, ", "))
		}
		return want, nil
	case len(bins) == 1:
		return names[0], nil
	}
	if _, ok := bins[unscoped(name)]; ok {
		return unscoped(name), nil
	}
	return "", warden.Errorf(warden.EInvalid, "%s has several bins (%s): choose one with --bin", id, strings.Join(names, ", "))
}
