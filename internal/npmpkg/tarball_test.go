package npmpkg

import (
	"path"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/npmpkg/npmtest"
)

// FuzzReadTarball: whatever bytes a registry serves as a tarball, reading it does not panic,
// and an entry point accepted is a file of the package that stays inside it.
func FuzzReadTarball(f *testing.F) {
	f.Add(npmtest.Tarball(f, npmtest.EchoPackage("@acme/echo", "1.0.0")), "")
	f.Add(npmtest.Tarball(f, map[string]string{"package.json": `{"name":"@acme/echo","version":"1.0.0","bin":"../x.js"}`, "x.js": ""}), "")
	f.Add(npmtest.Tarball(f, map[string]string{"package.json": `{"name":"@acme/echo","version":"1.0.0","bin":{"a":"a.js","b":"b.js"}}`, "a.js": "", "b.js": ""}), "b")
	f.Add([]byte("not gzip"), "")
	limits := DefaultLimits
	limits.Unpacked, limits.Files = 1<<20, 100
	f.Fuzz(func(t *testing.T, tarball []byte, bin string) {
		got, entry, err := readTarball(tarball, "@acme/echo", "1.0.0", bin, limits)
		if err != nil {
			return
		}
		if ValidateBin(got) != nil || (bin != "" && got != bin) {
			t.Fatalf("bin %q accepted (asked %q)", got, bin)
		}
		if !localPath(entry.Path) || path.Clean(entry.Path) != entry.Path || strings.HasPrefix(entry.Path, "/") || !strings.HasPrefix(entry.Digest, "sha256:") {
			t.Fatalf("entry %+v", entry)
		}
	})
}
