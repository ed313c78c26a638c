package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// DiskGuard warns while the free space of the file system that keeps the audit log is under a
// threshold. The log fails closed, so a full disk denies every agent: the warning comes while
// there is still time to act. It warns in the server's log at every check while space is low,
// records system.disk.low when space falls under the threshold and system.disk.ok when it is
// back, and its Status shows in /readyz.
type DiskGuard struct {
	// Path is a directory on the file system to watch: the SQLite database's.
	Path string
	// WarnFree is the free space, in bytes, under which the guard warns.
	WarnFree int64
	Audit    warden.AuditLog
	Log      *slog.Logger // required
	// Free returns the bytes available to warden on path's file system; default Statfs. For tests.
	Free func(path string) (int64, error)
	// Clock times Run's checks; nil means the real clock.
	Clock clock.Clock

	mu   sync.Mutex
	low  bool
	free int64
	err  error
}

// DiskCheckInterval is how often the server's guard checks.
const DiskCheckInterval = 30 * time.Second

// FreeSpace returns the bytes an unprivileged process may still write on path's file system.
func FreeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("audit: free space of %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// Run checks now and then every interval until ctx ends.
func (g *DiskGuard) Run(ctx context.Context, interval time.Duration) error {
	t := clock.Or(g.Clock).NewTicker(interval)
	defer t.Stop()
	for {
		g.Check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// Check reads the free space once, warns if it is low, and records a change between low and
// not low as an audit event.
func (g *DiskGuard) Check(ctx context.Context) {
	free := g.Free
	if free == nil {
		free = FreeSpace
	}
	n, err := free(g.Path)
	g.mu.Lock()
	was := g.low
	g.free, g.err = n, err
	if err == nil {
		g.low = n < g.WarnFree
	}
	low := g.low
	g.mu.Unlock()
	if err != nil {
		g.Log.Warn("cannot read the free space where the audit log is kept", "path", g.Path, "err", err)
		return
	}
	if low {
		g.Log.Warn("disk space low where the audit log is kept: when it is full, the audit log fails and every agent is denied",
			"path", g.Path, "free_bytes", n, "warn_under_bytes", g.WarnFree)
	}
	if low == was {
		return // the first check counts as a change only when it finds space low
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventDiskOK,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target:   warden.EventTarget{Resource: "disk:" + g.Path},
		Decision: warden.EventDecision{Message: fmt.Sprintf("%d bytes free, over audit.disk_warn_free (%d)", n, g.WarnFree)},
	}
	if low {
		ev.Type = warden.EventDiskLow
		ev.Target.Risk = warden.RiskHigh
		ev.Decision.Message = fmt.Sprintf("%d bytes free, under audit.disk_warn_free (%d): when the disk is full the audit log fails and every agent is denied", n, g.WarnFree)
	}
	if err := g.Audit.Append(ctx, ev); err != nil {
		g.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// Status is "ok", or what /readyz says about the free space when it is low or unknown.
func (g *DiskGuard) Status() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.err != nil:
		return "free space unknown"
	case g.low:
		return fmt.Sprintf("low: %d bytes free, under %d", g.free, g.WarnFree)
	}
	return "ok"
}
