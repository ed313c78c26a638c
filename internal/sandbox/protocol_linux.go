package sandbox

import (
	"errors"
	"fmt"
	"net"

	"github.com/wardenhq/warden/internal/sandbox/initproc"
	"golang.org/x/sys/unix"
)

// The protocol and its types are package initproc's (see wire.go there); the runner's side
// reads and writes them on a net.UnixConn.
type (
	initConfig = initproc.Config
	message    = initproc.Message
	mount      = initproc.Mount
	rlimit     = initproc.Rlimit
)

const maxMessage = initproc.MaxMessage

func send(c *net.UnixConn, m message, fds ...int) error {
	b := m.Encode()
	if len(b) > maxMessage {
		return errors.New("message too large")
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := c.WriteMsgUnix(b, oob, nil)
	return err
}

// recv reads one message. The buffer is sized to the packet (peeked with MSG_TRUNC) rather
// than to maxMessage: a megabyte per message made the runner collect garbage in the middle of
// every sandbox's start.
func recv(c *net.UnixConn) (message, []int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return message{}, nil, err
	}
	var (
		buf             []byte
		oob             = make([]byte, unix.CmsgSpace(16*4))
		n, oobn, rflags int
		rerr            error
	)
	err = rc.Read(func(fd uintptr) bool {
		size, _, perr := unix.Recvfrom(int(fd), nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
		if errors.Is(perr, unix.EAGAIN) || errors.Is(perr, unix.EINTR) {
			return false
		}
		if perr != nil {
			rerr = perr
			return true
		}
		buf = make([]byte, min(max(size, 1), maxMessage+1))
		n, oobn, rflags, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return message{}, nil, err
	}
	if n == 0 {
		return message{}, nil, errEOF
	}
	var fds []int
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return message{}, nil, err
		}
		for _, scm := range scms {
			got, err := unix.ParseUnixRights(&scm)
			if err != nil {
				return message{}, nil, err
			}
			fds = append(fds, got...)
		}
	}
	if rflags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || n > maxMessage {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return message{}, nil, errors.New("truncated message")
	}
	m, err := initproc.DecodeMessage(buf[:n])
	if err != nil {
		return message{}, fds, fmt.Errorf("bad message: %w", err)
	}
	return m, fds, nil
}

var errEOF = errors.New("peer closed the control socket")
