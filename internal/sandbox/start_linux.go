package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/wardenhq/warden/internal/sandbox/initproc"
	"golang.org/x/sys/unix"
)

// InitBinary is the executable re-executed as the sandbox's init; "" means this process's own.
// It must call MaybeInit first thing in main. Tests and benchmarks of other binaries set it.
var InitBinary string

// Sandbox is a running sandbox, seen from the runner.
type Sandbox struct {
	// Listeners are the in-sandbox listeners the Spec asked for, by name, for the runner to
	// serve from outside.
	Listeners map[string]net.Listener
	// Weakened lists the mechanisms the sandbox runs without (each waived by AllowWeaker).
	Weakened []Problem

	cmd    *exec.Cmd
	pidfd  int
	ctrl   *net.UnixConn
	cg     *cgroup
	exitCh chan message // the init's exit report, or nothing if it died first

	mu       sync.Mutex
	killed   bool
	nkilled  int
	waitOnce sync.Once
	exit     Exit
	waitErr  error
}

// Capabilities describes what this machine offers the sandbox.
type Capabilities struct {
	LandlockABI int
	Seccomp     bool
}

// Probe reports the machine's sandboxing mechanisms.
func Probe() Capabilities {
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_GET_SECCOMP, 0, 0)
	return Capabilities{LandlockABI: landlockABI(), Seccomp: errno == 0}
}

// Start builds the sandbox and starts the command in it. It returns once the command runs;
// an error means nothing is left running.
func Start(ctx context.Context, spec *Spec) (_ *Sandbox, err error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	caps := Probe()
	var problems []Problem
	if !caps.Seccomp {
		problems = append(problems, Problem{MechSeccomp, "the kernel has no seccomp"})
	}
	ll := landlockPlan{ABI: caps.LandlockABI, Net: true, Scope: true}
	for _, l := range spec.Listeners {
		ll.Ports = append(ll.Ports, l.Port)
	}
	switch {
	case ll.ABI == 0:
		problems = append(problems, Problem{MechLandlock, "Landlock is not enabled in this kernel"},
			Problem{MechLandlockNet, "Landlock is not enabled in this kernel"},
			Problem{MechLandlockScope, "Landlock is not enabled in this kernel"})
	case ll.ABI < 4:
		problems = append(problems, Problem{MechLandlockNet, fmt.Sprintf("Landlock ABI %d has no network rules (4 needed)", ll.ABI)},
			Problem{MechLandlockScope, fmt.Sprintf("Landlock ABI %d has no scoping (6 needed)", ll.ABI)})
	case ll.ABI < 6:
		problems = append(problems, Problem{MechLandlockScope, fmt.Sprintf("Landlock ABI %d has no scoping (6 needed)", ll.ABI)})
	}

	if ll.ABI >= 4 && ll.ABI < 6 {
		ll.Scope = false
	}
	if ll.ABI < 4 {
		ll.Net, ll.Scope = false, false
	}
	cfg := &initConfig{
		Argv: spec.Command, Env: spec.Env, Dir: spec.Dir, Hostname: spec.Hostname,
		CgroupNS: true, Rlimits: rlimits(spec.Limits),
	}
	for _, l := range spec.Listeners {
		cfg.Listeners = append(cfg.Listeners, initproc.Listener{Name: l.Name, Port: l.Port})
	}
	if caps.Seccomp {
		if cfg.Filter, err = seccompFilter(); err != nil {
			return nil, &StartError{"seccomp", err}
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = spec.Workspace
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "warden-sandbox"
	}
	sb := &Sandbox{pidfd: -1, exitCh: make(chan message, 1)}
	sys := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNET |
			syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Pdeathsig: syscall.SIGKILL,
		PidFD:     &sb.pidfd,
	}
	if err := idMaps(spec.Workspace, cfg, sys); err != nil {
		return nil, &StartError{"user namespace", err}
	}

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &StartError{"control socket", err}
	}
	parent, child := os.NewFile(uintptr(pair[0]), "control"), os.NewFile(uintptr(pair[1]), "control")
	defer child.Close()
	c, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, &StartError{"control socket", err}
	}
	sb.ctrl = c.(*net.UnixConn)
	defer func() {
		if err != nil {
			sb.ctrl.Close()
		}
	}()

	self := InitBinary
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return nil, &StartError{"finding warden's executable", err}
		}
	}
	// The init starts first and waits for its configuration: the runner plans the root and
	// makes the cgroup while the init's runtime starts up. It does nothing before it has the
	// configuration, so joining the cgroup afterwards misses nothing.
	cmd := &exec.Cmd{
		Path:        self,
		Args:        []string{initproc.Arg0},
		Env:         []string{},
		Stdin:       spec.Stdin,
		Stdout:      spec.Stdout,
		Stderr:      spec.Stderr,
		ExtraFiles:  []*os.File{child},
		SysProcAttr: sys,
	}
	if err := cmd.Start(); err != nil {
		return nil, &StartError{"starting the init", err}
	}
	sb.cmd = cmd
	child.Close()
	fail := func(e error) (*Sandbox, error) {
		sb.killInit()
		_ = cmd.Wait()
		return nil, e
	}

	// A cgroup is made even without limits: it lists the sandbox's processes for Kill.
	cg := newCgroup("warden-"+randomID(), spec.Limits)
	sb.cg = cg
	defer func() {
		if err != nil && cg.usable() {
			cg.remove()
		}
	}()
	problems = append(problems, cg.missing...)
	var missing []Problem
	for _, p := range problems {
		if spec.allows(p.Mechanism) {
			sb.Weakened = append(sb.Weakened, p)
		} else {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fail(&WeakerError{Missing: missing})
	}
	if cfg.Mounts, err = plan(spec); err != nil {
		return fail(&StartError{"planning the root filesystem", err})
	}
	cfg.Landlock = ll.ruleset(cfg.Mounts)
	if err := cg.attach(cmd.Process.Pid); err != nil {
		return fail(&StartError{"cgroup", err})
	}
	if err := send(sb.ctrl, message{Type: "config", Config: cfg}); err != nil {
		return fail(&StartError{"configuring the init", err})
	}
	ready := make(chan error, 1)
	go func() { ready <- sb.handshake(spec) }()
	select {
	case err := <-ready:
		if err != nil {
			var se *StartError
			if errors.As(err, &se) {
				sb.killInit()
				_ = cmd.Wait()
				return nil, err
			}
			return fail(&StartError{"starting the command", err})
		}
	case <-ctx.Done():
		return fail(&StartError{"starting the command", ctx.Err()})
	}
	go sb.watch()
	return sb, nil
}

// handshake reads the init's ready (with the listeners) and started messages.
func (sb *Sandbox) handshake(spec *Spec) error {
	m, fds, err := recv(sb.ctrl)
	if err != nil {
		return fmt.Errorf("the init died while building the sandbox: %w", err)
	}
	if m.Type == "error" {
		return initError(m)
	}
	if m.Type != "ready" || len(fds) != len(spec.Listeners) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return fmt.Errorf("unexpected %q from the init", m.Type)
	}
	sb.Listeners = map[string]net.Listener{}
	for i, l := range spec.Listeners {
		f := os.NewFile(uintptr(fds[i]), l.Name)
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return err
		}
		sb.Listeners[l.Name] = ln
	}
	m, _, err = recv(sb.ctrl)
	if err != nil {
		return fmt.Errorf("the init died while starting the command: %w", err)
	}
	if m.Type == "error" {
		return initError(m)
	}
	if m.Type != "started" {
		return fmt.Errorf("unexpected %q from the init", m.Type)
	}
	return nil
}

func initError(m message) error {
	var err error = errors.New(m.Error)
	if m.NotFound {
		err = notFound(m.Error) // the init's message begins with ErrNotFound's text already
	}
	return &StartError{m.Step, err}
}

// notFound is ErrNotFound as the init words it, with the command's name.
type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

// watch reads the init's last message.
func (sb *Sandbox) watch() {
	for {
		m, _, err := recv(sb.ctrl)
		if err != nil {
			close(sb.exitCh)
			return
		}
		if m.Type == "exit" {
			sb.exitCh <- m
			return
		}
	}
}

// Wait waits for the sandbox to end and says how the command ended.
func (sb *Sandbox) Wait() (Exit, error) {
	sb.waitOnce.Do(func() {
		werr := sb.cmd.Wait()
		m, ok := <-sb.exitCh
		sb.mu.Lock()
		killed, n := sb.killed, sb.nkilled
		sb.mu.Unlock()
		switch {
		case killed:
			sb.exit = Exit{Kind: ExitedKilled, Code: 128 + int(syscall.SIGKILL), Signal: syscall.SIGKILL, Killed: n}
		case ok:
			sb.exit = Exit{Kind: ExitedNormally, Code: m.Code, Signal: syscall.Signal(m.Signal)}
		default:
			sb.exit = Exit{Kind: ExitedInitDied, Code: 255}
			var ee *exec.ExitError
			if werr != nil && !errors.As(werr, &ee) {
				sb.waitErr = werr
			}
		}
		sb.ctrl.Close()
		for _, ln := range sb.Listeners {
			ln.Close()
		}
		if sb.pidfd >= 0 {
			unix.Close(sb.pidfd)
		}
		if sb.cg.usable() {
			sb.cg.remove()
		}
	})
	return sb.exit, sb.waitErr
}

// Signal passes sig to the command.
func (sb *Sandbox) Signal(sig syscall.Signal) error {
	return send(sb.ctrl, message{Type: "signal", Signal: int(sig)})
}

// Kill ends the whole sandbox at once and returns how many processes it ended: SIGKILL through
// the pidfd to the init, which ends its PID namespace and everything in it, and cgroup.kill
// (or one SIGKILL each, frozen first) for anything that might have slipped out of it.
func (sb *Sandbox) Kill() int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.killed {
		return sb.nkilled
	}
	sb.killed = true
	frozen := sb.cg.usable() && sb.cg.canFreeze() && sb.cg.freeze(true) == nil
	n := len(sb.cg.procs())
	if !sb.cg.usable() {
		n = countNamespace(sb.cmd.Process.Pid)
	}
	sb.killInit()
	if sb.cg.usable() {
		sb.cg.kill()
		if frozen {
			_ = sb.cg.freeze(false)
		}
	}
	sb.nkilled = n
	return n
}

// Freeze stops (on) or resumes every process of the sandbox; it fails where the machine has no
// cgroup freezer.
func (sb *Sandbox) Freeze(on bool) error {
	if !sb.cg.usable() || !sb.cg.canFreeze() {
		return errors.New("no cgroup freezer on this machine")
	}
	return sb.cg.freeze(on)
}

// CanFreeze reports whether Freeze works.
func (sb *Sandbox) CanFreeze() bool { return sb.cg.usable() && sb.cg.canFreeze() }

func (sb *Sandbox) killInit() {
	if sb.pidfd >= 0 && unix.PidfdSendSignal(sb.pidfd, unix.SIGKILL, nil, 0) == nil {
		return
	}
	if sb.cmd != nil && sb.cmd.Process != nil {
		_ = sb.cmd.Process.Kill()
	}
}

// countNamespace counts the processes in the PID namespace of pid, when there is no cgroup
// to list them.
func countNamespace(pid int) int {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid_for_children", pid))
	if err != nil {
		return 1
	}
	own, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 1
	}
	n := 0
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && (l == ns || l == own) {
			n++
		}
	}
	return max(n, 1)
}

// idMaps maps the sandbox's users. The init is root of the user namespace (it needs its
// capabilities to build the root). The command runs as the workspace's owner, mapped to the
// same id, so that what it writes belongs to that owner; a runner that is not root can map
// only itself, and the command then runs as the namespace's root, without capabilities.
func idMaps(workspace string, cfg *initConfig, sys *syscall.SysProcAttr) error {
	uid, gid, err := CommandUser(workspace)
	if err != nil {
		return err
	}
	if os.Getuid() != 0 {
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}}
		return nil
	}
	sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	if uid != 0 {
		sys.UidMappings = append(sys.UidMappings, syscall.SysProcIDMap{ContainerID: uid, HostID: uid, Size: 1})
	}
	if gid != 0 {
		sys.GidMappings = append(sys.GidMappings, syscall.SysProcIDMap{ContainerID: gid, HostID: gid, Size: 1})
	}
	sys.GidMappingsEnableSetgroups = true
	cfg.UID, cfg.GID, cfg.SetID = uid, gid, true
	return nil
}

// CommandUser is the host user and group the command of a sandbox on workspace runs as: the
// workspace's owner when the runner is root, the runner itself otherwise (see idMaps). What the
// runner shows the command read-only must be readable by them.
func CommandUser(workspace string) (uid, gid int, err error) {
	if os.Getuid() != 0 {
		return os.Getuid(), os.Getgid(), nil
	}
	var st unix.Stat_t
	if err := unix.Stat(workspace, &st); err != nil {
		return 0, 0, err
	}
	return int(st.Uid), int(st.Gid), nil
}

// rlimits are always set: no core dumps (they would write the command's memory to disk), a
// bound on open files and locked memory, and the process limit where one is asked for.
func rlimits(lim Limits) []rlimit {
	rs := []rlimit{
		{Resource: unix.RLIMIT_CORE, Cur: 0, Max: 0},
		{Resource: unix.RLIMIT_MEMLOCK, Cur: 64 << 10, Max: 64 << 10},
	}
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &cur) == nil {
		n := min(cur.Max, 1<<16)
		rs = append(rs, rlimit{Resource: unix.RLIMIT_NOFILE, Cur: min(cur.Cur, n), Max: n})
	}
	if lim.Pids > 0 {
		rs = append(rs, rlimit{Resource: unix.RLIMIT_NPROC, Cur: uint64(lim.Pids), Max: uint64(lim.Pids)})
	}
	return rs
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
