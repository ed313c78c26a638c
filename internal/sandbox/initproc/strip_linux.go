package initproc

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// startCommand forks the command from a locked OS thread that has been stripped first:
// cgroup namespace, no_new_privs, empty capability bounding set, locked securebits, Landlock
// and seccomp all apply to that thread alone, and the fork copies them into the command. The
// thread is never unlocked, so the Go runtime discards it when the goroutine ends; the init's
// other threads keep the privileges they need to reap and to talk to the runner.
func startCommand(cfg *Config, path string) (int, error) {
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		pid, err := stripAndFork(cfg, path)
		done <- result{pid, err}
	}()
	r := <-done
	return r.pid, r.err
}

func stripAndFork(cfg *Config, path string) (int, error) {
	if cfg.CgroupNS {
		if err := syscall.Unshare(syscall.CLONE_NEWCGROUP); err != nil {
			return 0, wrap("cgroup namespace", err)
		}
	}
	ruleset := -1
	if cfg.Landlock.HandledFS != 0 {
		var err error
		if ruleset, err = landlockRuleset(&cfg.Landlock); err != nil {
			return 0, err
		}
		defer syscall.Close(ruleset)
	}
	if err := prctl(prSetNoNewPrivs, 1); err != nil {
		return 0, wrap("no_new_privs", err)
	}
	if err := dropCapabilities(); err != nil {
		return 0, err
	}
	if ruleset >= 0 {
		if _, _, errno := syscall.RawSyscall(sysLandlockRestrictSelf, uintptr(ruleset), 0, 0); errno != 0 {
			return 0, wrap("landlock_restrict_self", errno)
		}
	}
	if len(cfg.Filter) > 0 {
		if err := loadFilter(cfg.Filter); err != nil {
			return 0, err
		}
	}
	attr := &syscall.ProcAttr{
		Dir:   cfg.Dir,
		Env:   cfg.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{},
	}
	if cfg.SetID {
		attr.Sys.Credential = &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID), Groups: []uint32{}}
	}
	pid, err := syscall.ForkExec(path, cfg.Argv, attr)
	if err != nil {
		return 0, wrap(path, err)
	}
	return pid, nil
}

// prctl(2) options and securebits (linux/prctl.h, linux/securebits.h): root gains no
// capabilities by exec, the ambient set cannot be raised, and neither can be undone.
const (
	prSetDumpable         = 4
	prSetSeccomp          = 22
	prCapbsetDrop         = 24
	prSetSecurebits       = 28
	prSetNoNewPrivs       = 38
	prCapAmbient          = 47
	prCapAmbientClearAll  = 4
	seccompModeFilter     = 2
	secbitNoroot          = 1 << 0
	secbitNorootLocked    = 1 << 1
	secbitNoSetuidFixupLk = 1 << 3
	secbitKeepCapsLocked  = 1 << 5
	secbitNoAmbientRaise  = 1 << 6
	secbitNoAmbientRaiseL = 1 << 7
)

func prctl(option, arg uintptr) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, option, arg, 0); errno != 0 {
		return errno
	}
	return nil
}

// dropCapabilities empties the calling thread's bounding and ambient sets and locks the
// securebits, so that what the command execs — as the namespace's root or not, setuid or not —
// starts with no capability at all. The thread keeps its own effective set until the fork's
// setuid, which clears it.
func dropCapabilities() error {
	last := lastCap()
	if err := prctl(prSetSecurebits, secbitNoroot|secbitNorootLocked|secbitNoSetuidFixupLk|
		secbitKeepCapsLocked|secbitNoAmbientRaise|secbitNoAmbientRaiseL); err != nil {
		return wrap("securebits", err)
	}
	for c := 0; c <= last; c++ {
		if err := prctl(prCapbsetDrop, uintptr(c)); err != nil && !errors.Is(err, syscall.EINVAL) {
			return wrap("dropping capability "+strconv.Itoa(c), err)
		}
	}
	if err := prctl(prCapAmbient, prCapAmbientClearAll); err != nil {
		return wrap("ambient capabilities", err)
	}
	return nil
}

// lastCap is the highest capability the kernel knows; without the file, dropping every
// possible bit is still right.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return 63
	}
	return n
}

// The Landlock system calls, numbered alike on every architecture (a test checks them against
// x/sys/unix).
const (
	sysLandlockCreateRuleset = 444
	sysLandlockAddRule       = 445
	sysLandlockRestrictSelf  = 446
	landlockRulePathBeneath  = 1
	landlockRuleNetPort      = 2
	oPath                    = 0x200000
)

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

// landlockRuleset builds the ruleset; stripAndFork enforces it on its thread.
func landlockRuleset(l *Landlock) (int, error) {
	attr := rulesetAttr{fs: l.HandledFS, net: l.HandledNet, scoped: l.Scoped}
	size := unsafe.Sizeof(attr.fs)
	if attr.net != 0 {
		size = unsafe.Offsetof(attr.scoped)
	}
	if attr.scoped != 0 {
		size = unsafe.Sizeof(attr)
	}
	fd, _, errno := syscall.Syscall(sysLandlockCreateRuleset, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return -1, wrap("landlock_create_ruleset", errno)
	}
	ruleset := int(fd)
	for _, r := range l.Rules {
		pfd, err := syscall.Open(r.Path, oPath|syscall.O_CLOEXEC, 0)
		if err != nil {
			continue // a mount that is not there needs no rule
		}
		access := r.Access
		var st syscall.Stat_t
		if syscall.Fstat(pfd, &st) == nil && st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			access &= l.FileRights
		}
		pb := pathBeneathAttr{access: access, fd: int32(pfd)}
		_, _, errno := syscall.Syscall6(sysLandlockAddRule, uintptr(ruleset), landlockRulePathBeneath, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		syscall.Close(pfd)
		if errno != 0 {
			syscall.Close(ruleset)
			return -1, wrap("landlock_add_rule "+r.Path, errno)
		}
	}
	for _, p := range l.Ports {
		np := netPortAttr{access: p.Access, port: p.Port}
		_, _, errno := syscall.Syscall6(sysLandlockAddRule, uintptr(ruleset), landlockRuleNetPort, uintptr(unsafe.Pointer(&np)), 0, 0, 0)
		if errno != 0 {
			syscall.Close(ruleset)
			return -1, wrap("landlock_add_rule port "+strconv.FormatUint(p.Port, 10), errno)
		}
	}
	return ruleset, nil
}

// loadFilter installs the seccomp program on the calling thread only (no TSYNC): the init
// calls it on the locked thread that then forks the command. no_new_privs must be set.
func loadFilter(prog []Instr) error {
	filter := make([]syscall.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = syscall.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := syscall.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetSeccomp, seccompModeFilter, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return wrap("seccomp", errno)
	}
	return nil
}
