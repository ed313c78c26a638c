package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// The runner and the init talk over a SOCK_SEQPACKET socket pair (the init's fd 3): one JSON
// message per packet, with file descriptors alongside when the init hands over its listeners.
//
//	runner → init   config             what to build and run
//	init → runner   ready  + fds       the root is built; the listeners, in Spec order
//	init → runner   started            the command runs (pid inside the sandbox)
//	init → runner   exit               the command ended; the init exits next
//	init → runner   error              a step failed; the init exits next
//	runner → init   signal             pass a signal to the command
//
// The runner closing its end kills the sandbox: the init exits, and with it the PID namespace.

// initConfig is everything the init needs; the runner computes it.
type initConfig struct {
	Argv      []string     `json:"argv"`
	Env       []string     `json:"env"`
	Dir       string       `json:"dir"`
	Hostname  string       `json:"hostname"`
	UID       int          `json:"uid"`
	GID       int          `json:"gid"`
	SetID     bool         `json:"set_id"` // switch to UID/GID (several ids are mapped)
	Mounts    []mount      `json:"mounts"`
	Listeners []Listener   `json:"listeners"`
	Landlock  landlockPlan `json:"landlock"`
	Seccomp   bool         `json:"seccomp"`
	CgroupNS  bool         `json:"cgroup_ns"`
	Rlimits   []rlimit     `json:"rlimits"`
}

type rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

type message struct {
	Type     string      `json:"type"`
	Config   *initConfig `json:"config,omitempty"`
	Step     string      `json:"step,omitempty"`
	Error    string      `json:"error,omitempty"`
	NotFound bool        `json:"not_found,omitempty"`
	PID      int         `json:"pid,omitempty"`
	Code     int         `json:"code,omitempty"`
	Signal   int         `json:"signal,omitempty"`
}

const maxMessage = 1 << 20

func send(c *net.UnixConn, m message, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > maxMessage {
		return errors.New("message too large")
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.WriteMsgUnix(b, oob, nil)
	return err
}

func recv(c *net.UnixConn) (message, []int, error) {
	buf := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(16*4))
	n, oobn, flags, _, err := c.ReadMsgUnix(buf, oob)
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
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return message{}, nil, errors.New("truncated message")
	}
	var m message
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return message{}, fds, fmt.Errorf("bad message: %w", err)
	}
	return m, fds, nil
}

var errEOF = errors.New("peer closed the control socket")
