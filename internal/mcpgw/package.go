package mcpgw

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/toolpkg"
)

// A local server runs only the package pinned when its tool was added (toolpkg), and no
// package that is quarantined: both are checked before every start — the first, a restart
// after the process exited, and the start on each replica — and a quarantine stops the running
// ones (StopPackage).

// errQuarantined refuses to start a server whose package is quarantined.
type errQuarantined struct{ tool, digest string }

func (e errQuarantined) Error() string {
	return fmt.Sprintf("the package %s of local MCP server %s is quarantined", e.digest, e.tool)
}

// PinCommand digests the files a local server's command runs, resolved as its start resolves
// them: the program in the servers' PATH, script arguments absolute or in the tool's workspace
// (none when workspaces are temporary: no relative argument is then a file). The admin service
// pins an --mcp-command tool with it when the tool is added.
func (g *Server) PinCommand(tool string, argv []string) (*warden.ToolPackage, error) {
	workspace := ""
	if g.opts.Sandbox.Dir != "" {
		var err error
		if workspace, err = g.workspacePath(tool); err != nil {
			return nil, err
		}
	}
	return toolpkg.Pin(argv, g.opts.CommandPath, workspace)
}

// quarantined reports whether the package a tool runs is quarantined in the kill state.
func (g *Server) quarantined(tool *warden.Tool) error {
	if tool.Package != nil && g.p.PackageQuarantined(tool.Package.Digest) {
		return errQuarantined{tool.Name, tool.Package.Digest}
	}
	return nil
}

// checkPackage runs before every start of a local server: its package not quarantined, its
// files the ones pinned. A change is recorded (tool.package_changed) once for each state of the
// files it finds, not at each retry of the restart loop.
func (st *stdioServer) checkPackage(ctx context.Context) error {
	if err := st.g.quarantined(st.tool); err != nil {
		return err
	}
	err := toolpkg.Verify(st.tool, st.g.opts.CommandPath, st.home)
	var changed *toolpkg.ChangedError
	if !errors.As(err, &changed) {
		st.mu.Lock()
		st.refused = ""
		st.mu.Unlock()
		return err
	}
	st.mu.Lock()
	first := st.refused != changed.Path+"\x00"+changed.Got
	st.refused = changed.Path + "\x00" + changed.Got
	st.mu.Unlock()
	if first {
		st.g.log.Error("local mcp server not started: its files changed since it was added", "tool", st.tool.Name,
			"path", changed.Path, "pinned", changed.Want, "found", changed.Got)
		st.g.recordSystem(ctx, &warden.AuditEvent{
			Type:     warden.EventToolPackageChanged,
			Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
			Target:   warden.EventTarget{Tool: st.tool.Name, Resource: "tool:" + st.tool.Name},
			Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonPackageChanged, Message: changed.Error() + "; pinned " + changed.Want + ", found " + orNone(changed.Got)},
			Outcome:  warden.EventOutcome{Status: warden.StatusError},
		})
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// recordSystem appends an event warden itself decided; without an audit log it is logged.
func (g *Server) recordSystem(ctx context.Context, ev *warden.AuditEvent) {
	if g.opts.Sandbox.Audit == nil {
		g.log.Warn("audit event", "type", ev.Type, "tool", ev.Target.Tool, "message", ev.Decision.Message)
		return
	}
	if err := g.opts.Sandbox.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		g.log.Error("audit append failed", "type", ev.Type, "tool", ev.Target.Tool, "err", err)
	}
}

// StopPackage stops at once, on this replica, every local server that runs the package with
// the digest (the kill switch's reconciler calls it for a digest newly quarantined): its
// process or sandbox is killed without grace and its supervisor ends, so nothing restarts it;
// a later use starts it again only once the quarantine is lifted (stdioServer). It returns the
// tools whose server it stopped, sorted.
func (g *Server) StopPackage(digest string) []string {
	g.mu.Lock()
	var hit []*stdioServer
	for name, st := range g.stdio {
		if st.tool.Package != nil && st.tool.Package.Digest == digest {
			hit = append(hit, st)
			delete(g.stdio, name)
		}
	}
	g.mu.Unlock()
	var names []string
	for _, st := range hit {
		st.kill()
		names = append(names, st.tool.Name)
	}
	slices.Sort(names)
	return names
}
