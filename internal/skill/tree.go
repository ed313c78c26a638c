// Package skill reads Agent Skills (a folder with a SKILL.md, scripts and references) into an
// immutable, verified form: every file in memory, a canonical digest over the whole tree, the
// SKILL.md front matter validated. What is read is checked as it is read — no symlink, no path
// out of the root, no device, no duplicate, bounded in size and count — so a skill that passes
// is exactly the bytes its digest names.
package skill

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// Limits bound what a skill may hold.
type Limits struct {
	MaxFiles     int   // files in the tree
	MaxFileBytes int64 // one file
	MaxBytes     int64 // all files together (for an archive: after decompression)
	MaxDepth     int   // directories deep
	MaxPath      int   // bytes in one path
}

// DefaultLimits are generous for instructions and scripts, and stop archive bombs.
var DefaultLimits = Limits{MaxFiles: 2000, MaxFileBytes: 32 << 20, MaxBytes: 64 << 20, MaxDepth: 16, MaxPath: 512}

// File is one regular file of a skill.
type File struct {
	Path string // slash-separated, relative, clean: "scripts/run.sh"
	Exec bool   // executable: mode 0755 rather than 0644; no other mode bit is kept
	Data []byte
}

// Tree is a skill's files, sorted by path. It is never changed once read.
type Tree struct {
	Files []File
	// Size is the sum of the files' sizes.
	Size int64
}

// ManifestFile is the file every skill holds.
const ManifestFile = "SKILL.md"

// Digest is the tree's canonical digest, "sha256:<hex>": SHA-256 over one line per file in path
// order, "<mode> <sha256 of the content, hex> <length of the path>:<path>\n", where mode is
// 0644 or 0755. Directories, timestamps, owners and an archive's own format do not count, so the
// same files give the same digest from a folder, a tarball or a zip.
func (t *Tree) Digest() string {
	h := sha256.New()
	for _, f := range t.Files {
		sum := sha256.Sum256(f.Data)
		mode := "0644"
		if f.Exec {
			mode = "0755"
		}
		fmt.Fprintf(h, "%s %s %d:%s\n", mode, hex.EncodeToString(sum[:]), len(f.Path), f.Path)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// File returns the file at path, or nil.
func (t *Tree) File(p string) *File {
	i, ok := slices.BinarySearchFunc(t.Files, p, func(f File, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return nil
	}
	return &t.Files[i]
}

// builder collects files under the limits.
type builder struct {
	lim   Limits
	files map[string]File
	size  int64
}

func newBuilder(lim Limits) *builder {
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	return &builder{lim: lim, files: map[string]File{}}
}

// checkPath refuses every path that is not a plain relative path inside the root.
func (b *builder) checkPath(p string) (string, error) {
	switch {
	case p == "" || !utf8.ValidString(p) || strings.ContainsAny(p, "\x00\\") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", fmt.Errorf("path %q: not a plain path (no backslashes, control characters or invalid UTF-8)", p)
	case path.IsAbs(p) || len(p) >= 2 && p[1] == ':':
		return "", fmt.Errorf("path %q: absolute paths are refused", p)
	case len(p) > b.lim.MaxPath:
		return "", fmt.Errorf("path %q…: longer than %d bytes", p[:32], b.lim.MaxPath)
	}
	for _, el := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if el == ".." {
			return "", fmt.Errorf("path %q: '..' is refused", p)
		}
	}
	clean := path.Clean(p)
	if clean == "." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("path %q: outside the skill", p)
	}
	if strings.Count(clean, "/") >= b.lim.MaxDepth {
		return "", fmt.Errorf("path %q: deeper than %d directories", p, b.lim.MaxDepth)
	}
	return clean, nil
}

// add reads one regular file of at most declared bytes (-1: unknown) from r.
func (b *builder) add(p string, exec bool, declared int64, r io.Reader) error {
	clean, err := b.checkPath(p)
	if err != nil {
		return err
	}
	if _, dup := b.files[clean]; dup {
		return fmt.Errorf("path %q: appears twice", p)
	}
	if len(b.files) >= b.lim.MaxFiles {
		return fmt.Errorf("more than %d files", b.lim.MaxFiles)
	}
	if declared > b.lim.MaxFileBytes {
		return fmt.Errorf("%s: %d bytes, over the limit of %d per file", clean, declared, b.lim.MaxFileBytes)
	}
	room := min(b.lim.MaxFileBytes, b.lim.MaxBytes-b.size)
	data, err := readAll(io.LimitReader(r, room+1), min(declared, room))
	if err != nil {
		return fmt.Errorf("%s: %w", clean, err)
	}
	if int64(len(data)) > room {
		return fmt.Errorf("%s: over the size limit (%d bytes per file, %d in all)", clean, b.lim.MaxFileBytes, b.lim.MaxBytes)
	}
	if declared >= 0 && int64(len(data)) != declared {
		return fmt.Errorf("%s: %d bytes where the archive declares %d", clean, len(data), declared)
	}
	b.size += int64(len(data))
	b.files[clean] = File{Path: clean, Exec: exec, Data: data}
	return nil
}

// readAll is io.ReadAll with room made for size bytes (when size ≥ 0) and one more, to see the
// end: a file read whole in one buffer rather than grown from 512 bytes by copies. size is
// bounded by the limits, so a header that lies costs at most what a true one could.
func readAll(r io.Reader, size int64) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(max(size, 0)) + bytes.MinRead) // one allocation when size is right
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

func (b *builder) tree() (*Tree, error) {
	t := &Tree{Size: b.size}
	for _, f := range b.files {
		t.Files = append(t.Files, f)
	}
	slices.SortFunc(t.Files, func(x, y File) int { return strings.Compare(x.Path, y.Path) })
	// A file and a directory of one name (from an archive that lists both) cannot both be.
	for i := 1; i < len(t.Files); i++ {
		if strings.HasPrefix(t.Files[i].Path, t.Files[i-1].Path+"/") {
			return nil, fmt.Errorf("path %q is both a file and a directory", t.Files[i-1].Path)
		}
	}
	if t.File(ManifestFile) == nil {
		return nil, warden.Errorf(warden.EInvalid, "no %s at the skill's root", ManifestFile)
	}
	return t, nil
}

func invalid(err error) error {
	var we *warden.Error
	if errors.As(err, &we) {
		return err
	}
	return warden.Errorf(warden.EInvalid, "skill: %v", err)
}

// ReadDir reads the skill in the folder dir. Symlinks, devices, sockets and pipes are refused
// wherever they are (a skill is plain files); the folder is opened as an os.Root, so nothing
// outside it is read even if the folder changes while it is read.
func ReadDir(dir string, lim Limits) (*Tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "skill folder: %v", err)
	}
	defer root.Close()
	b := newBuilder(lim)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		switch mode := d.Type(); {
		case mode.IsDir():
			if strings.Count(p, "/") >= b.lim.MaxDepth {
				return fmt.Errorf("%s: deeper than %d directories", p, b.lim.MaxDepth)
			}
			return nil
		case mode&fs.ModeSymlink != 0:
			return fmt.Errorf("%s: symlinks are refused (a skill is plain files)", p)
		case !mode.IsRegular():
			return fmt.Errorf("%s: not a regular file (%s)", p, mode.Type())
		}
		// Non-blocking, so that a file swapped for a pipe since the walk saw it cannot hang the
		// read; the Stat below refuses it.
		f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() { // replaced since the walk saw it
			return fmt.Errorf("%s: not a regular file", p)
		}
		return b.add(p, st.Mode().Perm()&0o111 != 0, st.Size(), f)
	})
	if err != nil {
		return nil, invalid(err)
	}
	t, err := b.tree()
	if err != nil {
		return nil, invalid(err)
	}
	return t, nil
}

// ReadArchive reads a skill from a .tar, .tar.gz (.tgz) or .zip archive, told apart by their
// first bytes. Entries are plain files and directories only: links, devices and the like are
// refused, as are absolute paths, '..', duplicates and anything over the limits (counted as the
// bytes come out of the decompressor, so a bomb stops at the limit). A single top-level folder
// holding SKILL.md is taken as the skill's root, as archives of a folder usually have one.
func ReadArchive(data []byte, lim Limits) (*Tree, error) {
	t, err := readArchive(data, lim)
	if err != nil {
		return nil, invalid(err)
	}
	return t, nil
}

func readArchive(data []byte, lim Limits) (*Tree, error) {
	b := newBuilder(lim)
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")) || bytes.HasPrefix(data, []byte("PK\x05\x06")):
		if err := readZip(b, data); err != nil {
			return nil, err
		}
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		if err := readTar(b, zr); err != nil {
			return nil, err
		}
	case len(data) >= 512 && string(data[257:262]) == "ustar":
		if err := readTar(b, bytes.NewReader(data)); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("not a .tar, .tar.gz or .zip archive")
	}
	return stripTopFolder(b)
}

func readTar(b *builder, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if _, err := b.checkPath(h.Name); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := b.add(h.Name, h.Mode&0o111 != 0, h.Size, tr); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
		default:
			return fmt.Errorf("%s: entry type %q refused (only files and directories)", h.Name, string(h.Typeflag))
		}
	}
}

func readZip(b *builder, data []byte) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	if len(zr.File) > b.lim.MaxFiles*2 {
		return fmt.Errorf("more than %d entries", b.lim.MaxFiles*2)
	}
	for _, zf := range zr.File {
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if _, err := b.checkPath(zf.Name); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("%s: %s entries refused (only files and directories)", zf.Name, mode.Type())
		}
		declared := int64(zf.UncompressedSize64)
		if zf.UncompressedSize64 > uint64(b.lim.MaxBytes) {
			return fmt.Errorf("%s: declares %d bytes, over the limit", zf.Name, zf.UncompressedSize64)
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("%s: %w", zf.Name, err)
		}
		err = b.add(zf.Name, mode.Perm()&0o111 != 0, declared, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// stripTopFolder makes a single top-level folder holding SKILL.md the root.
func stripTopFolder(b *builder) (*Tree, error) {
	if _, ok := b.files[ManifestFile]; ok || len(b.files) == 0 {
		return b.tree()
	}
	top := ""
	for p := range b.files {
		first, _, nested := strings.Cut(p, "/")
		if !nested || top != "" && first != top {
			return b.tree() // files at the root, or several folders: no single root to strip
		}
		top = first
	}
	if _, ok := b.files[top+"/"+ManifestFile]; !ok {
		return b.tree()
	}
	moved := map[string]File{}
	for p, f := range b.files {
		f.Path = strings.TrimPrefix(p, top+"/")
		moved[f.Path] = f
	}
	b.files = moved
	return b.tree()
}

// Archive writes the tree as a canonical .tar.gz: files in path order, modes 0644 or 0755,
// owner 0, a fixed time, no directories. Reading it back gives the same digest. It is
// compressed at gzip's best speed: `warden skill add` packs a skill on the client and again on
// the server, and the default level took about 0.35 s of CPU for 10 MB of text, five times
// best speed's, for an archive about a fifth smaller.
func (t *Tree) Archive(w io.Writer) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0).UTC()
	for _, f := range t.Files {
		mode := int64(0o644)
		if f.Exec {
			mode = 0o755
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Path, Mode: mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// WriteDir writes the tree into dir, which must not exist yet, for mounting read-only into a
// sandbox: directories 0700, files 0400, or 0500 when executable (the one mode bit the digest
// covers), all given to uid and gid unless uid is negative. Reading dir back gives the tree's
// digest.
func (t *Tree) WriteDir(dir string, uid, gid int) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	own := func(p string, mode fs.FileMode) error {
		if err := root.Chmod(p, mode); err != nil { // the umask may have taken bits away
			return err
		}
		if uid < 0 {
			return nil
		}
		return root.Lchown(p, uid, gid)
	}
	if err := own(".", 0o700); err != nil {
		return err
	}
	made := map[string]bool{}
	for _, f := range t.Files {
		var parents []string
		for d := path.Dir(f.Path); d != "." && !made[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for _, d := range slices.Backward(parents) {
			if err := root.Mkdir(d, 0o700); err != nil {
				return err
			}
			if err := own(d, 0o700); err != nil {
				return err
			}
			made[d] = true
		}
		mode := fs.FileMode(0o400)
		if f.Exec {
			mode = 0o500
		}
		if err := root.WriteFile(f.Path, f.Data, mode); err != nil {
			return err
		}
		if err := own(f.Path, mode); err != nil {
			return err
		}
	}
	return nil
}

// String describes the tree for logs: its digest, file count and size.
func (t *Tree) String() string {
	return t.Digest() + " (" + strconv.Itoa(len(t.Files)) + " files, " + strconv.FormatInt(t.Size, 10) + " bytes)"
}
