package initproc

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"unsafe"
)

// Arg0 is the argv[0] under which warden re-executes itself as a sandbox's init.
const Arg0 = "warden-sandbox-init"

// ctrl is the control socket, the init's fd 3.
const ctrl = 3

// ErrNotFound says the command does not exist inside the sandbox; its text is sandbox's
// ErrNotFound's, which the runner wraps around the init's message.
var ErrNotFound = errors.New("command not found in the sandbox")

// init runs the sandbox's init as soon as this package's few imports are initialised, before
// the rest of the warden binary's packages: a sandbox starts faster when its init does not
// wait for inits it never uses.
func init() { MaybeRun() }

// MaybeRun runs the init and exits if this process was started as one; otherwise it returns at
// once.
func MaybeRun() {
	if len(os.Args) != 1 || os.Args[0] != Arg0 {
		return
	}
	os.Exit(run())
}

// run is the init: PID 1 of the sandbox's namespaces, running as root of its user namespace
// with every capability in it until it starts the command.
func run() int {
	// The terminal's signals reach the command directly (it is in the same process group);
	// the init must only not die of them. Handlers, unlike SIG_IGN, are reset by exec.
	// Installing them starts the runtime's signal threads, which takes milliseconds: it
	// overlaps with building the root, and the command starts only once it is done.
	notified := make(chan struct{})
	go func() {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
			syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGWINCH, syscall.SIGTTIN, syscall.SIGTTOU)
		close(notified)
	}()
	// No one inside may read the init's memory or open its /proc files.
	_ = prctl(prSetDumpable, 0)

	m, _, err := recv(ctrl)
	if errors.Is(err, syscall.ENOTSOCK) || errors.Is(err, syscall.EBADF) {
		os.Stderr.WriteString("warden sandbox init: no control socket: " + err.Error() + "\n")
		return 1
	}
	if err != nil || m.Type != "config" || m.Config == nil {
		return 1
	}
	cfg := m.Config
	fail := func(step string, err error) int {
		e := Message{Type: "error", Step: step, Error: err.Error(), NotFound: errors.Is(err, ErrNotFound)}
		_ = send(ctrl, &e)
		return 1
	}
	if err := buildRoot(cfg); err != nil {
		return fail("root filesystem", err)
	}
	if err := syscall.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fail("hostname", err)
	}
	if err := loopbackUp(); err != nil {
		return fail("loopback", err)
	}
	fds, err := listen(cfg.Listeners)
	if err != nil {
		return fail("listeners", err)
	}
	if err := setRlimits(cfg.Rlimits); err != nil {
		return fail("rlimits", err)
	}
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fail("command", err)
	}
	if err := send(ctrl, &Message{Type: "ready"}, fds...); err != nil {
		return 1
	}
	for _, fd := range fds {
		syscall.Close(fd)
	}
	<-notified
	pid, err := startCommand(cfg, path)
	if err != nil {
		return fail("start", err)
	}
	if err := send(ctrl, &Message{Type: "started", PID: pid}); err != nil {
		return 1
	}

	go func() {
		for {
			m, _, err := recv(ctrl)
			if err != nil {
				// The runner is gone: nothing may outlive it. PID 1 exiting ends the namespace.
				os.Exit(137)
			}
			if m.Type == "signal" && m.Signal > 0 {
				_ = syscall.Kill(pid, syscall.Signal(m.Signal))
			}
		}
	}()
	code, sig := reap(pid)
	_ = send(ctrl, &Message{Type: "exit", Code: code, Signal: sig})
	return code
}

func send(fd int, m *Message, fds ...int) error {
	b := m.Encode()
	if len(b) > MaxMessage {
		return errors.New("message too large")
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	for {
		err := syscall.Sendmsg(fd, b, oob, nil, 0)
		if err != syscall.EINTR {
			return err
		}
	}
}

// recv reads one message, blocking; its buffer is sized to the packet, peeked with MSG_TRUNC.
func recv(fd int) (Message, []int, error) {
	var (
		buf            []byte
		oob            = make([]byte, syscall.CmsgSpace(16*4))
		n, oobn, flags int
		err            error
	)
	for {
		n, _, err = syscall.Recvfrom(fd, nil, syscall.MSG_PEEK|syscall.MSG_TRUNC)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return Message{}, nil, err
		}
		buf = make([]byte, min(max(n, 1), MaxMessage+1))
		n, oobn, flags, _, err = syscall.Recvmsg(fd, buf, oob, syscall.MSG_CMSG_CLOEXEC)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return Message{}, nil, err
	}
	if n == 0 {
		return Message{}, nil, errors.New("peer closed the control socket")
	}
	var fds []int
	if oobn > 0 {
		scms, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return Message{}, nil, err
		}
		for _, scm := range scms {
			got, err := syscall.ParseUnixRights(&scm)
			if err != nil {
				return Message{}, nil, err
			}
			fds = append(fds, got...)
		}
	}
	if flags&(syscall.MSG_TRUNC|syscall.MSG_CTRUNC) != 0 || n > MaxMessage {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return Message{}, nil, errors.New("truncated message")
	}
	m, err := DecodeMessage(buf[:n])
	return m, fds, err
}

// reap waits for children until the command exits; as PID 1, the init inherits every orphan
// of the sandbox and must collect them.
func reap(cmd int) (code, sig int) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 255, 0
		}
		if pid != cmd {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), 0
		case ws.Signaled():
			return 128 + int(ws.Signal()), int(ws.Signal())
		}
	}
}

// wrapped is an error with context, as fmt.Errorf("%s: %w") makes one (fmt is not imported:
// see the package comment).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapped) Unwrap() error { return e.err }

func wrap(msg string, err error) error { return &wrapped{msg, err} }

// buildRoot makes the sandbox's root and pivots into it. The host's root stays reachable at
// /oldroot while the binds are made, and is detached at the end.
func buildRoot(cfg *Config) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return wrap("making mounts private", err)
	}
	// A tmpfs on the host's /tmp (in this namespace only) becomes the first root: pivot_root
	// moves it off /tmp, so the host's /tmp is visible again under /oldroot/tmp.
	if err := syscall.Mount("tmpfs", "/tmp", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0700"); err != nil {
		return wrap("base tmpfs", err)
	}
	for _, d := range []string{"/tmp/oldroot", "/tmp/newroot"} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if err := syscall.PivotRoot("/tmp", "/tmp/oldroot"); err != nil {
		return wrap("pivot_root", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", "/newroot", "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755"); err != nil {
		return wrap("root tmpfs", err)
	}
	for _, m := range cfg.Mounts {
		if err := doMount(m, cfg.UID, cfg.GID); err != nil {
			return wrap(m.Kind+" "+m.Dst, err)
		}
	}
	for _, p := range []string{"/newroot/dev", "/newroot"} {
		if err := setattr(p, false, mountAttrRdonly|mountAttrNosuid); err != nil {
			return wrap("read-only "+p, err)
		}
	}
	if err := os.Chdir("/newroot"); err != nil {
		return err
	}
	if err := syscall.PivotRoot(".", "."); err != nil {
		return wrap("pivot_root", err)
	}
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return wrap("detaching the host's root", err)
	}
	return os.Chdir("/")
}

// mount_setattr(2), which package syscall does not offer. Its number is the same on every
// architecture (the tables were unified from 403 on); a test checks it against x/sys/unix.
const (
	sysMountSetattr = 442
	atRecursive     = 0x8000
	mountAttrRdonly = 0x1
	mountAttrNosuid = 0x2
	mountAttrNodev  = 0x4
	mountAttrNoexec = 0x8
)

// mountAttr is struct mount_attr.
type mountAttr struct {
	set, clr, propagation, userns uint64
}

func setattr(path string, recursive bool, attr uint64) error {
	flags := 0
	if recursive {
		flags = atRecursive
	}
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	ma := mountAttr{set: attr}
	_, _, errno := syscall.Syscall6(sysMountSetattr, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)), uintptr(flags),
		uintptr(unsafe.Pointer(&ma)), unsafe.Sizeof(ma), 0)
	if errno == syscall.ENOSYS {
		// Before Linux 5.12: remount the top mount only.
		var ms uintptr = syscall.MS_REMOUNT | syscall.MS_BIND
		if attr&mountAttrRdonly != 0 {
			ms |= syscall.MS_RDONLY
		}
		if attr&mountAttrNosuid != 0 {
			ms |= syscall.MS_NOSUID
		}
		if attr&mountAttrNodev != 0 {
			ms |= syscall.MS_NODEV
		}
		if attr&mountAttrNoexec != 0 {
			ms |= syscall.MS_NOEXEC
		}
		return syscall.Mount("", path, "", ms, "")
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// atFDCWD is AT_FDCWD, as a variable so that its conversion to uintptr wraps.
var atFDCWD = -100

func doMount(m Mount, uid, gid int) error {
	dst := "/newroot" + m.Dst
	switch m.Kind {
	case "bind":
		src := "/oldroot" + m.Src
		if m.Src == "" || hasPrefix(m.Dst, "/proc/") {
			src = dst // procfs entries are bound onto themselves, from the sandbox's own /proc
		}
		if m.Guard {
			if err := noSymlinks(src, dst); err != nil {
				return err
			}
		}
		if err := mountPoint(dst, m.File); err != nil {
			return err
		}
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
		attr := uint64(mountAttrNosuid)
		if !m.Dev {
			attr |= mountAttrNodev
		}
		if !m.RW {
			attr |= mountAttrRdonly
		}
		return setattr(dst, true, attr)
	case "tmpfs":
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return syscall.Mount("tmpfs", dst, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode="+strconv.FormatUint(uint64(m.Mode), 8))
	case "symlink":
		if err := os.MkdirAll(dir(dst), 0o755); err != nil {
			return err
		}
		return os.Symlink(m.Src, dst)
	case "mask":
		fi, err := os.Lstat(dst)
		if err != nil {
			return nil // nothing to hide
		}
		if !fi.IsDir() {
			// /dev/null on a nodev mount: opening the masked file fails, and there is nothing
			// in it anyway.
			if err := syscall.Mount("/oldroot/dev/null", dst, "", syscall.MS_BIND, ""); err != nil {
				return err
			}
			return setattr(dst, false, mountAttrRdonly|mountAttrNosuid|mountAttrNodev|mountAttrNoexec)
		}
		return syscall.Mount("tmpfs", dst, "tmpfs", syscall.MS_RDONLY|syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "mode=000")
	case "proc":
		if err := os.MkdirAll(dst, 0o555); err != nil {
			return err
		}
		return syscall.Mount("proc", dst, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, "")
	case "devpts":
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return syscall.Mount("devpts", dst, "devpts", syscall.MS_NOSUID|syscall.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
	case "dir":
		if err := os.MkdirAll(dst, os.FileMode(m.Mode)); err != nil {
			return err
		}
		if m.Own {
			return os.Chown(dst, uid, gid)
		}
		return nil
	}
	return errors.New("unknown mount kind " + strconv.Quote(m.Kind))
}

// dir is filepath.Dir for the clean absolute paths the runner plans.
func dir(p string) string {
	i := len(p) - 1
	for i > 0 && p[i] != '/' {
		i--
	}
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// hasPrefix is strings.HasPrefix: importing strings would delay this package's initialisation
// behind most of warden's (see the package comment).
func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }

// split is strings.Split for one separator byte.
func split(s string, sep byte) []string {
	var out []string
	for {
		i := 0
		for i < len(s) && s[i] != sep {
			i++
		}
		out = append(out, s[:i])
		if i == len(s) {
			return out
		}
		s = s[i+1:]
	}
}

// mountPoint makes sure dst exists as a directory, or as a file for a file bind.
func mountPoint(dst string, file bool) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if !file {
		return os.MkdirAll(dst, 0o755)
	}
	if err := os.MkdirAll(dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// noSymlinks refuses a guarded bind whose source or target is reached through a symlink: the
// workspace's content must not choose what a protected mount covers. Every component of each
// (clean, absolute) path must exist and be no symlink.
func noSymlinks(paths ...string) error {
	for _, p := range paths {
		for i := 1; i <= len(p); i++ {
			if i < len(p) && p[i] != '/' {
				continue
			}
			fi, err := os.Lstat(p[:i])
			if err != nil {
				return err
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				return errors.New(p + " is reached through a symlink")
			}
		}
	}
	return nil
}

// ifreq is struct ifreq with the flags member of its union.
type ifreq struct {
	name  [16]byte
	flags uint16
	_     [22]byte
}

// loopbackUp brings up lo, the only interface of the sandbox's network namespace.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr ifreq
	copy(ifr.name[:], "lo")
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

// listen opens the forwarders' listening sockets on 127.0.0.1 inside the sandbox.
func listen(ls []Listener) ([]int, error) {
	var fds []int
	for _, l := range ls {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return nil, err
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: l.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, wrap(l.Name+" on port "+strconv.Itoa(l.Port), err)
		}
		if err := syscall.Listen(fd, 128); err != nil {
			return nil, err
		}
	}
	return fds, nil
}

func setRlimits(rs []Rlimit) error {
	for _, r := range rs {
		lim := syscall.Rlimit{Cur: r.Cur, Max: r.Max}
		if err := syscall.Setrlimit(r.Resource, &lim); err != nil {
			return wrap("resource "+strconv.Itoa(r.Resource), err)
		}
	}
	return nil
}

// lookPath finds the command in the sandbox's PATH, as a shell would.
func lookPath(name string, env []string) (string, error) {
	if len(split(name, '/')) > 1 {
		if err := executable(name); err != nil {
			return "", &notFound{ErrNotFound.Error() + ": " + name + ": " + err.Error()}
		}
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, kv := range env {
		if hasPrefix(kv, "PATH=") {
			path = kv[len("PATH="):]
		}
	}
	for _, d := range split(path, ':') {
		if d == "" {
			d = "."
		}
		p := d + "/" + name
		if d[len(d)-1] == '/' {
			p = d + name
		}
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", &notFound{ErrNotFound.Error() + ": " + name}
}

// notFound is ErrNotFound with the command's name.
type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }

func executable(p string) error {
	fi, err := os.Stat(p)
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err // the message names the path already: not "/x: stat /x: …"
	}
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}
