package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

func TestPrintPackage(t *testing.T) {
	show := func(tool *warden.Tool) string {
		var b bytes.Buffer
		printPackage(&b, tool)
		return b.String()
	}
	pinned := &warden.Tool{Name: "notes", Kind: warden.ToolMCPCommand, Command: []string{"node", "server.js"}, Package: &warden.ToolPackage{
		Source: warden.PackageCommand, Digest: "sha256:aa",
		Files: []warden.PackageFile{{Path: "/usr/bin/node", Digest: "sha256:bb"}, {Path: "/srv/server.js", Digest: "sha256:cc"}},
	}}
	if got := show(pinned); !strings.Contains(got, "command sha256:aa") || !strings.Contains(got, "sha256:cc  /srv/server.js") || strings.Contains(got, "note:") {
		t.Errorf("pinned:\n%s", got)
	}
	npx := &warden.Tool{Name: "gh", Kind: warden.ToolMCPCommand, Command: []string{"/usr/bin/npx", "-y", "pkg"}, Package: &warden.ToolPackage{Source: warden.PackageCommand, Digest: "sha256:dd"}}
	if got := show(npx); !strings.Contains(got, "the digest pins /usr/bin/npx, not that package") || !strings.Contains(got, "--npm") {
		t.Errorf("npx:\n%s", got)
	}
	if got := show(&warden.Tool{Name: "old", Kind: warden.ToolMCPCommand, Command: []string{"x"}}); !strings.Contains(got, "not pinned") {
		t.Errorf("unpinned:\n%s", got)
	}
	if got := show(&warden.Tool{Name: "remote", Kind: warden.ToolMCP}); got != "" {
		t.Errorf("a remote tool shows a package:\n%s", got)
	}
}
