package sandbox

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/wardenhq/warden/internal/sandbox/initproc"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside the sandbox, whatever their arguments: debugging and
// reading other processes, every way of changing mounts or namespaces, loading code into the
// kernel, the kernel keyring, userfaultfd and io_uring (both favourites of kernel exploits), and
// handles that reach past the mount namespace.
var deniedSyscalls = []string{
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
	"mount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree",
	"fsopen", "fsconfig", "fsmount", "fspick",
	"unshare", "setns",
	"bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"keyctl", "add_key", "request_key",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd", "swapon", "swapoff",
	"reboot", "syslog", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "lookup_dcookie", "uselib", "vhangup", "fanotify_init",
}

// namespaceFlags are the clone flags that make a namespace.
const namespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER |
	unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

// deniedIoctls let a process push input into the terminal (TIOCSTI) or drive the console
// (TIOCLINUX): with them a sandboxed command types commands into the shell that started it.
var deniedIoctls = []uint32{unix.TIOCSTI, unix.TIOCLINUX}

// deniedFamilies are socket families that reach past the network namespace's loopback:
// the hypervisor (vsock), raw frames (packet) and the kernel's configuration (netlink).
var deniedFamilies = []uint32{unix.AF_VSOCK, unix.AF_PACKET, unix.AF_NETLINK}

// seccomp_data offsets: nr, arch, instruction_pointer, args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// argLow is the offset of the low 32 bits of argument i. The kernel reads int-sized arguments
// (ioctl's request, socket's family, clone's flags on the paths that matter) from the low half
// only, so comparing the whole 64 bits would let a caller slip past with garbage in the high
// half: the filter compares exactly what the kernel will use.
func argLow(i int) uint32 {
	if littleEndian() {
		return offArgs + uint32(i)*8
	}
	return offArgs + uint32(i)*8 + 4
}

func littleEndian() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

const (
	retAllow  = unix.SECCOMP_RET_ALLOW
	retKill   = unix.SECCOMP_RET_KILL_PROCESS
	retEPERM  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
)

// filterProgram assembles the sandbox's seccomp filter for the running architecture.
//
// The elastic/go-seccomp-bpf library supplies the architecture's system call table; the
// program itself is built here because that library's assembler sends a foreign architecture
// to the policy's default action — allow, for a deny list — and compares arguments on all 64
// bits. This program kills a process that makes a system call of another architecture
// (i386 through int 0x80 on amd64), refuses the x32 ABI, and masks 32-bit arguments.
func filterProgram() ([]initproc.Instr, error) {
	info, err := arch.GetInfo(runtime.GOARCH)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	nr := func(name string) (uint32, bool) {
		n, ok := info.SyscallNames[name]
		return uint32(n), ok
	}
	var prog []bpf.Instruction
	// Jump offsets are counted from the instruction after the jump, so each rule is written as
	// "if not this system call, skip my body" with the body's length computed from the body.
	rule := func(num uint32, body []bpf.Instruction) {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: num, SkipFalse: uint8(len(body))})
		prog = append(prog, body...)
	}
	prog = append(prog,
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: retKill},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	)
	if info.ID == arch.X86_64.ID {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: uint32(arch.X32.SeccompMask), SkipFalse: 1},
			bpf.RetConstant{Val: retENOSYS},
		)
	}
	for _, name := range deniedSyscalls {
		if n, ok := nr(name); ok {
			rule(n, []bpf.Instruction{bpf.RetConstant{Val: retEPERM}})
		}
	}
	// clone3 passes its flags in memory the filter cannot read: ENOSYS makes libc fall back to
	// clone, whose flags it can.
	if n, ok := nr("clone3"); ok {
		rule(n, []bpf.Instruction{bpf.RetConstant{Val: retENOSYS}})
	}
	if n, ok := nr("clone"); ok {
		// clone's flags are the first argument on every architecture warden builds for.
		rule(n, []bpf.Instruction{
			bpf.LoadAbsolute{Off: argLow(0), Size: 4},
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: namespaceFlags, SkipFalse: 1},
			bpf.RetConstant{Val: retEPERM},
			bpf.RetConstant{Val: retAllow},
		})
	}
	if n, ok := nr("ioctl"); ok {
		rule(n, matchAny(1, deniedIoctls))
	}
	for _, name := range []string{"socket", "socketpair"} {
		if n, ok := nr(name); ok {
			rule(n, matchAny(0, deniedFamilies))
		}
	}
	prog = append(prog, bpf.RetConstant{Val: retAllow})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	out := make([]initproc.Instr, len(raw))
	for i, in := range raw {
		out[i] = initproc.Instr{Op: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out, nil
}

// seccompFilter is the filter, assembled once per process: it depends only on the architecture.
var seccompFilter = sync.OnceValues(filterProgram)

// matchAny is a rule body: EPERM when the low 32 bits of argument arg are one of vals, allow
// otherwise. The body ends in a return either way, so the accumulator may be clobbered.
func matchAny(arg int, vals []uint32) []bpf.Instruction {
	body := []bpf.Instruction{bpf.LoadAbsolute{Off: argLow(arg), Size: 4}}
	for i, v := range vals {
		// Skip to the EPERM, which sits after the remaining comparisons and the allow.
		body = append(body, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: uint8(len(vals) - i)})
	}
	return append(body, bpf.RetConstant{Val: retAllow}, bpf.RetConstant{Val: retEPERM})
}
