package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// sensitiveEtc are hidden inside /etc whatever their mode; entries of /etc that others may
// not read are hidden too (see etcMasks).
var sensitiveEtc = []string{
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
	"/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd", "/etc/krb5.keytab", "/etc/warden",
}

// devices are bound from the host's /dev; everything else there is hidden.
var devices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

// procMasks hide kernel state a sandboxed process has no business reading; procReadOnly stay
// visible but cannot be written (a user mapped to the host's root keeps file ownership).
var (
	procMasks    = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/sysrq-trigger", "/proc/kmsg", "/proc/acpi", "/proc/scsi"}
	procReadOnly = []string{"/proc/sys", "/proc/irq", "/proc/bus", "/proc/fs"}
)

// plan lays out the sandbox's root.
func plan(s *Spec) ([]mount, error) {
	var ms []mount
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				return nil, err
			}
			ms = append(ms, mount{Kind: "symlink", Src: target, Dst: d})
		case fi.IsDir():
			ms = append(ms, mount{Kind: "bind", Src: d, Dst: d})
		}
	}
	ms = append(ms,
		mount{Kind: "tmpfs", Dst: "/tmp", Mode: 0o1777, Scratch: true},
		mount{Kind: "dir", Dst: HomeDir, Mode: 0o700, Own: true},
	)
	home, err := homeBinds(s.Binds)
	if err != nil {
		return nil, err
	}
	ms = append(ms, home...)
	ms = append(ms, mount{Kind: "proc", Dst: "/proc"})
	for _, p := range procMasks {
		ms = append(ms, mount{Kind: "mask", Dst: p})
	}
	for _, p := range procReadOnly {
		ms = append(ms, mount{Kind: "bind", Src: p, Dst: p})
	}
	ms = append(ms, mount{Kind: "tmpfs", Dst: "/dev", Mode: 0o755})
	for _, d := range devices {
		if _, err := os.Stat(d); err == nil {
			ms = append(ms, mount{Kind: "bind", Src: d, Dst: d, RW: true, Dev: true, File: true})
		}
	}
	ms = append(ms,
		mount{Kind: "devpts", Dst: "/dev/pts"},
		mount{Kind: "symlink", Src: "pts/ptmx", Dst: "/dev/ptmx"},
		mount{Kind: "tmpfs", Dst: "/dev/shm", Mode: 0o1777, Scratch: true},
		mount{Kind: "symlink", Src: "/proc/self/fd", Dst: "/dev/fd"},
		mount{Kind: "symlink", Src: "/proc/self/fd/0", Dst: "/dev/stdin"},
		mount{Kind: "symlink", Src: "/proc/self/fd/1", Dst: "/dev/stdout"},
		mount{Kind: "symlink", Src: "/proc/self/fd/2", Dst: "/dev/stderr"},
	)

	// The caller's paths, parents before children, so that a read-only path inside the
	// workspace lands on top of it.
	type userBind struct {
		path string
		rw   bool
	}
	binds := []userBind{{s.Workspace, true}}
	for _, p := range s.ReadOnly {
		binds = append(binds, userBind{p, false})
	}
	for _, p := range s.ReadWrite {
		binds = append(binds, userBind{p, true})
	}
	slices.SortStableFunc(binds, func(a, b userBind) int { return strings.Compare(a.path, b.path) })
	for _, b := range binds {
		fi, err := os.Stat(b.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.path, err)
		}
		ms = append(ms, mount{Kind: "bind", Src: b.path, Dst: b.path, RW: b.rw, File: !fi.IsDir()})
	}
	// The masks of /etc come after the caller's paths, so that naming /etc or a path in it
	// (read-only or not) cannot bind a hidden entry back into view.
	masks, err := etcMasks()
	if err != nil {
		return nil, err
	}
	ms = append(ms, masks...)
	prot, err := protectedMounts(s.Workspace, s.protected())
	if err != nil {
		return nil, err
	}
	return append(ms, prot...), nil
}

// homeBinds shows each bind's source read-only at its target inside HomeDir. The directories
// between HomeDir and the target are made first and given to the command's user, so that
// $HOME/.claude stays the command's to write in; the target itself, a mount point, can be
// neither written, renamed nor removed.
func homeBinds(binds []Bind) ([]mount, error) {
	var ms []mount
	made := map[string]bool{}
	for _, b := range binds {
		fi, err := os.Stat(b.Src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.Src, err)
		}
		rel := strings.TrimPrefix(b.Dst, HomeDir+"/")
		parts := strings.Split(rel, "/")
		cur := HomeDir
		for _, part := range parts[:len(parts)-1] {
			cur += "/" + part
			if !made[cur] {
				made[cur] = true
				ms = append(ms, mount{Kind: "dir", Dst: cur, Mode: 0o700, Own: true})
			}
		}
		ms = append(ms, mount{Kind: "bind", Src: b.Src, Dst: b.Dst, File: !fi.IsDir()})
	}
	return ms, nil
}

// etcMasks hides the sensitive files of /etc: the fixed list, anything others may not read at
// the top of /etc or in the directories that usually hold keys, and the resolver configuration
// (there is no DNS inside).
func etcMasks() ([]mount, error) {
	seen := map[string]bool{}
	var ms []mount
	add := func(p string) {
		fi, err := os.Lstat(p)
		if err != nil || seen[p] || fi.Mode()&fs.ModeSymlink != 0 {
			return
		}
		seen[p] = true
		ms = append(ms, mount{Kind: "mask", Dst: p, File: !fi.IsDir()})
	}
	for _, p := range sensitiveEtc {
		add(p)
	}
	if r, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && strings.HasPrefix(r, "/etc/") {
		add(r)
	}
	// Entries others may not read, at the top of /etc and in the directories that hold keys.
	for _, dir := range []string{"/etc", "/etc/ssl", "/etc/pki", "/etc/security", "/etc/kubernetes"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Type()&fs.ModeSymlink != 0 {
				continue
			}
			if info, err := e.Info(); err == nil && info.Mode().Perm()&0o004 == 0 {
				add(filepath.Join(dir, e.Name()))
			}
		}
	}
	slices.SortFunc(ms, func(a, b mount) int { return strings.Compare(a.Dst, b.Dst) })
	// A mask inside a masked directory is redundant and would fail (its mount point is gone).
	out := ms[:0]
	for _, m := range ms {
		if len(out) > 0 && !out[len(out)-1].File && strings.HasPrefix(m.Dst, out[len(out)-1].Dst+"/") {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// protectedMounts keeps each protected path read-only. Every directory between the workspace
// and the path becomes a mount point of its own (bound onto itself), because a mount point
// cannot be renamed or removed: otherwise `mv .git x && mkdir -p .git/hooks` would get round a
// read-only .git/hooks. A protected directory (written with a trailing slash) that is missing
// under an existing parent is created first, as git itself would, so that it cannot be created
// inside; a missing protected file has nothing to protect.
func protectedMounts(ws string, paths []string) ([]mount, error) {
	var ms []mount
	done := map[string]bool{}
	for _, rel := range paths {
		dir := strings.HasSuffix(rel, "/")
		parts := strings.Split(filepath.Clean(rel), string(filepath.Separator))
		cur := ws
		for i, part := range parts {
			cur = filepath.Join(cur, part)
			last := i == len(parts)-1
			fi, err := os.Lstat(cur)
			if errors.Is(err, fs.ErrNotExist) && last && dir && i > 0 {
				if err := os.Mkdir(cur, 0o755); err != nil {
					return nil, fmt.Errorf("protecting %s: %w", cur, err)
				}
				fi, err = os.Lstat(cur)
			}
			if errors.Is(err, fs.ErrNotExist) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("protecting %s: %w", cur, err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return nil, fmt.Errorf("protected path %s is a symlink inside the workspace; refusing to guess what it protects", cur)
			}
			if done[cur] {
				continue
			}
			done[cur] = true
			ms = append(ms, mount{Kind: "bind", Src: cur, Dst: cur, RW: !last, File: !fi.IsDir(), Guard: true})
		}
	}
	return ms, nil
}
