package toolpkg

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wardenhq/warden"
)

// layout is a PATH directory with a program reached through a symlink, and a workspace with a
// script in it.
type layout struct {
	bin, real, ws, script, prog string
}

func newLayout(t testing.TB) layout {
	t.Helper()
	root := t.TempDir()
	l := layout{bin: filepath.Join(root, "bin"), real: filepath.Join(root, "real"), ws: filepath.Join(root, "ws")}
	for _, d := range []string{l.bin, l.real, l.ws} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l.prog = filepath.Join(l.real, "node")
	write(t, l.prog, "#!/bin/sh\necho node\n", 0o755)
	if err := os.Symlink(l.prog, filepath.Join(l.bin, "node")); err != nil {
		t.Fatal(err)
	}
	l.script = filepath.Join(l.ws, "server.js")
	write(t, l.script, "console.log('serve')\n", 0o644)
	return l
}

func write(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestFilesResolveAsTheStartDoes(t *testing.T) {
	l := newLayout(t)
	abs := filepath.Join(l.real, "lib.js")
	write(t, abs, "x", 0o644)
	got, err := Files([]string{"node", "--flag", "server.js", abs, "server.js", "missing.js", l.ws}, l.bin, l.ws)
	if err != nil {
		t.Fatal(err)
	}
	// The program through its symlink, the relative script in the workspace, the absolute one;
	// an option, a repeated file, a missing file and a directory are not files it runs.
	if want := []string{l.prog, l.script, abs}; !slices.Equal(got, want) {
		t.Errorf("files = %v, want %v", got, want)
	}
	// With no workspace yet, a relative argument names no file.
	if got, _ := Files([]string{"node", "server.js"}, l.bin, ""); !slices.Equal(got, []string{l.prog}) {
		t.Errorf("files without a workspace = %v", got)
	}
	if _, err := Files([]string{"nosuch"}, l.bin, l.ws); err == nil {
		t.Error("a program not in the PATH was resolved")
	}
	if _, err := Files([]string{l.ws}, l.bin, l.ws); err == nil {
		t.Error("a directory was taken for the program")
	}
	if _, err := Files(nil, l.bin, l.ws); err == nil {
		t.Error("an empty command was resolved")
	}
}

func TestPinDigest(t *testing.T) {
	l := newLayout(t)
	pkg, err := Pin([]string{"node", "server.js"}, l.bin, l.ws)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Source != warden.PackageCommand || len(pkg.Files) != 2 || pkg.Files[1].Path != l.script {
		t.Fatalf("package = %+v", pkg)
	}
	// sha256 of "console.log('serve')\n".
	d, _ := FileDigest(l.script)
	if pkg.Files[1].Digest != d || len(d) != len("sha256:")+64 {
		t.Errorf("script digest %s, want %s", pkg.Files[1].Digest, d)
	}
	if pkg.Digest != Digest(pkg.Files) {
		t.Error("the package digest is not the digest of its files")
	}
	// The canonical form: order matters, and a path and a digest cannot trade places.
	swapped := []warden.PackageFile{pkg.Files[1], pkg.Files[0]}
	if Digest(swapped) == pkg.Digest {
		t.Error("the files' order does not change the digest")
	}
	if Digest([]warden.PackageFile{{Path: "a", Digest: "b"}}) == Digest([]warden.PackageFile{{Path: "a\x00b", Digest: ""}}) {
		t.Error("two lists give one digest")
	}
}

func TestVerify(t *testing.T) {
	l := newLayout(t)
	argv := []string{"node", "server.js"}
	pkg, err := Pin(argv, l.bin, l.ws)
	if err != nil {
		t.Fatal(err)
	}
	tool := &warden.Tool{Name: "notes", Kind: warden.ToolMCPCommand, Command: argv, Package: pkg}
	if err := Verify(tool, l.bin, l.ws); err != nil {
		t.Fatalf("unchanged files: %v", err)
	}
	if err := Verify(&warden.Tool{Name: "old", Command: argv}, l.bin, l.ws); err != nil {
		t.Errorf("a tool added before packages were pinned: %v", err)
	}

	var changed *ChangedError
	write(t, l.script, "console.log('exfiltrate')\n", 0o644)
	if err := Verify(tool, l.bin, l.ws); !errors.As(err, &changed) || changed.Path != l.script || changed.Want != pkg.Digest || changed.Got == "" {
		t.Errorf("script changed: %v (%+v)", err, changed)
	}
	write(t, l.script, "console.log('serve')\n", 0o644)

	// Another program earlier in the PATH: what the start would run now is another file.
	other := t.TempDir()
	write(t, filepath.Join(other, "node"), "#!/bin/sh\necho evil\n", 0o755)
	if err := Verify(tool, other+string(os.PathListSeparator)+l.bin, l.ws); !errors.As(err, &changed) || changed.Path != filepath.Join(other, "node") {
		t.Errorf("program shadowed in the PATH: %v", err)
	}
	if err := os.Remove(l.script); err != nil {
		t.Fatal(err)
	}
	if err := Verify(tool, l.bin, l.ws); !errors.As(err, &changed) || changed.Path != l.script+" is no longer run" {
		t.Errorf("script removed: %v", err)
	}
	if err := os.Remove(l.prog); err != nil {
		t.Fatal(err)
	}
	if err := Verify(tool, l.bin, l.ws); !errors.As(err, &changed) || changed.Got != "" {
		t.Errorf("program removed: %v", err)
	}
}

func TestVerifyUnknownSource(t *testing.T) {
	l := newLayout(t)
	tool := &warden.Tool{Name: "pip", Kind: warden.ToolMCPCommand, Command: []string{"node", l.script},
		Package: &warden.ToolPackage{Source: "pip", Digest: "sha256:x"}}
	if err := Verify(tool, l.bin, l.ws); err == nil {
		t.Error("a package of an unknown source was verified")
	}
}

// FuzzFiles: whatever the command, resolving it neither panics nor names a file twice, and
// pinning it twice gives one digest.
func FuzzFiles(f *testing.F) {
	l := newLayout(f)
	f.Add("node", "server.js", "-y")
	f.Add("/bin/sh", "../ws/server.js", "")
	f.Add("node", "/etc/passwd", "server.js")
	f.Add("./x", "\x00", "..")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		argv := []string{a, b, c}
		files, err := Files(argv, l.bin, l.ws)
		if err != nil {
			return
		}
		for i, p := range files {
			if !filepath.IsAbs(p) || slices.Contains(files[:i], p) {
				t.Fatalf("files %q", files)
			}
		}
		p1, err1 := Pin(argv, l.bin, l.ws)
		p2, err2 := Pin(argv, l.bin, l.ws)
		if (err1 == nil) != (err2 == nil) || err1 == nil && p1.Digest != p2.Digest {
			t.Fatalf("pinning twice: %v %v", err1, err2)
		}
	})
}

// BenchmarkVerify is what every start of a local server pays: resolving its command again and
// digesting its files, here the test binary (tens of MB, as a node or python binary is) and a
// script.
func BenchmarkVerify(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	l := newLayout(b)
	argv := []string{exe, "server.js"}
	pkg, err := Pin(argv, l.bin, l.ws)
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(exe)
	if err != nil {
		b.Fatal(err)
	}
	tool := &warden.Tool{Name: "bench", Command: argv, Package: pkg}
	b.SetBytes(fi.Size())
	for b.Loop() {
		if err := Verify(tool, l.bin, l.ws); err != nil {
			b.Fatal(err)
		}
	}
}
