package sandbox

// We do not use Go-Landlock (github.com/landlock-lsm/go-landlock) because the command must be
// restricted, not warden: Go before 1.28 has no hook between fork and exec, so the init enforces
// the ruleset on one locked OS thread and forks the command from it (see initproc), which
// Go-Landlock's API does not offer; and its syscall package would link psx, which wraps
// pthread_create for the whole warden binary. The runner negotiates the access rights down to
// the kernel's ABI here; the init (package initproc) makes the three Landlock system calls as
// the kernel documents them.

import (
	"github.com/wardenhq/warden/internal/sandbox/initproc"
	"golang.org/x/sys/unix"
)

// Landlock access rights by the ABI that introduced them.
const (
	llFSv1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
		unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	llRead  = unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_EXECUTE
	llWrite = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	// llDevice is what a bound device node needs: read, write, truncate (a shell's "> /dev/null")
	// and its ioctls.
	llDevice = unix.LANDLOCK_ACCESS_FS_READ_FILE | llWrite | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// landlockABI returns the kernel's Landlock ABI version, 0 when Landlock is absent or disabled.
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// handledFS is every filesystem right the ABI knows: a right the ruleset does not handle is
// not restricted at all.
func handledFS(abi int) uint64 {
	h := uint64(llFSv1)
	if abi >= 2 {
		h |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		h |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		h |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	if abi >= 9 {
		h |= unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX
	}
	return h
}

// landlockPlan is what the init enforces.
type landlockPlan struct {
	ABI   int  // 0: no Landlock
	Net   bool // restrict TCP connect (and UDP from ABI 10) to Ports
	Scope bool // scope abstract unix sockets and signals to the sandbox
	Ports []int
}

// landlockRule grants access beneath path.
type landlockRule struct {
	path   string
	access uint64
}

// landlockRules derives the filesystem rules from the mounts: read and execute where the mount
// is read-only, everything where it is the command's to write, device access on device nodes.
func landlockRules(ms []mount) []landlockRule {
	rules := []landlockRule{{"/", unix.LANDLOCK_ACCESS_FS_READ_DIR}}
	for _, m := range ms {
		switch m.Kind {
		case "bind":
			switch {
			case m.Dev:
				rules = append(rules, landlockRule{m.Dst, llDevice})
			case m.RW && m.File:
				rules = append(rules, landlockRule{m.Dst, llRead | llWrite})
			case m.RW:
				rules = append(rules, landlockRule{m.Dst, ^uint64(0)})
			default:
				rules = append(rules, landlockRule{m.Dst, llRead})
			}
		case "tmpfs":
			if m.Scratch {
				rules = append(rules, landlockRule{m.Dst, ^uint64(0)})
			} else {
				rules = append(rules, landlockRule{m.Dst, unix.LANDLOCK_ACCESS_FS_READ_DIR})
			}
		case "proc":
			rules = append(rules, landlockRule{m.Dst, unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR})
		case "devpts":
			rules = append(rules, landlockRule{m.Dst, llDevice | unix.LANDLOCK_ACCESS_FS_READ_DIR})
		}
	}
	return rules
}

// ruleset is what the init enforces for this plan and these mounts: every right the ABI knows
// is handled, and each rule grants what landlockRules says, within what is handled.
func (p landlockPlan) ruleset(ms []mount) initproc.Landlock {
	if p.ABI == 0 {
		return initproc.Landlock{}
	}
	handled := handledFS(p.ABI)
	l := initproc.Landlock{HandledFS: handled, FileRights: llDevice | unix.LANDLOCK_ACCESS_FS_EXECUTE}
	for _, r := range landlockRules(ms) {
		l.Rules = append(l.Rules, initproc.PathRule{Path: r.path, Access: r.access & handled})
	}
	if p.Net && p.ABI >= 4 {
		l.HandledNet = unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		if p.ABI >= 10 {
			l.HandledNet |= unix.LANDLOCK_ACCESS_NET_BIND_UDP | unix.LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP
		}
		for _, port := range p.Ports {
			l.Ports = append(l.Ports, initproc.PortRule{Port: uint64(port), Access: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP})
		}
	}
	if p.Scope && p.ABI >= 6 {
		l.Scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
	}
	return l
}
