package initproc

import (
	"reflect"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The init spells out what package syscall lacks; these must be the kernel's numbers on every
// architecture warden builds for.
func TestConstantsMatchXSys(t *testing.T) {
	fdcwd := unix.AT_FDCWD
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"SYS_MOUNT_SETATTR", sysMountSetattr, unix.SYS_MOUNT_SETATTR},
		{"SYS_LANDLOCK_CREATE_RULESET", sysLandlockCreateRuleset, unix.SYS_LANDLOCK_CREATE_RULESET},
		{"SYS_LANDLOCK_ADD_RULE", sysLandlockAddRule, unix.SYS_LANDLOCK_ADD_RULE},
		{"SYS_LANDLOCK_RESTRICT_SELF", sysLandlockRestrictSelf, unix.SYS_LANDLOCK_RESTRICT_SELF},
		{"LANDLOCK_RULE_PATH_BENEATH", landlockRulePathBeneath, unix.LANDLOCK_RULE_PATH_BENEATH},
		{"AT_RECURSIVE", atRecursive, unix.AT_RECURSIVE},
		{"MOUNT_ATTR_RDONLY", mountAttrRdonly, unix.MOUNT_ATTR_RDONLY},
		{"MOUNT_ATTR_NOSUID", mountAttrNosuid, unix.MOUNT_ATTR_NOSUID},
		{"MOUNT_ATTR_NODEV", mountAttrNodev, unix.MOUNT_ATTR_NODEV},
		{"MOUNT_ATTR_NOEXEC", mountAttrNoexec, unix.MOUNT_ATTR_NOEXEC},
		{"O_PATH", oPath, unix.O_PATH},
		{"PR_SET_DUMPABLE", prSetDumpable, unix.PR_SET_DUMPABLE},
		{"PR_SET_SECCOMP", prSetSeccomp, unix.PR_SET_SECCOMP},
		{"PR_CAPBSET_DROP", prCapbsetDrop, unix.PR_CAPBSET_DROP},
		{"PR_SET_SECUREBITS", prSetSecurebits, unix.PR_SET_SECUREBITS},
		{"PR_SET_NO_NEW_PRIVS", prSetNoNewPrivs, unix.PR_SET_NO_NEW_PRIVS},
		{"PR_CAP_AMBIENT", prCapAmbient, unix.PR_CAP_AMBIENT},
		{"PR_CAP_AMBIENT_CLEAR_ALL", prCapAmbientClearAll, unix.PR_CAP_AMBIENT_CLEAR_ALL},
		{"SECCOMP_MODE_FILTER", seccompModeFilter, unix.SECCOMP_MODE_FILTER},
		{"AT_FDCWD", uint64(atFDCWD), uint64(fdcwd)},
		{"sizeof(struct mount_attr)", uint64(unsafe.Sizeof(mountAttr{})), uint64(unsafe.Sizeof(unix.MountAttr{}))},
		{"sizeof(struct ifreq)", uint64(unsafe.Sizeof(ifreq{})), unix.IFNAMSIZ + 24},
		{"SIOCSIFFLAGS", syscall.SIOCSIFFLAGS, unix.SIOCSIFFLAGS},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []Message{
		{Type: "ready"},
		{Type: "exit", Code: -1, Signal: 9},
		{Type: "error", Step: "root filesystem", Error: "bind /x: permission denied", NotFound: true},
		{Type: "config", Config: &Config{
			Argv: []string{"/bin/echo", "x", ""}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/ws",
			Hostname: "h", UID: 1000, GID: 1000, SetID: true,
			Mounts: []Mount{
				{Kind: "bind", Src: "/usr", Dst: "/usr"},
				{Kind: "tmpfs", Dst: "/tmp", Mode: 0o1777, Scratch: true},
				{Kind: "bind", Src: "/ws/.git/config", Dst: "/ws/.git/config", RW: true, Dev: true, File: true, Guard: true, Own: true},
			},
			Listeners: []Listener{{"gateway", 4747}, {"egress", 4748}},
			Landlock: Landlock{HandledFS: 1<<16 - 1, HandledNet: 2, Scoped: 3, FileRights: 7,
				Rules: []PathRule{{"/", 8}, {"/usr", ^uint64(0)}}, Ports: []PortRule{{4747, 2}}},
			Filter:   []Instr{{Op: 0x20, K: 4}, {Op: 0x15, Jt: 1, Jf: 255, K: 0xc000003e}, {Op: 6, K: 0x7fff0000}},
			CgroupNS: true,
			Rlimits:  []Rlimit{{Resource: 4, Cur: 0, Max: 0}, {Resource: 7, Cur: 1 << 16, Max: ^uint64(0)}},
		}},
	} {
		got, err := DecodeMessage(m.Encode())
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip of %s:\n got %+v\nwant %+v", m.Type, got, m)
		}
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	good := (&Message{Type: "config", Config: &Config{Argv: []string{"/bin/true"}}}).Encode()
	for i := range len(good) {
		if _, err := DecodeMessage(good[:i]); err == nil {
			t.Errorf("a message cut to %d of %d bytes decoded", i, len(good))
		}
	}
	if _, err := DecodeMessage(append(good, 0)); err == nil {
		t.Error("a message with trailing bytes decoded")
	}
	// A length larger than the message must not make the decoder allocate it.
	if _, err := DecodeMessage([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Error("a huge length decoded")
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add((&Message{Type: "config", Config: &Config{Argv: []string{"/bin/true"}}}).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		if again, err := DecodeMessage(m.Encode()); err != nil || !reflect.DeepEqual(again, m) {
			t.Errorf("decoded message does not survive a round trip: %v", err)
		}
	})
}

func TestPathHelpers(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"/a/b/c", "/a/b"}, {"/a", "/"}, {"/", "/"}} {
		if got := dir(c.in); got != c.want {
			t.Errorf("dir(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := split("/usr/bin::/bin", ':'); !reflect.DeepEqual(got, []string{"/usr/bin", "", "/bin"}) {
		t.Errorf("split = %q", got)
	}
}
