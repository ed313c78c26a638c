//go:build !linux

package bench

import (
	"os"
	"syscall"
)

// Without /proc the drill sees only the runner itself.
func descendants(int) []int { return nil }

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

func killTree(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}
