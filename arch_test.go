package warden_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestDomainImportsOnlyStandardLibrary keeps the vocabulary package free of dependencies: it
// must read as a description of warden, not of the libraries that implement it.
func TestDomainImportsOnlyStandardLibrary(t *testing.T) {
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		for name, f := range pkg.Files {
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
					t.Errorf("%s imports %s: the domain package uses the standard library only", name, path)
				}
			}
		}
	}
}

// TestEveryPackageHasDocComment makes each package say what it is for.
func TestEveryPackageHasDocComment(t *testing.T) {
	dirs := map[string]bool{".": true}
	for _, root := range []string{"internal", "cmd"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				dirs[filepath.Dir(path)] = true
			}
			return nil
		})
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	for dir := range dirs {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, pkg := range pkgs {
			documented := false
			for _, f := range pkg.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
			if !documented {
				t.Errorf("package %s in %s has no doc comment saying what it is for", name, dir)
			}
		}
	}
}

// forbiddenImports says what must not import what, directly or through another package, and
// why. Only a package's own (non-test) files count: a test may build whatever it needs around it.
var forbiddenImports = []struct {
	pkg, imports, why string
}{
	{"internal/gateway", "internal/identity",
		"the pipeline checks tokens through its Verifier interface and takes IDs from warden.NewID; " +
			"the token service, its keys and its store stay out of the hot path"},
	{"internal/gateway", "internal/mcpgw",
		"mcpgw is an entry point built on the pipeline; the pipeline knowing an entry point would " +
			"make one path per entry point of what must be one path for all"},
}

// TestForbiddenImports holds the rules of forbiddenImports, on the packages' whole dependency
// graphs as the go command builds them (as tailscale's tstest/deptest does).
func TestForbiddenImports(t *testing.T) {
	const module = "github.com/wardenhq/warden/"
	for _, rule := range forbiddenImports {
		out, err := exec.Command("go", "list", "-deps", "./"+rule.pkg).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go list -deps ./%s: %v\n%s", rule.pkg, err, stderr)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, module+rule.pkg) {
			t.Fatalf("go list -deps ./%s does not list the package itself: %q", rule.pkg, deps)
		}
		for _, dep := range deps {
			if dep == module+rule.imports || strings.HasPrefix(dep, module+rule.imports+"/") {
				t.Errorf("%s depends on %s: it must not, because %s", rule.pkg, dep, rule.why)
			}
		}
	}
}
