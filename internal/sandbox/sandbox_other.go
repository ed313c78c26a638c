//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Sandbox is a running sandbox; warden's sandbox exists only on Linux.
type Sandbox struct {
	Listeners map[string]net.Listener
	Weakened  []Problem
}

var errUnsupported = errors.New("warden run needs Linux (namespaces, seccomp and Landlock)")

// MaybeInit does nothing off Linux.
func MaybeInit() {}

// Start fails off Linux.
func Start(ctx context.Context, spec *Spec) (*Sandbox, error) { return nil, errUnsupported }

// CommandUser fails off Linux.
func CommandUser(workspace string) (uid, gid int, err error) { return 0, 0, errUnsupported }

func (sb *Sandbox) Wait() (Exit, error)             { return Exit{}, errUnsupported }
func (sb *Sandbox) Signal(sig syscall.Signal) error { return errUnsupported }
func (sb *Sandbox) Kill() int                       { return 0 }
func (sb *Sandbox) Freeze(on bool) error            { return errUnsupported }
func (sb *Sandbox) CanFreeze() bool                 { return false }
