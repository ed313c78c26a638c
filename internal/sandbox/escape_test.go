//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The escape suite. Every test first does the same thing outside the sandbox and requires it
// to work there, so that a refusal inside is the sandbox's doing and not an accident of the
// test machine. Every address a test connects to is on this machine.

func TestMain(m *testing.M) {
	MaybeInit()
	switch {
	case os.Getenv(probeEnv) != "":
		probeMain()
	case os.Getenv(runnerEnv) != "":
		runnerMain()
	}
	os.Exit(m.Run())
}

// sandboxUID is the workspace owner the suite uses, so that the command inside is not root.
const sandboxUID = 1000

type result struct {
	code int
	out  string
}

func (r result) ok() bool { return r.code == 0 }

// requireRoot skips when the test cannot create the namespaces; CI runs as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the escape suite maps a second user into the sandbox, which needs root")
	}
}

// hostDir is a directory outside any workspace, traversable by sandboxUID.
func hostDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "warden-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// workspace is a workspace owned by sandboxUID.
func workspace(t *testing.T) string {
	t.Helper()
	ws := filepath.Join(hostDir(t), "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(ws, sandboxUID, sandboxUID); err != nil {
		t.Fatal(err)
	}
	return ws
}

func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// outside runs the probe as an ordinary process (as root, like the runner).
func outside(t *testing.T, args ...string) result {
	t.Helper()
	return outsideAs(t, nil, args...)
}

func outsideAs(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.Command(testBinary(t), args...)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	return result{code: exitCode(err), out: string(out)}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// inside runs the probe in a sandbox over ws; edit adjusts the spec.
func inside(t *testing.T, ws string, edit func(*Spec), args ...string) result {
	t.Helper()
	exe := testBinary(t)
	var out bytes.Buffer
	spec := &Spec{
		Command:   append([]string{exe}, args...),
		Env:       []string{"PATH=/usr/bin:/bin", probeEnv + "=1", "HOME=" + HomeDir},
		Workspace: ws,
		ReadOnly:  []string{filepath.Dir(exe)},
		Limits:    Limits{Memory: 1 << 30, Pids: 256},
		Stdout:    &out, Stderr: &out,
	}
	if edit != nil {
		edit(spec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sb, err := Start(ctx, spec)
	if err != nil {
		t.Fatalf("starting the sandbox: %v", err)
	}
	if len(sb.Weakened) > 0 {
		t.Fatalf("the sandbox runs without %v", sb.Weakened)
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			sb.Kill()
		}
	}()
	ex, err := sb.Wait()
	close(done)
	if err != nil {
		t.Fatalf("waiting for the sandbox: %v", err)
	}
	return result{code: ex.Code, out: out.String()}
}

// escape requires the action to work outside and fail inside.
func escape(t *testing.T, name string, out, in result) {
	t.Helper()
	if !out.ok() {
		t.Fatalf("%s: the control outside the sandbox failed (code %d): %s", name, out.code, out.out)
	}
	if in.ok() {
		t.Errorf("%s: ESCAPED from the sandbox: %s", name, in.out)
	} else {
		t.Logf("%s: outside ok; inside refused: %s", name, strings.TrimSpace(in.out))
	}
}

func TestEscapeWriteOutsideWorkspace(t *testing.T) {
	requireRoot(t)
	ws, host := workspace(t), hostDir(t)
	if r := inside(t, ws, nil, "write", filepath.Join(ws, "mine")); !r.ok() {
		t.Fatalf("writing inside the workspace: %s", r.out)
	}
	for _, p := range []string{filepath.Join(host, "escaped"), "/etc/warden-escaped", "/usr/warden-escaped", filepath.Dir(ws) + "/escaped"} {
		escape(t, "write "+p, outside(t, "write", p), inside(t, ws, nil, "write", p))
		os.Remove(p)
	}
}

func TestEscapeGitHooks(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	git := filepath.Join(ws, ".git")
	if err := os.MkdirAll(filepath.Join(git, "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(git, "config"), []byte("[core]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filepath.Walk(git, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, sandboxUID, sandboxUID) }); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(git, "hooks", "pre-commit")
	escape(t, "write .git/hooks", outside(t, "write", hook), inside(t, ws, nil, "write", hook))
	os.Remove(hook)
	cfg := filepath.Join(git, "config")
	escape(t, "write .git/config", outside(t, "write", cfg), inside(t, ws, nil, "write", cfg))
	// Moving .git away to make a fresh hooks directory: the protected path's parents are
	// mount points, which cannot be renamed.
	other := workspace(t)
	if err := os.MkdirAll(filepath.Join(other, ".git", "hooks"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(other, ".git"), sandboxUID, sandboxUID)
	escape(t, "rename .git and recreate hooks", outside(t, "rename-mkdir", filepath.Join(other, ".git")), inside(t, ws, nil, "rename-mkdir", git))
	// A workspace whose .git has no hooks directory gets one, read-only.
	bare := workspace(t)
	os.Mkdir(filepath.Join(bare, ".git"), 0o755)
	os.Chown(filepath.Join(bare, ".git"), sandboxUID, sandboxUID)
	if r := inside(t, bare, nil, "write", filepath.Join(bare, ".git", "hooks", "post-checkout")); r.ok() {
		t.Errorf("created a hook in a workspace that had none: %s", r.out)
	}
}

func TestEscapeLinks(t *testing.T) {
	requireRoot(t)
	ws, host := workspace(t), hostDir(t)
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	escape(t, "symlink to a file outside", outside(t, "symlink-read", secret, filepath.Join(ws, "l1")), inside(t, ws, nil, "symlink-read", secret, filepath.Join(ws, "l2")))
	escape(t, "hard link to a file outside", outside(t, "hardlink-read", secret, filepath.Join(host, "h1")), inside(t, ws, nil, "hardlink-read", secret, filepath.Join(ws, "h2")))
	escape(t, "hard link to a visible system file", outside(t, "hardlink-read", "/etc/hostname", filepath.Join(filepath.Dir(ws), "h3")), inside(t, ws, nil, "hardlink-read", "/etc/hostname", filepath.Join(ws, "h4")))
	// A symlink planted in the workspace before the run leads nowhere inside.
	planted := filepath.Join(ws, "planted")
	if err := os.Symlink(secret, planted); err != nil {
		t.Fatal(err)
	}
	escape(t, "read through a planted symlink", outside(t, "read", planted), inside(t, ws, nil, "read", planted))
}

func TestEscapeReadSecrets(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	escape(t, "read /etc/shadow", outside(t, "read", "/etc/shadow"), inside(t, ws, nil, "read", "/etc/shadow"))
	// A read-only path the caller names inside /etc does not bring back what the sandbox hides
	// there.
	for _, ro := range []string{"/etc/ssh", "/etc"} {
		if _, err := os.Stat("/etc/ssh"); err != nil {
			break
		}
		edit := func(s *Spec) { s.ReadOnly = append(s.ReadOnly, ro) }
		escape(t, "list /etc/ssh with --ro "+ro, outside(t, "readdir", "/etc/ssh"), inside(t, ws, edit, "readdir", "/etc/ssh"))
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	escape(t, "list the home directory", outside(t, "readdir", home), inside(t, ws, nil, "readdir", home))
	// An ssh key in a home directory (a stand-in home: this machine's has no ~/.ssh).
	fakeHome := hostDir(t)
	key := filepath.Join(fakeHome, ".ssh", "id_ed25519")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", fakeHome)
	escape(t, "read ~/.ssh/id_ed25519", outside(t, "read", key), inside(t, ws, nil, "read", key))
	// The runner's environment: a secret in it is inherited by an ordinary child, never by
	// the sandbox's command.
	t.Setenv("WARDEN_CLIENT_SECRET", "runner-secret")
	escape(t, "the runner's environment", outside(t, "env", "WARDEN_CLIENT_SECRET"), inside(t, ws, nil, "env", "WARDEN_CLIENT_SECRET"))
	// Another process's environment through /proc: a host process's, and the init's (whose
	// environment is empty and unreadable anyway).
	sleeper := exec.Command("/bin/sleep", "30")
	sleeper.Env = []string{"WARDEN_CLIENT_SECRET=runner-secret"}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	environ := fmt.Sprintf("/proc/%d/environ", sleeper.Process.Pid)
	escape(t, "read a host process's /proc/N/environ", outside(t, "read", environ), inside(t, ws, nil, "read", environ))
	escape(t, "read the init's /proc/1/environ", outside(t, "read", environ), inside(t, ws, nil, "read", "/proc/1/environ"))
}

func TestEscapeHostPIDs(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	me, name := strconv.Itoa(os.Getpid()), filepath.Base(testBinary(t))
	escape(t, "see a host PID", outside(t, "seepid", me, name), inside(t, ws, nil, "seepid", me, name))
	escape(t, "signal a host PID", outside(t, "kill", me), inside(t, ws, nil, "kill", me))
}

func TestEscapePtrace(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	escape(t, "ptrace another process", outside(t, "ptrace-child"), inside(t, ws, nil, "ptrace-child"))
	sleeper := exec.Command("/bin/sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	pid := strconv.Itoa(sleeper.Process.Pid)
	escape(t, "ptrace a host process", outside(t, "ptrace", pid), inside(t, ws, nil, "ptrace", pid))
	escape(t, "ptrace the sandbox's init", outside(t, "ptrace", pid), inside(t, ws, nil, "ptrace", "1"))
	escape(t, "open a host process's /proc/N/mem", outside(t, "procmem", pid), inside(t, ws, nil, "procmem", pid))
	escape(t, "open the init's /proc/1/mem", outside(t, "procmem", pid), inside(t, ws, nil, "procmem", "1"))
}

func TestEscapeMountChrootUnshare(t *testing.T) {
	requireRoot(t)
	ws, host := workspace(t), hostDir(t)
	target := filepath.Join(host, "mnt")
	os.Mkdir(target, 0o755)
	out := outside(t, "mount", target)
	_ = unix.Unmount(target, unix.MNT_DETACH)
	escape(t, "mount", out, inside(t, ws, nil, "mount", "/tmp"))
	escape(t, "chroot", outside(t, "chroot", "/"), inside(t, ws, nil, "chroot", "/tmp"))
	escape(t, "unshare a user namespace", outside(t, "exec", "/usr/bin/unshare", "-U", "/bin/true"), inside(t, ws, nil, "exec", "/usr/bin/unshare", "-U", "/bin/true"))
	escape(t, "unshare(2) a user namespace", outside(t, "exec", "/usr/bin/unshare", "-U", "/bin/true"), inside(t, ws, nil, "unshare-user"))
	escape(t, "clone a user namespace (also with high flag bits)", outside(t, "clone-user"), inside(t, ws, nil, "clone-user"))
	escape(t, "mknod", outside(t, "mknod", filepath.Join(host, "null")), inside(t, ws, nil, "mknod", filepath.Join(ws, "null")))
	escape(t, "capabilities", outside(t, "caps"), inside(t, ws, nil, "caps"))
}

func TestEscapeSetuid(t *testing.T) {
	requireRoot(t)
	ws, host := workspace(t), hostDir(t)
	b, err := os.ReadFile(testBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(host, "suid"), filepath.Join(ws, "suid")} {
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(p, 0o4755); err != nil {
			t.Fatal(err)
		}
	}
	out := outsideAsPath(t, filepath.Join(host, "suid"), &syscall.Credential{Uid: sandboxUID, Gid: sandboxUID}, "euid")
	in := inside(t, ws, nil, "exec", filepath.Join(ws, "suid"), "euid")
	escape(t, "a setuid-root binary", out, in)
}

func outsideAsPath(t *testing.T, path string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	return result{code: exitCode(err), out: string(out)}
}

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	unlock := 0
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatal(errno)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

func TestEscapeTIOCSTI(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	_, slave := openPTY(t)
	cmd := exec.Command(testBinary(t), "tiocsti")
	cmd.Env = append(os.Environ(), probeEnv+"=1")
	cmd.Stdin = slave
	out, err := cmd.CombinedOutput()
	_, slave2 := openPTY(t)
	in := inside(t, ws, func(s *Spec) { s.Stdin = slave2 }, "tiocsti")
	escape(t, "TIOCSTI", result{exitCode(err), string(out)}, in)
}

// forkBombSize is how many processes the fork bomb probe starts: four times the sandbox's pids
// limit below is as good a proof as 2000 were, and 2000 took minutes under -race (every start
// and reap of a child of a race-instrumented binary is slow).
const forkBombSize = 256

func TestForkBombStoppedByPidsLimit(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	out := outside(t, "forkbomb")
	in := inside(t, ws, func(s *Spec) { s.Limits.Pids = 64 }, "forkbomb")
	escape(t, fmt.Sprintf("fork bomb (%d processes)", forkBombSize), out, in)
}

func TestMemoryHogStoppedByMemoryLimit(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	out := outside(t, "memhog", "512")
	in := inside(t, ws, func(s *Spec) { s.Limits.Memory = 128 << 20 }, "memhog", "512")
	escape(t, "allocate 512 MB under a 128 MB limit", out, in)
}

// hostIPv4 is this machine's first address that is not loopback.
func hostIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

// acceptAndClose accepts connections on ln and closes them at once, until ln is closed: a
// listener that answers, so that a refused connection is the sandbox's doing.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func TestEscapeNetwork(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go acceptAndClose(ln)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, addr := range []string{"127.0.0.1:" + port, net.JoinHostPort(hostIPv4(t), port)} {
		escape(t, "connect straight to "+addr, outside(t, "connect", addr), inside(t, ws, nil, "connect", addr))
	}

	udp, err := net.ListenPacket("udp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	go echoUDP(udp, nil)
	uport := strconv.Itoa(udp.LocalAddr().(*net.UDPAddr).Port)
	for _, addr := range []string{"127.0.0.1:" + uport, net.JoinHostPort(hostIPv4(t), uport)} {
		escape(t, "UDP to "+addr, outside(t, "udp", addr), inside(t, ws, nil, "udp", addr))
	}

	dns, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	go echoUDP(dns, dnsAnswer)
	escape(t, "a DNS lookup", outside(t, "dns", dns.LocalAddr().String(), "example.test"), inside(t, ws, nil, "dns", dns.LocalAddr().String(), "example.test"))
	if r := inside(t, ws, nil, "dns-system", "example.com"); r.ok() {
		t.Errorf("the system resolver answered inside: %s", r.out)
	}
}

// echoUDP answers each datagram with answer(datagram), or the datagram itself.
func echoUDP(c net.PacketConn, answer func([]byte) []byte) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		reply := buf[:n]
		if answer != nil {
			reply = answer(buf[:n])
		}
		_, _ = c.WriteTo(reply, from)
	}
}

// dnsAnswer answers any A query with 192.0.2.7.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	// Find the end of the question (name, type, class).
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	i += 5
	if i > len(q) {
		return nil
	}
	resp := append([]byte{}, q[:i]...)
	resp[2], resp[3] = 0x81, 0x80 // response, recursion available, no error
	resp[6], resp[7] = 0, 1       // one answer
	resp[8], resp[9], resp[10], resp[11] = 0, 0, 0, 0
	if q[i-4] != 0 || q[i-3] != 1 { // not an A query: no answers
		resp[7] = 0
		return resp
	}
	return append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7)
}

func TestEscapeUnixSockets(t *testing.T) {
	requireRoot(t)
	ws, host := workspace(t), hostDir(t)
	path := filepath.Join(host, "host.sock")
	for _, addr := range []string{path, "@warden-test-" + strconv.Itoa(os.Getpid())} {
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go acceptAndClose(ln)
		os.Chmod(path, 0o777)
		escape(t, "connect to the host's unix socket "+addr, outside(t, "unix", addr), inside(t, ws, nil, "unix", addr))
	}
}

func TestEscapeKernelInterfaces(t *testing.T) {
	requireRoot(t)
	ws := workspace(t)
	if out := outside(t, "io_uring"); out.ok() {
		escape(t, "io_uring", out, inside(t, ws, nil, "io_uring"))
	} else {
		t.Logf("io_uring: not available outside either (%s); the filter denies it regardless", strings.TrimSpace(out.out))
		if inside(t, ws, nil, "io_uring").ok() {
			t.Error("io_uring set up inside the sandbox")
		}
	}
	escape(t, "bpf", outside(t, "bpf"), inside(t, ws, nil, "bpf"))
	for fam, name := range map[int]string{unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET", unix.AF_VSOCK: "AF_VSOCK"} {
		out := outside(t, "socket", strconv.Itoa(fam))
		in := inside(t, ws, nil, "socket", strconv.Itoa(fam))
		if !out.ok() {
			t.Logf("%s: this kernel has none outside either (%s)", name, strings.TrimSpace(out.out))
			if in.ok() {
				t.Errorf("%s socket inside", name)
			}
			continue
		}
		escape(t, name+" socket", out, in)
	}
}

// heartbeatAge reports how long ago the heartbeat file last changed, and the pid in it.
func heartbeat(path string) (pid int, last time.Time, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, time.Time{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, time.Time{}, false
	}
	pid, _ = strconv.Atoi(f[0])
	ns, _ := strconv.ParseInt(f[1], 10, 64)
	return pid, time.Unix(0, ns), true
}

// beating reports whether the heartbeat at path is still going: after a grace period for a
// kill to take effect, it must advance within a pause.
func beating(path string) bool {
	time.Sleep(200 * time.Millisecond)
	_, before, _ := heartbeat(path)
	time.Sleep(300 * time.Millisecond)
	_, after, ok := heartbeat(path)
	return ok && after.After(before)
}

func waitHeartbeat(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if _, _, ok := heartbeat(path); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no heartbeat")
}

func TestEscapeChildSurvivesKill(t *testing.T) {
	requireRoot(t)
	// Outside: a child in its own session, ignoring SIGTERM, outlives its parent.
	host := hostDir(t)
	hbOut := filepath.Join(host, "hb")
	if r := outside(t, "daemon", hbOut); !r.ok() {
		t.Fatalf("daemon outside: %s", r.out)
	}
	waitHeartbeat(t, hbOut)
	if !beating(hbOut) {
		t.Fatal("control: the daemon outside did not survive its parent")
	}
	if pid, _, ok := heartbeat(hbOut); ok {
		_ = unix.Kill(pid, unix.SIGKILL)
	}

	ws := workspace(t)
	hb := filepath.Join(ws, "hb")
	exe := testBinary(t)
	sb, err := Start(context.Background(), &Spec{
		Command: []string{exe, "daemon", hb, "wait"}, Env: []string{probeEnv + "=1"},
		Workspace: ws, ReadOnly: []string{filepath.Dir(exe)}, Limits: Limits{Pids: 64},
		Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	waitHeartbeat(t, hb)
	n := sb.Kill()
	ex, _ := sb.Wait()
	if ex.Kind != ExitedKilled || n < 3 {
		t.Errorf("Kill: %d processes, exit %+v; want the init, the command and its daemon", n, ex)
	}
	if beating(hb) {
		t.Error("ESCAPED: the daemon survived the sandbox's kill")
	}
	t.Logf("kill ended %d processes", n)
}

// runnerEnv makes the test binary a runner that starts a sandbox with a daemon and waits
// (TestEscapeRunnerDies kills it).
const runnerEnv = "WARDEN_TEST_RUNNER"

func runnerMain() {
	exe, _ := os.Executable()
	ws, hb := os.Getenv("WS"), os.Getenv("HB")
	if os.Getenv(runnerEnv) == "plain" {
		c := exec.Command(exe, "daemon", hb, "wait")
		c.Env = []string{probeEnv + "=1"}
		_ = c.Start()
	} else {
		_, err := Start(context.Background(), &Spec{
			Command: []string{exe, "daemon", hb, "wait"}, Env: []string{probeEnv + "=1"},
			Workspace: ws, ReadOnly: []string{filepath.Dir(exe)}, Stdout: io.Discard, Stderr: io.Discard,
		})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	fmt.Println("started")
	time.Sleep(60 * time.Second)
	os.Exit(0)
}

func TestEscapeRunnerDies(t *testing.T) {
	requireRoot(t)
	run := func(mode, ws, hb string) {
		t.Helper()
		cmd := exec.Command(testBinary(t))
		cmd.Env = append(os.Environ(), runnerEnv+"="+mode, "WS="+ws, "HB="+hb)
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitHeartbeat(t, hb)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	host := hostDir(t)
	hbOut := filepath.Join(host, "hb")
	run("plain", host, hbOut)
	if !beating(hbOut) {
		t.Fatal("control: a child of an ordinary process did not survive its parent's death")
	}
	if pid, _, ok := heartbeat(hbOut); ok {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	ws := workspace(t)
	hb := filepath.Join(ws, "hb")
	run("sandbox", ws, hb)
	if beating(hb) {
		t.Error("ESCAPED: the sandbox ran on after its runner died")
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
