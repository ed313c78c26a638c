package wire

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The wire package is pure: it reads and writes bytes it is handed and does no I/O of its own
// (no network, files, processes or clock), so that everything in it can be fuzzed. Only these
// imports are allowed outside tests; io is for io.Reader.
var allowedImports = map[string]bool{
	"bufio": true, "bytes": true, "encoding/json": true, "errors": true, "io": true, "mime": true,
	"slices": true, "strings": true,
	"github.com/modelcontextprotocol/go-sdk/jsonrpc": true, // the SDK's message types and decoder
	"github.com/modelcontextprotocol/go-sdk/mcp":     true, // SupportedProtocolVersions only, at init
}

func TestWireIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowedImports[path] {
				t.Errorf("%s imports %s: package wire does no I/O", name, path)
			}
		}
	}
}
