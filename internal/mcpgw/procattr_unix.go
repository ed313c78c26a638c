//go:build unix

package mcpgw

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts a local MCP server in its own process group, so that stopping it also
// stops what it started (npx runs the server as a child).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills whatever is left of a server's process group.
func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
