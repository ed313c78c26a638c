package initproc

import "errors"

// The runner and the init talk over a SOCK_SEQPACKET socket pair (the init's fd 3): one message
// per packet, with file descriptors alongside when the init hands over its listeners.
//
//	runner → init   config             what to build and run
//	init → runner   ready  + fds       the root is built; the listeners, in Spec order
//	init → runner   started            the command runs (pid inside the sandbox)
//	init → runner   exit               the command ended; the init exits next
//	init → runner   error              a step failed; the init exits next
//	runner → init   signal             pass a signal to the command
//
// The runner closing its end kills the sandbox: the init exits, and with it the PID namespace.
// Messages are encoded by hand (varints and length-prefixed strings), not as JSON: importing
// encoding/json would make the init wait for half of warden's packages to initialise.

// MaxMessage bounds a message, in bytes.
const MaxMessage = 1 << 20

// Config is everything the init needs; the runner computes it.
type Config struct {
	Argv      []string
	Env       []string
	Dir       string
	Hostname  string
	UID       int
	GID       int
	SetID     bool // switch to UID/GID (several ids are mapped)
	Mounts    []Mount
	Listeners []Listener
	Landlock  Landlock
	Filter    []Instr // the seccomp program; none means no seccomp
	CgroupNS  bool
	Rlimits   []Rlimit
}

// Mount is one step of building the sandbox's root, as the init performs it. The runner plans
// the steps (it can read the host's paths and explain a mistake); the init carries them out
// under /newroot.
type Mount struct {
	Kind string // bind, tmpfs, symlink, mask, proc, devpts, dir
	Src  string
	Dst  string
	RW   bool
	// Dev keeps device nodes usable (the /dev binds); every other mount is nodev.
	Dev bool
	// File says the bind's source is not a directory, so its mount point is a file.
	File bool
	// Guard refuses the mount when a component of Dst inside the workspace is a symlink, so a
	// protected path cannot be redirected by the workspace's own content.
	Guard bool
	Mode  uint32
	// Own gives a created directory to the command's user.
	Own bool
	// Scratch marks a mount the command may fill freely (private /tmp, /dev/shm): Landlock gives
	// it every right.
	Scratch bool
}

// Listener is a loopback TCP listener the init opens and hands to the runner.
type Listener struct {
	Name string
	Port int
}

// Landlock is the ruleset the init enforces, with the rights already negotiated down to the
// kernel's ABI. HandledFS zero means no Landlock.
type Landlock struct {
	HandledFS, HandledNet, Scoped uint64
	Rules                         []PathRule
	Ports                         []PortRule
	// FileRights bounds a rule whose path turns out not to be a directory: directory-only
	// rights on a file are EINVAL.
	FileRights uint64
}

// PathRule grants Access beneath Path.
type PathRule struct {
	Path   string
	Access uint64
}

// PortRule grants Access (TCP connect) to Port.
type PortRule struct {
	Port, Access uint64
}

// Instr is one classic BPF instruction (struct sock_filter).
type Instr struct {
	Op     uint16
	Jt, Jf uint8
	K      uint32
}

// Rlimit is one resource limit the init sets before starting the command.
type Rlimit struct {
	Resource int
	Cur, Max uint64
}

// Message is one packet on the control socket.
type Message struct {
	Type     string
	Config   *Config
	Step     string
	Error    string
	NotFound bool
	PID      int
	Code     int
	Signal   int
}

var errMalformed = errors.New("malformed message")

// Encode returns the message's wire form.
func (m *Message) Encode() []byte {
	var e encoder
	e.string(m.Type)
	e.bool(m.Config != nil)
	if c := m.Config; c != nil {
		e.strings(c.Argv)
		e.strings(c.Env)
		e.string(c.Dir)
		e.string(c.Hostname)
		e.int(c.UID)
		e.int(c.GID)
		e.bool(c.SetID)
		e.uint(uint64(len(c.Mounts)))
		for _, x := range c.Mounts {
			e.string(x.Kind)
			e.string(x.Src)
			e.string(x.Dst)
			e.bool(x.RW)
			e.bool(x.Dev)
			e.bool(x.File)
			e.bool(x.Guard)
			e.uint(uint64(x.Mode))
			e.bool(x.Own)
			e.bool(x.Scratch)
		}
		e.uint(uint64(len(c.Listeners)))
		for _, l := range c.Listeners {
			e.string(l.Name)
			e.int(l.Port)
		}
		l := &c.Landlock
		e.uint(l.HandledFS)
		e.uint(l.HandledNet)
		e.uint(l.Scoped)
		e.uint(uint64(len(l.Rules)))
		for _, r := range l.Rules {
			e.string(r.Path)
			e.uint(r.Access)
		}
		e.uint(uint64(len(l.Ports)))
		for _, p := range l.Ports {
			e.uint(p.Port)
			e.uint(p.Access)
		}
		e.uint(l.FileRights)
		e.uint(uint64(len(c.Filter)))
		for _, in := range c.Filter {
			e.uint(uint64(in.Op))
			e.uint(uint64(in.Jt))
			e.uint(uint64(in.Jf))
			e.uint(uint64(in.K))
		}
		e.bool(c.CgroupNS)
		e.uint(uint64(len(c.Rlimits)))
		for _, r := range c.Rlimits {
			e.int(r.Resource)
			e.uint(r.Cur)
			e.uint(r.Max)
		}
	}
	e.string(m.Step)
	e.string(m.Error)
	e.bool(m.NotFound)
	e.int(m.PID)
	e.int(m.Code)
	e.int(m.Signal)
	return e
}

// DecodeMessage reads a message in the form Encode writes.
func DecodeMessage(b []byte) (Message, error) {
	d := decoder{b: b}
	var m Message
	m.Type = d.string()
	if d.bool() {
		c := &Config{}
		c.Argv = d.strings()
		c.Env = d.strings()
		c.Dir = d.string()
		c.Hostname = d.string()
		c.UID = d.int()
		c.GID = d.int()
		c.SetID = d.bool()
		c.Mounts = decodeList(&d, func() Mount {
			return Mount{Kind: d.string(), Src: d.string(), Dst: d.string(), RW: d.bool(), Dev: d.bool(), File: d.bool(),
				Guard: d.bool(), Mode: uint32(d.uint()), Own: d.bool(), Scratch: d.bool()}
		})
		c.Listeners = decodeList(&d, func() Listener { return Listener{Name: d.string(), Port: d.int()} })
		l := &c.Landlock
		l.HandledFS = d.uint()
		l.HandledNet = d.uint()
		l.Scoped = d.uint()
		l.Rules = decodeList(&d, func() PathRule { return PathRule{Path: d.string(), Access: d.uint()} })
		l.Ports = decodeList(&d, func() PortRule { return PortRule{Port: d.uint(), Access: d.uint()} })
		l.FileRights = d.uint()
		c.Filter = decodeList(&d, func() Instr {
			return Instr{Op: uint16(d.uint()), Jt: uint8(d.uint()), Jf: uint8(d.uint()), K: uint32(d.uint())}
		})
		c.CgroupNS = d.bool()
		c.Rlimits = decodeList(&d, func() Rlimit { return Rlimit{Resource: d.int(), Cur: d.uint(), Max: d.uint()} })
		m.Config = c
	}
	m.Step = d.string()
	m.Error = d.string()
	m.NotFound = d.bool()
	m.PID = d.int()
	m.Code = d.int()
	m.Signal = d.int()
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	if d.err != nil {
		return Message{}, d.err
	}
	return m, nil
}

type encoder []byte

func (e *encoder) uint(v uint64) {
	for v >= 0x80 {
		*e = append(*e, byte(v)|0x80)
		v >>= 7
	}
	*e = append(*e, byte(v))
}

func (e *encoder) int(v int) { e.uint(uint64(int64(v))) }

func (e *encoder) bool(v bool) {
	if v {
		e.uint(1)
	} else {
		e.uint(0)
	}
}

func (e *encoder) string(s string) {
	e.uint(uint64(len(s)))
	*e = append(*e, s...)
}

func (e *encoder) strings(ss []string) {
	e.uint(uint64(len(ss)))
	for _, s := range ss {
		e.string(s)
	}
}

// decoder reads what encoder wrote; after the first error it reads zeros.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	var v uint64
	for shift := uint(0); d.err == nil; shift += 7 {
		if len(d.b) == 0 || shift > 63 {
			d.err = errMalformed
			break
		}
		c := d.b[0]
		d.b = d.b[1:]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	return 0
}

func (d *decoder) int() int { return int(int64(d.uint())) }

func (d *decoder) bool() bool { return d.uint() != 0 }

// len reads a length: of a string, in bytes, or of a list, whose every element takes a byte
// at least. Either way it cannot exceed what is left, which bounds what a bad message makes
// the reader allocate.
func (d *decoder) len() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.len()
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string { return decodeList(d, d.string) }

// decodeList reads a list's length, then each element with elem; an empty list is nil.
func decodeList[T any](d *decoder, elem func() T) []T {
	n := d.len()
	if n == 0 {
		return nil
	}
	list := make([]T, n)
	for i := range list {
		list[i] = elem()
	}
	return list
}
