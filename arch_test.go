package warden_test

import (
	"go/ast"
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
	pkgs, err := parseDir(".", parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, files := range pkgs {
		for name, f := range files {
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
		pkgs, err := parseDir(dir, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, files := range pkgs {
			documented := false
			for _, f := range files {
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

// serverPackages are the packages that make up the server: what a client of the API must not
// import for a type, lest it link (and come to depend on) the code behind the API.
var serverPackages = []string{
	"internal/admin", "internal/approval", "internal/audit", "internal/auditsink", "internal/budget",
	"internal/cedar", "internal/gateway", "internal/httpapi", "internal/identity", "internal/killswitch",
	"internal/mcpgw", "internal/people", "internal/postgres", "internal/server", "internal/skills", "internal/sqlite", "internal/sqlstore",
}

// importRules write down what must not import what, each with its reason (tailscale
// tstest/deptest). The rules hold direct imports, file by file, of the non-test files.
var importRules = []struct {
	dir string
	// only, when set, is all the package may import besides the standard library.
	only []string
	// deny is what it must not import, except what exceptions allow a file.
	deny       []string
	exceptions map[string][]string // file name → denied imports it may have
	why        string
}{
	{
		dir:  "internal/apitype",
		only: []string{""},
		why:  "the wire types are a leaf: server handlers and every client share them, and a client must link them without linking any server code",
	},
	{
		dir:  "internal/apiclient",
		only: []string{"", "internal/apitype"},
		why:  "the one client of warden's API speaks the wire types and nothing else; whatever imports it links no server code",
	},
	{
		dir:  "internal/cli",
		deny: serverPackages,
		exceptions: map[string][]string{
			// `warden serve` runs the server in this process, and `warden audit verify --store`
			// reads a store with no server running: serve.go is the one file of the CLI that
			// calls server code, through internal/server alone.
			"serve.go": {"internal/server"},
		},
		why: "every other command is a thin client of the HTTP API: it calls it through apiclient with apitype's types, so it works against any server, local or not, and cannot reach around the API",
	},
	{
		dir:  "internal/runner",
		deny: serverPackages,
		why:  "`warden run` acts as the agent against a server that may be on another machine: through apiclient, never through server code",
	},
	{
		dir:  "internal/egress",
		deny: serverPackages,
		why:  "the egress proxy of `warden run` asks the server's decision API through apiclient; the server's own use of the proxy must not pull the server into the runner",
	},
	{
		dir:  "internal/connect",
		deny: serverPackages,
		why:  "the connect sidecar holds an agent's credentials on the agent's machine and reaches the server through apiclient only",
	},
}

// TestImportRules holds importRules.
func TestImportRules(t *testing.T) {
	const module = "github.com/wardenhq/warden"
	// ours returns the path of an import of this module relative to it ("" for the domain
	// package), or ok false for the standard library and other modules.
	ours := func(path string) (rel string, ok bool) {
		if path == module {
			return "", true
		}
		rel, ok = strings.CutPrefix(path, module+"/")
		return rel, ok
	}
	for _, rule := range importRules {
		pkgs, err := parseDir(rule.dir, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		if len(pkgs) == 0 {
			t.Errorf("%s: no package: update the rule", rule.dir)
		}
		for _, files := range pkgs {
			for name, f := range files {
				for _, imp := range f.Imports {
					path, _ := strconv.Unquote(imp.Path.Value)
					rel, isOurs := ours(path)
					first, _, _ := strings.Cut(path, "/")
					stdlib := !strings.Contains(first, ".")
					switch {
					case rule.only != nil && !stdlib && (!isOurs || !slices.Contains(rule.only, rel)):
						t.Errorf("%s imports %s: %s", name, path, rule.why)
					case isOurs && slices.Contains(rule.deny, rel) && !slices.Contains(rule.exceptions[filepath.Base(name)], rel):
						t.Errorf("%s imports %s: %s", name, path, rule.why)
					}
				}
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
	{"cmd/warden", "internal/pgtest", "test helpers are for tests: the binary must not link them"},
	{"cmd/warden", "internal/storetest", "test helpers are for tests: the binary must not link them"},
	{"cmd/warden", "internal/replicatest", "test helpers are for tests: the binary must not link them"},
	{"cmd/warden", "internal/npmpkg/npmtest", "test helpers are for tests: the binary must not link them"},
	{"cmd/warden", "internal/skilltest", "test helpers are for tests: the binary must not link them"},
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

// parseDir parses the non-test Go files of dir with mode, by package name and then file path
// (go/parser.ParseDir, which is deprecated, did the same).
func parseDir(dir string, mode parser.Mode) (map[string]map[string]*ast.File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	pkgs := map[string]map[string]*ast.File{}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, mode)
		if err != nil {
			return nil, err
		}
		if pkgs[f.Name.Name] == nil {
			pkgs[f.Name.Name] = map[string]*ast.File{}
		}
		pkgs[f.Name.Name][name] = f
	}
	return pkgs, nil
}
