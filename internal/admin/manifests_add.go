package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/redact"
	"github.com/wardenhq/warden/internal/scan"
)

// Pinning at registration. Trust on the first listing an agent's session happens to read would
// pin whatever the server said at that moment — hours after a person registered it, perhaps
// after it changed. So when a person registers an MCP server (tool add, apply), warden lists
// its tools at once, through the MCP gateway (ManifestLister), and pins them then: the trust
// point is that person's act. A tool with a high scanner finding is held instead, for an
// operator to accept with a reason. A server that cannot be listed then is still registered;
// the answer and the audit log (tool.manifest_pin_deferred) say that nothing is pinned yet and
// the first complete listing will pin.

// ManifestLister lists an MCP server's tools for warden itself, as raw tools/list entries
// (mcpgw.Server.ListTools).
type ManifestLister interface {
	ListTools(ctx context.Context, tool *warden.Tool) ([]json.RawMessage, error)
}

// AddToolPinned registers a tool (AddTool) and, for an MCP server, pins its tools
// (PinAtRegistration). A listing of the server by an agent's session on this replica meanwhile
// waits for that pin.
func (s *Service) AddToolPinned(ctx context.Context, p *warden.Principal, spec ToolSpec) (*apitype.ToolAdded, error) {
	defer s.registering.begin(spec.Name)()
	t, err := s.AddTool(ctx, p, spec)
	if err != nil {
		return nil, err
	}
	return &apitype.ToolAdded{Tool: t, Manifests: s.PinAtRegistration(ctx, p, t)}, nil
}

// ApplyPinned applies a document (Apply) and pins the MCP servers it created or changed
// (PinAtRegistration), reporting each in the plan. Sessions' listings wait for the servers it
// creates; one it changes is compared with its pins whichever listing comes first.
func (s *Service) ApplyPinned(ctx context.Context, p *warden.Principal, doc Document, dryRun bool) (*Plan, error) {
	if !dryRun {
		for _, t := range doc.Tools {
			if _, err := s.store.Tool(ctx, t.Name); warden.ErrorCode(err) == warden.ENotFound {
				defer s.registering.begin(t.Name)()
			}
		}
	}
	plan, err := s.Apply(ctx, p, doc, dryRun)
	if err != nil || dryRun {
		return plan, err
	}
	for _, c := range plan.Changes {
		if c.Kind != "tool" || (c.Op != "create" && c.Op != "update") {
			continue
		}
		t, err := s.store.Tool(ctx, c.Name)
		if err != nil {
			return plan, err
		}
		if pins := s.PinAtRegistration(ctx, p, t); pins != nil {
			plan.Manifests = append(plan.Manifests, pins)
		}
	}
	return plan, nil
}

// PinAtRegistration lists an MCP server's tools now and pins them, holding those with high
// findings; it reports what it pinned and held. A server already pinned (an apply that changed
// it) is compared with its pins as any listing is. nil for a tool that is not an MCP server, or
// with no gateway to list through.
func (s *Service) PinAtRegistration(ctx context.Context, p *warden.Principal, t *warden.Tool) *apitype.ManifestPins {
	if s.lister == nil || (t.Kind != warden.ToolMCP && t.Kind != warden.ToolMCPCommand) {
		return nil
	}
	entries, err := s.lister.ListTools(ctx, t)
	if err == nil {
		err = s.observe(ctx, t.Name, entries, p)
	}
	if err != nil {
		return s.pinDeferred(ctx, p, t.Name, err)
	}
	rows, err := s.store.ToolManifests(ctx, t.Name)
	if err != nil {
		return s.pinDeferred(ctx, p, t.Name, err)
	}
	return pinReport(t.Name, rows)
}

// pinDeferred records that the registration could not pin the server and says so: nothing is
// pinned yet, or (a server an apply changed) the pins it had stand.
func (s *Service) pinDeferred(ctx context.Context, p *warden.Principal, tool string, cause error) *apitype.ManifestPins {
	why := safeCause(cause)
	msg := "nothing is pinned yet: warden could not list the server's tools (" + why + "); the first complete listing an agent's session reads will pin them"
	if rows, err := s.store.ToolManifests(ctx, tool); err == nil && len(rows) > 0 {
		msg = "warden could not list the server's tools (" + why + "); the pins it has stand, and the next complete listing is compared with them"
	}
	s.log.Warn("pinning an mcp server at registration failed", "tool", tool, "err", why)
	ev := manifestEvent(warden.EventManifestPinDeferred, tool, "", msg)
	ev.Actor = humanActor(ctx, p)
	ev.Decision.Effect, ev.Decision.Reason = warden.EffectAllow, ""
	ev.Outcome.Status = warden.StatusError
	if err := s.audit.Append(ctx, ev); err != nil {
		// The tool is registered and its pins fall back to the first listing; the answer says so,
		// and the failed audit write is the log's to report (it fails closed for decisions).
		s.log.Error("recording a deferred pin", "tool", tool, "err", err)
	}
	return &apitype.ManifestPins{Tool: tool, Message: msg}
}

// maxCause bounds an upstream's error quoted to a person: it may carry what the server sent.
const maxCause = 200

// safeCause is an error's message fit for an answer and the audit log: about the upstream,
// which the admin registering it needs to see (refused, timed out, not MCP), with credentials
// redacted, on one line, bounded.
func safeCause(err error) string {
	msg := redact.New(nil, nil).String(err.Error())
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxCause {
		cut := maxCause
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// pinReport says what the pins of a server are after its registration's listing.
func pinReport(tool string, rows []*warden.ToolManifest) *apitype.ManifestPins {
	r := &apitype.ManifestPins{Tool: tool, Listed: true, Pinned: []string{}}
	var findings []scan.Finding
	for _, m := range rows {
		switch m.State {
		case warden.ManifestPinned:
			r.Pinned = append(r.Pinned, m.Name)
		case warden.ManifestHeld:
			r.Held = append(r.Held, m.Name)
		default:
			continue
		}
		var fs []scan.Finding
		if len(m.Findings) > 0 && json.Unmarshal(m.Findings, &fs) == nil {
			findings = append(findings, fs...)
		}
	}
	slices.Sort(r.Pinned)
	slices.Sort(r.Held)
	if len(findings) > 0 {
		r.Findings, _ = json.Marshal(findings)
	}
	r.Message = fmt.Sprintf("pinned %d tools of %s", len(r.Pinned), tool)
	if len(r.Held) > 0 {
		r.Message += fmt.Sprintf("; held %d for review (%s): hidden from agents and their calls denied until an operator accepts them ('warden tool review %s', then 'warden tool accept %s --tool T --reason …')",
			len(r.Held), strings.Join(r.Held, ", "), tool, tool)
	}
	return r
}

// registrations marks the MCP servers being registered on this replica: an agent session's
// listing of one waits until the registration's own listing has pinned it, so the first pins
// are the person's, not whichever listing came first.
type registrations struct {
	mu      sync.Mutex
	pending map[string]*registration
}

type registration struct {
	n    int
	done chan struct{}
}

// begin marks a server as being registered; the function it returns ends the mark.
func (r *registrations) begin(tool string) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]*registration{}
	}
	g := r.pending[tool]
	if g == nil {
		g = &registration{done: make(chan struct{})}
		r.pending[tool] = g
	}
	g.n++
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if g.n--; g.n == 0 {
			close(g.done)
			delete(r.pending, tool)
		}
	}
}

// wait returns once no registration of the server is under way here, or with ctx's error.
func (r *registrations) wait(ctx context.Context, tool string) error {
	r.mu.Lock()
	g := r.pending[tool]
	r.mu.Unlock()
	if g == nil {
		return nil
	}
	select {
	case <-g.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the registration of %s to pin its tools: %w", tool, ctx.Err())
	}
}
