package skill

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/wardenhq/warden"
)

const manifest = "---\nname: pdf-notes\ndescription: Summarise PDF files into notes. Use when the user shares a PDF.\nallowed-tools: Read Bash(pdftotext:*)\nmetadata:\n  author: team-docs\n---\n# PDF notes\n\nRun scripts/extract.sh FILE.\n"

// fixture is a small skill: path → content; a trailing "*" on the path makes it executable.
var fixture = map[string]string{
	"SKILL.md":             manifest,
	"scripts/extract.sh*":  "#!/bin/sh\npdftotext \"$1\" -\n",
	"references/format.md": "# Format\nOne note per page.\n",
}

func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		mode := os.FileMode(0o644)
		if name, ok := strings.CutSuffix(p, "*"); ok {
			p, mode = name, 0o755
		}
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type entry struct {
	name     string
	typeflag byte
	mode     int64
	body     string
	size     int64 // declared; -1: len(body)
	link     string
}

func tarGz(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		size := e.size
		if size < 0 || e.typeflag != tar.TypeReg {
			size = int64(len(e.body))
		}
		if e.typeflag != tar.TypeReg {
			size = 0
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: e.mode, Size: size, Linkname: e.link}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func fixtureEntries(prefix string) []entry {
	var es []entry
	for p, content := range fixture {
		mode := int64(0o644)
		if name, ok := strings.CutSuffix(p, "*"); ok {
			p, mode = name, 0o755
		}
		es = append(es, entry{name: prefix + p, typeflag: tar.TypeReg, mode: mode, body: content, size: -1})
	}
	slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	return es
}

func zipOf(t *testing.T, prefix string, symlink bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range fixtureEntries(prefix) {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(os.FileMode(e.mode))
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	if symlink {
		h := &zip.FileHeader{Name: prefix + "evil"}
		h.SetMode(os.ModeSymlink | 0o777)
		w, _ := zw.CreateHeader(h)
		w.Write([]byte("/etc/passwd"))
	}
	zw.Close()
	return buf.Bytes()
}

// The digest is of the files alone: a folder, a tarball (with or without a top folder) and a
// zip of the same files agree, and the canonical archive reads back to the same digest.
func TestDigestIsTheFiles(t *testing.T) {
	fromDir, err := ReadDir(writeDir(t, fixture), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := fromDir.Digest()
	if !strings.HasPrefix(want, "sha256:") || len(want) != 7+64 {
		t.Fatalf("digest %q", want)
	}
	for name, data := range map[string][]byte{
		"tar.gz":            tarGz(t, fixtureEntries("")),
		"tar.gz top folder": tarGz(t, append([]entry{{name: "pdf-notes/", typeflag: tar.TypeDir, mode: 0o755}}, fixtureEntries("pdf-notes/")...)),
		"zip":               zipOf(t, "", false),
		"zip top folder":    zipOf(t, "pdf-notes/", false),
	} {
		tr, err := ReadArchive(data, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := tr.Digest(); got != want {
			t.Errorf("%s: digest %s, want %s", name, got, want)
		}
	}
	var canon bytes.Buffer
	if err := fromDir.Archive(&canon); err != nil {
		t.Fatal(err)
	}
	back, err := ReadArchive(canon.Bytes(), Limits{})
	if err != nil || back.Digest() != want {
		t.Fatalf("canonical archive reads back as %v, %v", back, err)
	}
	out := filepath.Join(t.TempDir(), "mounted")
	if err := fromDir.WriteDir(out, -1, -1); err != nil {
		t.Fatal(err)
	}
	again, err := ReadDir(out, Limits{})
	if err != nil || again.Digest() != want {
		t.Fatalf("written folder reads back as %v, %v", again, err)
	}
	// Private to the runner, and read-only: the executable bit, which the digest covers, is kept.
	for p, mode := range map[string]os.FileMode{".": 0o700, "scripts": 0o700, "scripts/extract.sh": 0o500, "SKILL.md": 0o400} {
		if st, err := os.Stat(filepath.Join(out, p)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s written as %v, %v; want %v", p, st.Mode().Perm(), err, mode)
		}
	}
}

// Any change to a file's content, name or executable bit is a different digest.
func TestDigestSeesEveryChange(t *testing.T) {
	base, _ := ReadDir(writeDir(t, fixture), Limits{})
	for name, change := range map[string]func(m map[string]string){
		"content": func(m map[string]string) { m["references/format.md"] += " " },
		"exec": func(m map[string]string) {
			m["scripts/extract.sh"] = m["scripts/extract.sh*"]
			delete(m, "scripts/extract.sh*")
		},
		"rename": func(m map[string]string) {
			m["references/format2.md"] = m["references/format.md"]
			delete(m, "references/format.md")
		},
		"added": func(m map[string]string) { m["empty"] = "" },
		"moved": func(m map[string]string) {
			m["references/x/format.md"] = m["references/format.md"]
			delete(m, "references/format.md")
		},
	} {
		m := map[string]string{}
		for k, v := range fixture {
			m[k] = v
		}
		change(m)
		tr, err := ReadDir(writeDir(t, m), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if tr.Digest() == base.Digest() {
			t.Errorf("%s: same digest", name)
		}
	}
}

func TestReadDirRefuses(t *testing.T) {
	cases := map[string]func(dir string){
		"symlink to a file outside": func(dir string) { os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")) },
		"symlink to a folder":       func(dir string) { os.Symlink("/etc", filepath.Join(dir, "etc")) },
		"symlink inside":            func(dir string) { os.Symlink("SKILL.md", filepath.Join(dir, "again.md")) },
		"fifo":                      func(dir string) { syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644) },
		"no SKILL.md":               func(dir string) { os.Remove(filepath.Join(dir, "SKILL.md")) },
		"too deep":                  func(dir string) { os.MkdirAll(filepath.Join(dir, strings.Repeat("d/", 20)), 0o755) },
	}
	for name, mutate := range cases {
		dir := writeDir(t, fixture)
		mutate(dir)
		_, err := ReadDir(dir, Limits{})
		if warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%s: err %v, want EInvalid", name, err)
		}
	}
	if _, err := ReadDir(filepath.Join(t.TempDir(), "missing"), Limits{}); warden.ErrorCode(err) != warden.EInvalid {
		t.Errorf("missing folder: %v", err)
	}
}

func TestLimits(t *testing.T) {
	dir := writeDir(t, fixture)
	lim := DefaultLimits
	lim.MaxFiles = 2
	if _, err := ReadDir(dir, lim); err == nil || !strings.Contains(err.Error(), "more than 2 files") {
		t.Errorf("file count: %v", err)
	}
	lim = DefaultLimits
	lim.MaxFileBytes = 40
	if _, err := ReadDir(dir, lim); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("file size: %v", err)
	}
	lim = DefaultLimits
	lim.MaxBytes = int64(len(manifest) + 10)
	if _, err := ReadDir(dir, lim); err == nil || !strings.Contains(err.Error(), "size limit") {
		t.Errorf("total size: %v", err)
	}
	// A gzip bomb: 64 MiB of zeros in a few KiB stops at the limit.
	bomb := tarGz(t, append(fixtureEntries(""), entry{name: "zeros", typeflag: tar.TypeReg, mode: 0o644, body: strings.Repeat("\x00", 64<<20), size: -1}))
	lim = DefaultLimits
	lim.MaxBytes = 1 << 20
	if _, err := ReadArchive(bomb, lim); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("bomb: %v", err)
	}
}

func TestReadArchiveRefuses(t *testing.T) {
	reg := func(name string) entry {
		return entry{name: name, typeflag: tar.TypeReg, mode: 0o644, body: "x", size: -1}
	}
	cases := map[string][]entry{
		"dot-dot":             {reg("../evil")},
		"dot-dot inside":      {reg("a/../../evil")},
		"absolute":            {reg("/etc/cron.d/evil")},
		"drive letter":        {reg("C:/evil")},
		"backslash":           {reg("a\\..\\evil")},
		"control character":   {reg("a\nb")},
		"symlink":             {{name: "evil", typeflag: tar.TypeSymlink, link: "/etc/passwd"}},
		"hard link":           {{name: "evil", typeflag: tar.TypeLink, link: "SKILL.md"}},
		"device":              {{name: "evil", typeflag: tar.TypeChar}},
		"duplicate":           {reg("dup"), reg("dup")},
		"duplicate by clean":  {reg("a/b"), reg("a//b")},
		"file and directory":  {reg("a"), reg("a/b")},
		"dot-dot in a folder": {{name: "../", typeflag: tar.TypeDir, mode: 0o755}},
	}
	for name, es := range cases {
		data := tarGz(t, append(fixtureEntries(""), es...))
		if _, err := ReadArchive(data, Limits{}); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%s: err %v, want EInvalid", name, err)
		}
	}
	if _, err := ReadArchive(zipOf(t, "", true), Limits{}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("zip symlink: %v", err)
	}
	for name, data := range map[string][]byte{"empty": nil, "text": []byte("hello"), "truncated gzip": tarGz(t, fixtureEntries(""))[:40]} {
		if _, err := ReadArchive(data, Limits{}); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestManifest(t *testing.T) {
	tr, err := ReadDir(writeDir(t, fixture), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := tr.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "pdf-notes" || !strings.HasPrefix(m.Description, "Summarise") || !slices.Equal(m.AllowedTools, []string{"Read", "Bash(pdftotext:*)"}) ||
		m.Metadata["author"] != "team-docs" || !strings.HasPrefix(m.Body, "# PDF notes") {
		t.Fatalf("manifest %+v", m)
	}
	crlf, err := ParseManifest([]byte(strings.ReplaceAll(manifest, "\n", "\r\n")))
	if err != nil || crlf.Name != "pdf-notes" {
		t.Fatalf("CRLF: %v", err)
	}
	bad := map[string]string{
		"no front matter":      "# PDF notes\n",
		"unclosed":             "---\nname: x\ndescription: y\n",
		"no name":              "---\ndescription: y\n---\n",
		"upper-case name":      "---\nname: PDF\ndescription: y\n---\n",
		"leading hyphen":       "---\nname: -pdf\ndescription: y\n---\n",
		"double hyphen":        "---\nname: pdf--notes\ndescription: y\n---\n",
		"long name":            "---\nname: " + strings.Repeat("a", 65) + "\ndescription: y\n---\n",
		"no description":       "---\nname: pdf\n---\n",
		"long description":     "---\nname: pdf\ndescription: " + strings.Repeat("a", 1025) + "\n---\n",
		"unknown key":          "---\nname: pdf\ndescription: y\nallowed_tools: Read\n---\n",
		"metadata not strings": "---\nname: pdf\ndescription: y\nmetadata:\n  a: [1]\n---\n",
		"not UTF-8":            "---\nname: pdf\ndescription: \xff\n---\n",
	}
	for name, text := range bad {
		if _, err := ParseManifest([]byte(text)); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%s: err %v, want EInvalid", name, err)
		}
	}
}

// readAll gives every byte, whatever the size it was told: none, short, exact or long.
func TestReadAll(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 300)
	for _, size := range []int64{-1, 0, 1, 511, 2999, 3000, 3001, 1 << 20} {
		got, err := readAll(iotest.HalfReader(bytes.NewReader(data)), size)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	if _, err := readAll(iotest.TimeoutReader(bytes.NewReader(data)), 10); err == nil {
		t.Fatal("a read error was lost")
	}
}
