// Package sandbox runs a command in a Linux sandbox whose only way out is through warden:
// namespaces, a pivot_root'ed root of read-only binds, seccomp, Landlock, rlimits and cgroups,
// with a re-executed warden as the sandbox's init (see docs/sandbox.md).
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Mechanism names a protection that --allow-weaker may waive when the machine lacks it.
// Namespaces, no_new_privs, the dropped capabilities and the pivot_root'ed root are not
// mechanisms in this sense: without them there is no sandbox, so they are never waived.
type Mechanism string

const (
	MechSeccomp       Mechanism = "seccomp"        // the system call filter
	MechLandlock      Mechanism = "landlock"       // Landlock filesystem rules
	MechLandlockNet   Mechanism = "landlock-net"   // Landlock TCP connect rules (ABI 4)
	MechLandlockScope Mechanism = "landlock-scope" // Landlock scoping of abstract sockets and signals (ABI 6)
	MechMemory        Mechanism = "memory"         // the cgroup memory limit
	MechPids          Mechanism = "pids"           // the cgroup pids limit
	MechCPU           Mechanism = "cpu"            // the cgroup CPU limit
)

// Mechanisms lists every mechanism, for messages and flag validation.
var Mechanisms = []Mechanism{MechSeccomp, MechLandlock, MechLandlockNet, MechLandlockScope, MechMemory, MechPids, MechCPU}

// ParseMechanism validates a --allow-weaker name.
func ParseMechanism(s string) (Mechanism, error) {
	m := Mechanism(s)
	if !slices.Contains(Mechanisms, m) {
		names := make([]string, len(Mechanisms))
		for i, m := range Mechanisms {
			names[i] = string(m)
		}
		return "", fmt.Errorf("unknown mechanism %q: use one of %s", s, strings.Join(names, ", "))
	}
	return m, nil
}

// DefaultProtected are the paths inside the workspace that stay read-only: code there runs
// outside the sandbox the next time a person uses git in the workspace. A trailing slash marks
// a directory.
var DefaultProtected = []string{".git/hooks/", ".git/config"}

// Limits bound what the sandbox may consume. Zero means no limit of that kind.
type Limits struct {
	Memory int64   // bytes of memory (cgroup); also bounds the private /tmp
	Pids   int     // processes and threads (cgroup), and RLIMIT_NPROC
	CPU    float64 // CPUs' worth of time (cgroup CFS quota)
}

// Listener is a loopback TCP listener opened inside the sandbox's network namespace and handed
// to the runner, which serves it from outside: the in-sandbox end of a forwarder.
type Listener struct {
	Name string
	Port int
}

// Spec is what to run and how tightly.
type Spec struct {
	Command []string // argv; Command[0] is looked up in the sandbox's PATH
	Env     []string // the command's whole environment, KEY=VALUE; nothing else passes
	// Workspace is a host directory mounted read-write at the same path; the command starts in
	// Dir, which must be inside it (default: Workspace).
	Workspace string
	Dir       string
	// Protected are paths relative to Workspace mounted read-only; nil means DefaultProtected.
	Protected []string
	ReadOnly  []string // more host paths, read-only at the same path
	ReadWrite []string // more host paths, read-write at the same path
	// Binds are host directories shown read-only at another path, which must be inside HomeDir
	// (skills, at $HOME/.claude/skills/NAME). The directories between HomeDir and each path are
	// made for the command's user.
	Binds     []Bind
	Listeners []Listener
	Limits    Limits
	// AllowWeaker names the mechanisms the sandbox may run without when the machine lacks them.
	// Any other missing mechanism refuses the start.
	AllowWeaker []Mechanism
	Hostname    string // default "warden-sandbox"
	// Stdin, Stdout and Stderr are the command's standard streams; nil means /dev/null.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Bind shows the host directory Src read-only at Dst inside the sandbox.
type Bind struct {
	Src string
	Dst string
}

// ExitKind says how the sandbox ended.
type ExitKind int

const (
	ExitedNormally ExitKind = iota // the command exited or was killed by a signal on its own
	ExitedKilled                   // Kill ended it
	ExitedInitDied                 // the init died without reporting the command's status
)

// Exit is how the command ended.
type Exit struct {
	Kind   ExitKind
	Code   int            // exit status, or 128+signal when a signal ended it (as shells report)
	Signal syscall.Signal // the signal that ended the command, if any
	// Killed is how many processes Kill ended, the init included.
	Killed int
}

// ErrNotFound is returned by Start when the command does not exist inside the sandbox.
var ErrNotFound = errors.New("command not found in the sandbox")

// StartError says which step of building the sandbox failed.
type StartError struct {
	Step string
	Err  error
}

func (e *StartError) Error() string { return "sandbox: " + e.Step + ": " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// WeakerError is returned when a mechanism the spec requires is missing and not waived.
type WeakerError struct {
	Missing []Problem
}

func (e *WeakerError) Error() string {
	var parts []string
	for _, p := range e.Missing {
		parts = append(parts, string(p.Mechanism)+" ("+p.Why+")")
	}
	return "this machine lacks " + strings.Join(parts, ", ") + "; refusing to start a weaker sandbox (name what may be skipped with --allow-weaker)"
}

// Problem is one mechanism the machine lacks, and why.
type Problem struct {
	Mechanism Mechanism
	Why       string
}

// validate checks a spec before anything is started.
func (s *Spec) validate() error {
	if len(s.Command) == 0 || s.Command[0] == "" {
		return errors.New("no command to run")
	}
	for _, p := range append([]string{s.Workspace}, append(slices.Clone(s.ReadOnly), s.ReadWrite...)...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("path %q must be absolute and clean", p)
		}
		if p == "/" {
			return errors.New("the whole filesystem cannot be shared with the sandbox")
		}
	}
	for i, b := range s.Binds {
		if !filepath.IsAbs(b.Src) || filepath.Clean(b.Src) != b.Src || b.Src == "/" {
			return fmt.Errorf("bind source %q must be an absolute, clean path below /", b.Src)
		}
		if filepath.Clean(b.Dst) != b.Dst || !strings.HasPrefix(b.Dst, HomeDir+"/") {
			return fmt.Errorf("bind target %q must be a clean path inside %s", b.Dst, HomeDir)
		}
		for _, o := range s.Binds[:i] {
			if o.Dst == b.Dst || strings.HasPrefix(b.Dst, o.Dst+"/") || strings.HasPrefix(o.Dst, b.Dst+"/") {
				return fmt.Errorf("bind targets %q and %q overlap", o.Dst, b.Dst)
			}
		}
	}
	for _, p := range s.protected() {
		if filepath.IsAbs(p) || !filepath.IsLocal(strings.TrimSuffix(p, "/")) {
			return fmt.Errorf("protected path %q must be relative to the workspace and stay inside it", p)
		}
	}
	if s.Dir != "" && s.Dir != s.Workspace && !strings.HasPrefix(s.Dir, s.Workspace+"/") {
		return fmt.Errorf("working directory %q is outside the workspace", s.Dir)
	}
	seen := map[int]bool{}
	for _, l := range s.Listeners {
		if l.Port <= 0 || l.Port > 65535 || seen[l.Port] {
			return fmt.Errorf("listener %q: port %d is invalid or taken", l.Name, l.Port)
		}
		seen[l.Port] = true
	}
	if s.Limits.Memory < 0 || s.Limits.Pids < 0 || s.Limits.CPU < 0 {
		return errors.New("limits must not be negative")
	}
	return nil
}

func (s *Spec) protected() []string {
	if s.Protected == nil {
		return DefaultProtected
	}
	return s.Protected
}

func (s *Spec) allows(m Mechanism) bool { return slices.Contains(s.AllowWeaker, m) }

// killWait bounds how long Kill waits for the sandbox's processes to be gone.
const killWait = 5 * time.Second

// HomeDir is the command's HOME inside the sandbox, in the private /tmp.
const HomeDir = "/tmp/home"

// systemDirs are bound read-only when they exist: the programs and libraries of the host.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// InSystemDir reports whether the clean absolute path p is in (or is) one of the host's system
// directories, which every sandbox shows read-only already (what /etc hides excepted).
func InSystemDir(p string) bool {
	for _, d := range systemDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
