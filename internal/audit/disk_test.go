package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/audit"
)

// TestDiskGuard: the guard warns well before a full disk makes the audit log fail closed (issue
// 12 #6): a slog warning at every check while free space is under the threshold, a
// system.disk.low event when it falls under and system.disk.ok when it is back, and a Status
// for /readyz. The free space is scripted; FreeSpace itself reads the real file system.
func TestDiskGuard(t *testing.T) {
	t.Parallel()
	l := openLog(t)
	var logs bytes.Buffer
	free := []int64{5 << 30, 512 << 20, 400 << 20, 2 << 30, -1, 2 << 30}
	step := 0
	g := &audit.DiskGuard{
		Path: t.TempDir(), WarnFree: 1 << 30, Audit: l, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Free: func(string) (int64, error) {
			n := free[step]
			if n < 0 {
				return 0, errors.New("statfs failed")
			}
			return n, nil
		},
	}
	tests := []struct {
		status string
		warned bool
		event  string // recorded by this check
	}{
		{"ok", false, ""},
		{"low: 536870912 bytes free, under 1073741824", true, warden.EventDiskLow},
		{"low: 419430400 bytes free, under 1073741824", true, ""}, // still low: warned again, no new event
		{"ok", false, warden.EventDiskOK},
		{"free space unknown", false, ""},
		{"ok", false, ""},
	}
	for i, tt := range tests {
		step = i
		logs.Reset()
		before := diskEvents(t, l)
		g.Check(context.Background())
		if got := g.Status(); got != tt.status {
			t.Fatalf("check %d: status %q, want %q", i, got, tt.status)
		}
		if warned := strings.Contains(logs.String(), "disk space low"); warned != tt.warned {
			t.Fatalf("check %d: warned %v, want %v: %s", i, warned, tt.warned, logs.String())
		}
		after := diskEvents(t, l)
		var got string
		if len(after) > len(before) {
			got = after[len(after)-1].Type
		}
		if len(after)-len(before) > 1 || got != tt.event {
			t.Fatalf("check %d: events %d then %d, last %q, want %q", i, len(before), len(after), got, tt.event)
		}
	}
	n, err := audit.FreeSpace(t.TempDir())
	if err != nil || n <= 0 {
		t.Fatalf("FreeSpace = %d, %v", n, err)
	}
	if _, err := audit.FreeSpace("/nonexistent/warden"); err == nil {
		t.Fatal("FreeSpace of a missing directory succeeded")
	}
}

func diskEvents(t *testing.T, l *testLog) []*warden.AuditEvent {
	t.Helper()
	evs, err := l.store.AuditEvents(context.Background(), warden.AuditFilter{Type: "system.disk.*"})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
