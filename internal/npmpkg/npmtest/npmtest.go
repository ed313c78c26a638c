// Package npmtest serves an npm registry on 127.0.0.1 for tests, with package tarballs built in
// the test, and a tiny MCP server in Node.js (no dependency) to package. Tests only: the binary
// must not link it.
package npmtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Registry is an npm registry serving what was published to it: GET /NAME/VERSION (a
// version's metadata), the tarballs under /NAME/-/, and /-/npm/v1/attestations/NAME@VERSION.
type Registry struct {
	URL string
	// Chunked sends bodies without a Content-Length, as a registry streaming them would.
	Chunked bool

	mu       sync.Mutex
	files    map[string][]byte
	hits     map[string]int
	versions map[string]map[string]any // name → version → metadata, for the packument at /NAME
}

// NewRegistry starts a registry that stops when the test ends.
func NewRegistry(t testing.TB) *Registry {
	r := &Registry{files: map[string][]byte{}, hits: map[string]int{}, versions: map[string]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		body, ok := r.files[req.URL.Path]
		r.hits[req.URL.Path]++
		chunked := r.Chunked
		r.mu.Unlock()
		if !ok || req.Method != http.MethodGet {
			http.NotFound(w, req)
			return
		}
		if chunked && len(body) > 1 {
			_, _ = w.Write(body[:1])
			w.(http.Flusher).Flush()
			body = body[1:]
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Set serves body at path.
func (r *Registry) Set(path string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[path] = body
}

// Hits is how many requests path got.
func (r *Registry) Hits(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[path]
}

// TarballPath is where a version's tarball is served.
func TarballPath(name, version string) string {
	base := name
	if _, after, ok := strings.Cut(name, "/"); ok {
		base = after
	}
	return "/" + name + "/-/" + base + "-" + version + ".tgz"
}

// Integrity is the dist.integrity of a tarball.
func Integrity(tarball []byte) string {
	sum := sha512.Sum512(tarball)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Publish serves a version: its tarball and metadata naming it with its integrity, also in the
// package's document at /NAME (what npm reads to resolve a dependency's range), whose latest
// becomes this version; edit, when given, changes the metadata before it is served.
func (r *Registry) Publish(t testing.TB, name, version string, tarball []byte, edit func(meta map[string]any)) {
	t.Helper()
	dist := map[string]any{"tarball": r.URL + TarballPath(name, version), "integrity": Integrity(tarball), "shasum": "0"}
	meta := map[string]any{"name": name, "version": version, "dist": dist}
	if edit != nil {
		edit(meta)
	}
	b, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	r.Set("/"+name+"/"+version, b)
	r.Set(TarballPath(name, version), tarball)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.versions[name] == nil {
		r.versions[name] = map[string]any{}
	}
	r.versions[name][version] = meta
	doc, err := json.Marshal(map[string]any{"name": name, "dist-tags": map[string]string{"latest": version}, "versions": r.versions[name]})
	if err != nil {
		t.Fatal(err)
	}
	r.files["/"+name] = doc
}

// LibPackage is the files of a library package with no bin or script: index.js exports its
// version.
func LibPackage(name, version string) map[string]string {
	b, _ := json.Marshal(map[string]any{"name": name, "version": version, "main": "index.js"})
	return map[string]string{"package.json": string(b), "index.js": "module.exports = " + strconv.Quote(version) + ";\n"}
}

// WithDependency adds a dependency on name at range rng to a package's files (as EchoPackage
// makes them).
func WithDependency(t testing.TB, files map[string]string, name, rng string) map[string]string {
	t.Helper()
	var pkg map[string]any
	if err := json.Unmarshal([]byte(files["package.json"]), &pkg); err != nil {
		t.Fatal(err)
	}
	deps, _ := pkg["dependencies"].(map[string]any)
	if deps == nil {
		deps = map[string]any{}
	}
	deps[name] = rng
	pkg["dependencies"] = deps
	b, err := json.Marshal(pkg)
	if err != nil {
		t.Fatal(err)
	}
	out := maps.Clone(files)
	out["package.json"] = string(b)
	return out
}

// Tarball packs files (paths relative to the package) as npm pack does: a gzip tar with each
// file under package/.
func Tarball(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasSuffix(n, ".js") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + n, Mode: mode, Size: int64(len(files[n])), ModTime: time.Unix(499162500, 0), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// EchoServer is an MCP server over stdio in plain Node.js: its tool echo answers
// "echo: MESSAGE"; its tool overwrite tries to append to the server's own file and answers
// "overwrite: done" or "overwrite: ERROR-CODE".
const EchoServer = `#!/usr/bin/env node
const readline = require('readline');
const rl = readline.createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
rl.on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch (e) { return; }
  if (m.id === undefined) return;
  const ok = (result) => send({ jsonrpc: '2.0', id: m.id, result });
  switch (m.method) {
    case 'initialize':
      return ok({ protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'echo', version: '1.0.0' } });
    case 'tools/list':
      return ok({ tools: [
        { name: 'echo', description: 'Echoes its message.', inputSchema: { type: 'object', properties: { message: { type: 'string' } } } },
        { name: 'overwrite', description: 'Changes its own code.', inputSchema: { type: 'object' } },
      ] });
    case 'tools/call':
      if (m.params.name === 'overwrite') {
        let text = 'overwrite: done';
        try { require('fs').appendFileSync(__filename, '// changed\n'); } catch (e) { text = 'overwrite: ' + e.code; }
        return ok({ content: [{ type: 'text', text }] });
      }
      return ok({ content: [{ type: 'text', text: 'echo: ' + m.params.arguments.message }] });
    case 'ping':
      return ok({});
    default:
      return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'method not found' } });
  }
});
`

// EchoPackage is the files of a package whose bin "echo-mcp" is EchoServer. Its lifecycle
// scripts (preinstall, install, postinstall) would each write a file named after the script
// into the directory npm was run in (INIT_CWD) and into the package's own directory.
func EchoPackage(name, version string) map[string]string {
	script := func(s string) string {
		return `node -e "for (const d of [process.env.INIT_CWD, process.cwd()]) require('fs').writeFileSync(d + '/` + s + `-ran', 'x')"`
	}
	pkg := map[string]any{
		"name": name, "version": version, "bin": map[string]string{"echo-mcp": "bin/server.js"},
		"scripts": map[string]string{"preinstall": script("preinstall"), "install": script("install"), "postinstall": script("postinstall")},
	}
	b, _ := json.Marshal(pkg)
	return map[string]string{"package.json": string(b), "bin/server.js": EchoServer, "README.md": "An echo MCP server.\n"}
}
