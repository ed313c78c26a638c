// Package toolpkg pins what a local MCP server runs: the files its command resolves to, each
// digested when the tool is added and verified again before every start of the server.
package toolpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// MaxFiles bounds how many files one command pins: its program and the script arguments.
const MaxFiles = 64

// LookPath finds a command as a local server's start does: a name with a slash as given
// (relative to the workspace when it is relative), any other in the PATH the server gets, not
// in warden's.
func LookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// Files returns the files a command runs, as its start resolves them, symlinks resolved: the
// program (argv[0] looked up in path), then every argument that names an existing regular file
// (a script: "node server.js"), absolute or relative to workspace ("" when the server has no
// workspace yet: a relative argument is then no file). Each file is listed once, in order.
func Files(argv []string, path, workspace string) ([]string, error) {
	if len(argv) == 0 {
		return nil, errors.New("the command is empty")
	}
	prog, err := LookPath(argv[0], path)
	if err != nil {
		return nil, err
	}
	prog, ok := resolve(prog, workspace)
	if !ok {
		return nil, fmt.Errorf("%s: %w", argv[0], exec.ErrNotFound)
	}
	out := []string{prog}
	for _, a := range argv[1:] {
		if a == "" || strings.HasPrefix(a, "-") {
			continue // an option, never a file the server is started with
		}
		f, ok := resolve(a, workspace)
		if !ok || slices.Contains(out, f) {
			continue
		}
		if len(out) == MaxFiles {
			return nil, fmt.Errorf("the command names more than %d files", MaxFiles)
		}
		out = append(out, f)
	}
	return out, nil
}

// resolve returns the absolute real path of p when it is an existing regular file.
func resolve(p, workspace string) (string, bool) {
	if !filepath.IsAbs(p) {
		if workspace == "" {
			return "", false
		}
		p = filepath.Join(workspace, p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return real, true
}

// Pin digests the files of a command (Files) into the package a quarantine names.
func Pin(argv []string, path, workspace string) (*warden.ToolPackage, error) {
	paths, err := Files(argv, path, workspace)
	if err != nil {
		return nil, err
	}
	files := make([]warden.PackageFile, len(paths))
	for i, p := range paths {
		d, err := FileDigest(p)
		if err != nil {
			return nil, err
		}
		files[i] = warden.PackageFile{Path: p, Digest: d}
	}
	return &warden.ToolPackage{Source: warden.PackageCommand, Digest: Digest(files), Files: files}, nil
}

// Digest is a command package's identity: "sha256:" and the hex SHA-256 of one line
// "PATH\x00DIGEST\n" per file, in order. A path cannot hold NUL and a digest is fixed-length,
// so no two lists of files give the same text.
func Digest(files []warden.PackageFile) string {
	h := sha256.New()
	for _, f := range files {
		io.WriteString(h, f.Path)
		h.Write([]byte{0})
		io.WriteString(h, f.Digest)
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// FileDigest is "sha256:" and the hex SHA-256 of a file's content.
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// ChangedError says that what a server would run is not what was pinned.
type ChangedError struct {
	Tool string
	// Path is the first file that differs: changed, gone, or resolved in its place.
	Path string
	// Want is the pinned package digest; Got what the files give now ("" when they cannot be
	// read).
	Want, Got string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the files of local MCP server %s changed since it was added (%s); it is not started until the tool is added again", e.Tool, e.Path)
}

// Verify checks, before a start, that a tool's command still runs the files pinned when it was
// added. A command package is resolved again as the start resolves it, so a program now found
// elsewhere in the PATH is a change too. An npm package is npmpkg.Installer.Prepare's to check.
// A tool without a package was added before packages were pinned: nothing to verify.
func Verify(t *warden.Tool, path, workspace string) error {
	pkg := t.Package
	if pkg == nil {
		return nil
	}
	switch pkg.Source {
	case warden.PackageCommand:
		now, err := Pin(t.Command, path, workspace)
		if err != nil {
			return &ChangedError{Tool: t.Name, Path: t.Command[0] + ": " + err.Error(), Want: pkg.Digest}
		}
		if now.Digest == pkg.Digest {
			return nil
		}
		return &ChangedError{Tool: t.Name, Path: firstDifference(pkg.Files, now.Files), Want: pkg.Digest, Got: now.Digest}
	case warden.PackageNPM:
		// npmpkg.Installer.Prepare, which installs the package, checks its entry point against
		// the pin just before every start (and records a refusal once): checked there, once.
		return nil
	}
	return &ChangedError{Tool: t.Name, Path: "unknown package source " + fmt.Sprintf("%q", pkg.Source), Want: pkg.Digest}
}

func firstDifference(want, got []warden.PackageFile) string {
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			return want[i].Path + " is no longer run"
		case i >= len(want):
			return got[i].Path + " is run too"
		case want[i] != got[i]:
			return got[i].Path
		}
	}
	return "the package digest"
}
