package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup is the sandbox's control group: one directory on cgroup v2, or one per controller
// on v1. It limits memory, pids and CPU, counts the sandbox's processes, freezes and kills
// them. Either version may be missing a controller; what could not be applied is reported.
type cgroup struct {
	v2 string            // the cgroup's directory on the unified hierarchy
	v1 map[string]string // controller → directory, on v1
	// missing are the limits that were asked for but could not be set, with the reason.
	missing []Problem
}

// cgroupMount is a cgroup hierarchy mounted on this machine.
type cgroupMount struct {
	point, root string
	v2          bool
	controllers []string // v1: the controllers of the hierarchy
}

// newCgroup creates the sandbox's cgroup named name with lim applied. It never fails for
// lack of cgroups: it reports every limit it could not set in missing, and returns nil when
// it could make no cgroup at all.
func newCgroup(name string, lim Limits) *cgroup {
	mounts, self := cgroupMounts(), selfCgroups()
	cg := &cgroup{v1: map[string]string{}}
	for _, m := range mounts {
		if m.v2 {
			if dir, ok := cg.makeV2(m, name, lim); ok {
				cg.v2 = dir
				break
			}
		}
	}
	if cg.v2 == "" {
		for _, m := range mounts {
			if m.v2 {
				continue
			}
			for _, c := range m.controllers {
				if _, done := cg.v1[c]; done || !wantV1(c) {
					continue
				}
				rel, ok := self[c]
				if !ok {
					continue
				}
				dir := filepath.Join(m.point, strings.TrimPrefix(rel, m.root), name)
				if err := os.Mkdir(dir, 0o755); err == nil {
					cg.v1[c] = dir
				}
			}
		}
		cg.applyV1(lim)
	}
	if cg.v2 == "" && len(cg.v1) == 0 {
		cg.missing = nil
		cg.require(lim, "no writable cgroup hierarchy")
		return &cgroup{missing: cg.missing}
	}
	return cg
}

func wantV1(c string) bool {
	return c == "memory" || c == "pids" || c == "cpu" || c == "freezer"
}

// require reports each limit in lim as missing for why.
func (cg *cgroup) require(lim Limits, why string) {
	if lim.Memory > 0 {
		cg.missing = append(cg.missing, Problem{MechMemory, why})
	}
	if lim.Pids > 0 {
		cg.missing = append(cg.missing, Problem{MechPids, why})
	}
	if lim.CPU > 0 {
		cg.missing = append(cg.missing, Problem{MechCPU, why})
	}
}

// makeV2 makes the cgroup on the unified hierarchy: under warden/ at the hierarchy's root,
// where controllers may be enabled (a cgroup with processes of its own, such as the runner's,
// cannot pass controllers to children).
func (cg *cgroup) makeV2(m cgroupMount, name string, lim Limits) (string, bool) {
	avail, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
	if err != nil {
		return "", false
	}
	want := []string{}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if strings.Contains(" "+strings.TrimSpace(string(avail))+" ", " "+c+" ") {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return "", false
	}
	parent := filepath.Join(m.point, "warden")
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", false
	}
	enable := strings.Join(want, " ")
	if os.WriteFile(filepath.Join(m.point, "cgroup.subtree_control"), []byte(enable), 0) != nil ||
		os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte(enable), 0) != nil {
		return "", false
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", false
	}
	set := func(mech Mechanism, file, value string) {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
			cg.missing = append(cg.missing, Problem{mech, "cgroup v2 " + file + ": " + err.Error()})
		}
	}
	if lim.Memory > 0 {
		set(MechMemory, "memory.max", strconv.FormatInt(lim.Memory, 10))
		_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0)
	}
	if lim.Pids > 0 {
		set(MechPids, "pids.max", strconv.Itoa(lim.Pids))
	}
	if lim.CPU > 0 {
		set(MechCPU, "cpu.max", fmt.Sprintf("%d 100000", int64(lim.CPU*100000)))
	}
	return dir, true
}

func (cg *cgroup) applyV1(lim Limits) {
	set := func(mech Mechanism, controller string, files ...string) {
		dir, ok := cg.v1[controller]
		if !ok {
			cg.missing = append(cg.missing, Problem{mech, "no writable " + controller + " cgroup controller"})
			return
		}
		for i := 0; i+1 < len(files); i += 2 {
			if err := os.WriteFile(filepath.Join(dir, files[i]), []byte(files[i+1]), 0); err != nil {
				cg.missing = append(cg.missing, Problem{mech, "cgroup v1 " + files[i] + ": " + err.Error()})
				return
			}
		}
	}
	if lim.Memory > 0 {
		set(MechMemory, "memory", "memory.limit_in_bytes", strconv.FormatInt(lim.Memory, 10))
		if dir, ok := cg.v1["memory"]; ok {
			// Where swap is accounted, it must not stretch the limit.
			_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(lim.Memory, 10)), 0)
		}
	}
	if lim.Pids > 0 {
		set(MechPids, "pids", "pids.max", strconv.Itoa(lim.Pids))
	}
	if lim.CPU > 0 {
		set(MechCPU, "cpu", "cpu.cfs_period_us", "100000", "cpu.cfs_quota_us", strconv.FormatInt(int64(lim.CPU*100000), 10))
	}
}

// usable reports whether there is a cgroup at all.
func (cg *cgroup) usable() bool { return cg != nil && (cg.v2 != "" || len(cg.v1) > 0) }

// attach moves pid, with all its threads, into the cgroup.
func (cg *cgroup) attach(pid int) error {
	dirs := cg.v1
	if cg.v2 != "" {
		dirs = map[string]string{"unified": cg.v2}
	}
	for c, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("joining the %s cgroup: %w", c, err)
		}
	}
	return nil
}

// procsDir is a directory whose cgroup.procs lists exactly the sandbox's processes.
func (cg *cgroup) procsDir() string {
	if cg.v2 != "" {
		return cg.v2
	}
	for _, c := range []string{"freezer", "pids", "memory", "cpu"} {
		if d, ok := cg.v1[c]; ok {
			return d
		}
	}
	return ""
}

// procs lists the sandbox's processes by their PID on the host.
func (cg *cgroup) procs() []int {
	dir := cg.procsDir()
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// canFreeze reports whether freeze works here.
func (cg *cgroup) canFreeze() bool {
	if cg.v2 != "" {
		_, err := os.Stat(filepath.Join(cg.v2, "cgroup.freeze"))
		return err == nil
	}
	_, ok := cg.v1["freezer"]
	return ok
}

// freeze stops (or thaws) every process of the sandbox and waits until it is done.
func (cg *cgroup) freeze(on bool) error {
	switch {
	case cg.v2 != "":
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile(filepath.Join(cg.v2, "cgroup.freeze"), []byte(v), 0); err != nil {
			return err
		}
		return waitFor(func() bool {
			b, _ := os.ReadFile(filepath.Join(cg.v2, "cgroup.events"))
			return strings.Contains(string(b), "frozen "+v)
		})
	case cg.v1["freezer"] != "":
		dir := cg.v1["freezer"]
		state := "THAWED"
		if on {
			state = "FROZEN"
		}
		if err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte(state), 0); err != nil {
			return err
		}
		return waitFor(func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "freezer.state"))
			return strings.TrimSpace(string(b)) == state
		})
	}
	return errors.New("no cgroup freezer")
}

// kill sends SIGKILL to every process of the sandbox through the cgroup: cgroup.kill on v2,
// one by one (frozen first, so that nothing forks meanwhile) on v1.
func (cg *cgroup) kill() {
	if cg.v2 != "" {
		if os.WriteFile(filepath.Join(cg.v2, "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
	}
	for _, pid := range cg.procs() {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// remove deletes the cgroup once its processes are gone.
func (cg *cgroup) remove() {
	_ = waitFor(func() bool { return len(cg.procs()) == 0 })
	if cg.v2 != "" {
		_ = os.Remove(cg.v2)
	}
	for _, dir := range cg.v1 {
		_ = os.Remove(dir)
	}
}

// waitFor polls cond for up to killWait.
func waitFor(cond func() bool) error {
	deadline := time.Now().Add(killWait)
	for delay := 100 * time.Microsecond; ; delay = min(delay*2, 20*time.Millisecond) {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(delay)
	}
}

// cgroupMounts reads the cgroup hierarchies from mountinfo.
func cgroupMounts() []cgroupMount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			out = append(out, cgroupMount{point: fields[4], root: fields[3], v2: true})
		case "cgroup":
			var cs []string
			for _, o := range strings.Split(tail[2], ",") {
				if wantV1(o) {
					cs = append(cs, o)
				}
			}
			out = append(out, cgroupMount{point: fields[4], root: fields[3], controllers: cs})
		}
	}
	return out
}

// selfCgroups maps each v1 controller (and "" for v2) to this process's cgroup path.
func selfCgroups() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}
