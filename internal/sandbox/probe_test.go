//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the probe that tries each escape: with WARDEN_PROBE set, TestMain
// runs probe(os.Args[1:]) instead of the tests. The probe exits 0 when the action succeeded
// (an escape, inside the sandbox), 3 when it was refused, and prints what happened.
const probeEnv = "WARDEN_PROBE"

func probeMain() {
	err := probe(os.Args[1:])
	if err != nil {
		fmt.Println("refused:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func probe(args []string) error {
	if len(args) == 0 {
		return errors.New("no action")
	}
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch args[0] {
	case "true":
		return nil
	case "write":
		return os.WriteFile(arg(1), []byte("escaped"), 0o644)
	case "read":
		b, err := os.ReadFile(arg(1))
		if err == nil {
			fmt.Printf("%s", b)
		}
		return err
	case "readdir":
		_, err := os.ReadDir(arg(1))
		return err
	case "symlink-read":
		if err := os.Symlink(arg(1), arg(2)); err != nil {
			return err
		}
		_, err := os.ReadFile(arg(2))
		return err
	case "hardlink-read":
		if err := os.Link(arg(1), arg(2)); err != nil {
			return err
		}
		_, err := os.ReadFile(arg(2))
		return err
	case "rename-mkdir":
		// The way round a read-only .git/hooks: move .git away and make a new one.
		if err := os.Rename(arg(1), arg(1)+".moved"); err != nil {
			return err
		}
		return os.MkdirAll(filepath.Join(arg(1), "hooks"), 0o755)
	case "env":
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, arg(1)+"=") {
				return nil
			}
		}
		return errors.New(arg(1) + " is not in the environment")
	case "seepid":
		b, err := os.ReadFile("/proc/" + arg(1) + "/cmdline")
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), arg(2)) {
			return fmt.Errorf("pid %s is another process: %q", arg(1), b)
		}
		return nil
	case "ptrace":
		pid, _ := strconv.Atoi(arg(1))
		if err := unix.PtraceAttach(pid); err != nil {
			return err
		}
		_ = unix.PtraceDetach(pid)
		return nil
	case "ptrace-child":
		c := exec.Command("/bin/sleep", "5")
		if err := c.Start(); err != nil {
			return err
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
		time.Sleep(50 * time.Millisecond)
		pid := c.Process.Pid
		if err := unix.PtraceAttach(pid); err != nil {
			return err
		}
		_ = unix.PtraceDetach(pid)
		return nil
	case "procmem":
		f, err := os.Open("/proc/" + arg(1) + "/mem")
		if err != nil {
			return err
		}
		f.Close()
		return nil
	case "mount":
		return unix.Mount("tmpfs", arg(1), "tmpfs", 0, "")
	case "chroot":
		return unix.Chroot(arg(1))
	case "unshare-user":
		return unix.Unshare(unix.CLONE_NEWUSER)
	case "clone-user":
		// clone(2) with CLONE_NEWUSER, and the same with garbage in the flags' high half.
		for _, flags := range []uintptr{unix.CLONE_NEWUSER | uintptr(syscall.SIGCHLD), 1<<40 | unix.CLONE_NEWUSER | uintptr(syscall.SIGCHLD)} {
			pid, _, errno := unix.RawSyscall6(unix.SYS_CLONE, flags, 0, 0, 0, 0, 0)
			if errno == 0 {
				if pid == 0 {
					unix.Exit(0)
				}
				return nil
			}
			if errno != unix.EPERM {
				return errno
			}
		}
		return unix.EPERM
	case "mknod":
		return unix.Mknod(arg(1), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	case "euid":
		fmt.Println(os.Geteuid())
		if os.Geteuid() == 0 {
			return nil
		}
		return fmt.Errorf("euid %d", os.Geteuid())
	case "exec":
		out, err := exec.Command(arg(1), args[2:]...).CombinedOutput()
		fmt.Printf("%s", out)
		return err
	case "tiocsti":
		c := byte('x')
		for _, hi := range []uintptr{0, 1 << 32} {
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, 0, hi|unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
			if errno == 0 {
				return nil
			}
			if errno != unix.EPERM {
				return errno
			}
		}
		return unix.EPERM
	case "forkbomb":
		// Bounded: at most forkBombSize children, each sleeping until the probe ends.
		n := 0
		var cmds []*exec.Cmd
		defer func() {
			for _, c := range cmds {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		}()
		for n < forkBombSize {
			c := exec.Command("/bin/sleep", "30")
			if err := c.Start(); err != nil {
				fmt.Println("started", n)
				return err
			}
			cmds = append(cmds, c)
			n++
		}
		fmt.Println("started", n)
		return nil
	case "memhog":
		mb, _ := strconv.Atoi(arg(1))
		var keep [][]byte
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep), "MB")
		return nil
	case "connect":
		c, err := net.DialTimeout("tcp", arg(1), 2*time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	case "udp":
		c, err := net.Dial("udp", arg(1))
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 16)
		_, err = c.Read(buf)
		return err
	case "dns":
		// Ask the DNS server at arg(1) for arg(2), and the system resolver too.
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", arg(1))
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := r.LookupHost(ctx, arg(2)); err != nil {
			return err
		}
		return nil
	case "dns-system":
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := (&net.Resolver{PreferGo: true}).LookupHost(ctx, arg(1))
		return err
	case "unix":
		c, err := net.DialTimeout("unix", arg(1), 2*time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	case "io_uring":
		var params [120]byte
		fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params)), 0)
		if errno != 0 {
			return errno
		}
		unix.Close(int(fd))
		return nil
	case "bpf":
		_, _, errno := unix.Syscall(unix.SYS_BPF, 0, 0, 0)
		if errno == unix.EPERM {
			return errno
		}
		return nil
	case "socket":
		fam, _ := strconv.Atoi(arg(1))
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM, 0)
		if err != nil {
			fd, err = unix.Socket(fam, unix.SOCK_RAW, 0)
		}
		if err != nil {
			return err
		}
		unix.Close(fd)
		return nil
	case "kill":
		pid, _ := strconv.Atoi(arg(1))
		return unix.Kill(pid, 0)
	case "caps":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "CapEff:") || strings.HasPrefix(line, "CapPrm:") || strings.HasPrefix(line, "CapBnd:") {
				if strings.TrimSpace(strings.SplitN(line, ":", 2)[1]) != "0000000000000000" {
					return nil
				}
			}
		}
		return errors.New("no capabilities")
	case "daemon":
		// A child that tries to outlive the sandbox: its own session, SIGTERM and SIGHUP
		// ignored, writing a heartbeat to arg(1) every 20 ms for at most 20 s.
		c := exec.Command(os.Args[0], "heartbeat", arg(1))
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			return err
		}
		if arg(2) == "wait" {
			time.Sleep(20 * time.Second)
		}
		return nil
	case "heartbeat":
		signal.Ignore(syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
		for i := 0; i < 1000; i++ {
			// Written aside and renamed, so a reader never sees a half-written beat.
			tmp := arg(1) + ".tmp"
			_ = os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+" "+strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
			_ = os.Rename(tmp, arg(1))
			time.Sleep(20 * time.Millisecond)
		}
		return nil
	case "sleep":
		d, _ := time.ParseDuration(arg(1))
		time.Sleep(d)
		return nil
	}
	return fmt.Errorf("unknown action %q", args[0])
}
