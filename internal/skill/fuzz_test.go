package skill

import (
	"archive/tar"
	"bytes"
	"testing"

	"github.com/wardenhq/warden"
)

// FuzzReadArchive: any bytes are read as a skill or refused as invalid, never a panic; a skill
// read has a SKILL.md, clean paths, and reads back from its canonical archive to its digest.
func FuzzReadArchive(f *testing.F) {
	t := &testing.T{}
	f.Add(tarGz(t, fixtureEntries("")))
	f.Add(zipOf(t, "top/", false))
	f.Add(tarGz(t, append(fixtureEntries(""), entry{name: "../x", typeflag: tar.TypeReg, body: "x", size: -1})))
	f.Add([]byte("PK\x05\x06"))
	lim := Limits{MaxFiles: 50, MaxFileBytes: 1 << 16, MaxBytes: 1 << 18, MaxDepth: 8, MaxPath: 256}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ReadArchive(data, lim)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("error of kind %q: %v", warden.ErrorCode(err), err)
			}
			return
		}
		if tr.File(ManifestFile) == nil || len(tr.Files) > lim.MaxFiles || tr.Size > lim.MaxBytes {
			t.Fatalf("tree beyond its limits: %v", tr)
		}
		for _, file := range tr.Files {
			if _, err := newBuilder(lim).checkPath(file.Path); err != nil || file.Path[0] == '/' {
				t.Fatalf("unclean path %q", file.Path)
			}
		}
		var buf bytes.Buffer
		if err := tr.Archive(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadArchive(buf.Bytes(), lim)
		if err != nil || back.Digest() != tr.Digest() {
			t.Fatalf("canonical archive reads back as %v, %v", back, err)
		}
	})
}

// FuzzParseManifest: any SKILL.md parses or is refused as invalid; a parsed one is valid.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(manifest))
	f.Add([]byte("---\nname: a\ndescription: b\n---"))
	f.Add([]byte("---\nname: [a\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("error of kind %q", warden.ErrorCode(err))
			}
			return
		}
		if ValidateName(m.Name) != nil || m.Description == "" {
			t.Fatalf("invalid manifest accepted: %+v", m)
		}
	})
}
