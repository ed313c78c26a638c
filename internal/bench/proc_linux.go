package bench

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// descendants lists the running processes below pid (not pid itself), from /proc: a sandbox's
// processes are the runner's descendants, whatever namespaces they are in.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := stat(p); ok && state != 'Z' {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// stat reads a process's parent and state from /proc/PID/stat ("pid (comm) S ppid …", where comm
// may itself contain spaces and parentheses).
func stat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// alive says whether pid runs (a zombie has ended: it only waits to be reaped).
func alive(pid int) bool {
	_, state, ok := stat(pid)
	return ok && state != 'Z'
}

// killTree kills pid's descendants and pid: only ever processes the drill started.
func killTree(pid int) {
	for _, p := range descendants(pid) {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
