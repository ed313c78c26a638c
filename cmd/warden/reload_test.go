package main_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadOnSIGHUP: a SIGHUP makes warden serve read --config again: the log level changes at
// once, a change that needs a restart is logged as such and ignored, and a broken file is logged
// and the running configuration kept. The process survives each of them.
func TestReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "warden.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log:\n  level: info\n  format: json\n")
	addr := freePort(t)
	cmd, _, stderr := serve(t, dir, addr, "--config", cfg)
	waitFor := func(what string, from int) int {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if i := strings.Index(stderr.String()[from:], what); i >= 0 {
				return from + i + len(what)
			}
		}
		t.Fatalf("no %q in the log after SIGHUP:\n%s", what, stderr.String()[from:])
		return 0
	}
	hup := func() {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	alive := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatalf("warden serve is gone after SIGHUP: %v\n%s", err, stderr.String())
		}
		resp.Body.Close()
	}
	mark := waitFor(`"msg":"warden serving"`, 0)

	// The level, and a change that needs a restart.
	write("log:\n  level: warn\n  format: json\napprovals:\n  hold: 30s\n")
	hup()
	mark = waitFor(`"msg":"configuration reloaded","config":"`+cfg+`","changed":["log.level"],"log.level":"warn"`, mark)
	mark = waitFor(`"msg":"configuration changes that need a restart are ignored until then","config":"`+cfg+`","keys":["approvals"]`, mark)
	alive()

	// A broken file: said, and the running configuration kept.
	write("log:\n  level: [\n")
	hup()
	mark = waitFor(`"level":"ERROR","msg":"configuration not reloaded: the file is invalid; the running configuration stays"`, mark)
	write("log:\n  level: loud\n")
	hup()
	mark = waitFor(`"msg":"configuration not reloaded`, mark)
	alive()

	// At warn, info is no longer logged: the stop says nothing.
	stop(t, cmd)
	if rest := stderr.String()[mark:]; strings.Contains(rest, `"msg":"warden stopping"`) {
		t.Fatalf("an info line after the level became warn:\n%s", rest)
	}
}
