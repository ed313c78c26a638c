package mcpgw

import "syscall"

// syscallZero is the signal that only checks whether a process exists.
var syscallZero = syscall.Signal(0)
