package sandbox

// We do not use Go-Landlock (github.com/landlock-lsm/go-landlock) because the command must be
// restricted, not warden: Go before 1.28 has no hook between fork and exec, so the init enforces
// the ruleset on one locked OS thread and forks the command from it (see start_linux.go), which
// Go-Landlock's API does not offer; and its syscall package would link psx, which wraps
// pthread_create for the whole warden binary. The calls below are the three Landlock system
// calls as the kernel documents them, with the access rights negotiated down to the kernel's ABI.

import (
	"fmt"
	"os"
	"unsafe"

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
	ABI   int   `json:"abi"`   // 0: no Landlock
	Net   bool  `json:"net"`   // restrict TCP connect (and UDP from ABI 10) to Ports
	Scope bool  `json:"scope"` // scope abstract unix sockets and signals to the sandbox
	Ports []int `json:"ports,omitempty"`
}

// rulesetAttr is struct landlock_ruleset_attr up to the fields warden sets.
type rulesetAttr struct {
	fs, net, scoped uint64
}

type pathBeneathAttr struct {
	access uint64
	fd     int32
}

type netPortAttr struct {
	access uint64
	port   uint64
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

// landlockRuleset builds the ruleset; the caller enforces it with restrictSelf.
func landlockRuleset(p landlockPlan, rules []landlockRule) (int, error) {
	handled := handledFS(p.ABI)
	attr := rulesetAttr{fs: handled}
	size := unsafe.Sizeof(attr.fs)
	if p.Net && p.ABI >= 4 {
		attr.net = unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		if p.ABI >= 10 {
			attr.net |= unix.LANDLOCK_ACCESS_NET_BIND_UDP | unix.LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP
		}
		size = unsafe.Offsetof(attr.scoped)
	}
	if p.Scope && p.ABI >= 6 {
		attr.scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size = unsafe.Sizeof(attr)
	}
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return -1, fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	ruleset := int(fd)
	for _, r := range rules {
		f, err := os.OpenFile(r.path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // a mount that is not there needs no rule
		}
		access := r.access & handled
		if fi, err := f.Stat(); err == nil && !fi.IsDir() {
			// Directory-only rights on a file are EINVAL.
			access &= llDevice | unix.LANDLOCK_ACCESS_FS_EXECUTE
		}
		pb := pathBeneathAttr{access: access, fd: int32(f.Fd())}
		_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		f.Close()
		if errno != 0 {
			unix.Close(ruleset)
			return -1, fmt.Errorf("landlock_add_rule %s: %w", r.path, errno)
		}
	}
	if attr.net&unix.LANDLOCK_ACCESS_NET_CONNECT_TCP != 0 {
		for _, port := range p.Ports {
			np := netPortAttr{access: unix.LANDLOCK_ACCESS_NET_CONNECT_TCP, port: uint64(port)}
			_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), landlockRuleNetPort, uintptr(unsafe.Pointer(&np)), 0, 0, 0)
			if errno != 0 {
				unix.Close(ruleset)
				return -1, fmt.Errorf("landlock_add_rule port %d: %w", port, errno)
			}
		}
	}
	return ruleset, nil
}

// landlockRuleNetPort is LANDLOCK_RULE_NET_PORT, which x/sys does not name yet.
const landlockRuleNetPort = 2

// restrictSelf enforces the ruleset on the calling thread only; no_new_privs must be set.
func restrictSelf(ruleset int) error {
	_, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(ruleset), 0, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}
