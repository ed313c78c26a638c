package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/mcpgw/pin"
	"github.com/wardenhq/warden/internal/redact"
	"github.com/wardenhq/warden/internal/scan"
)

// Pinned tool manifests. The MCP gateway hands every full tools/list it reads from an upstream
// to ObserveManifests. The first listing of a server pins its tools; later ones are compared
// with the pins: a changed or added tool is held (the gateway hides it and refuses its calls
// with manifest_changed) until an operator accepts it, a removed one is recorded. Each change
// is written through the kill switch's Change and announced as a tool change, so every replica
// reloads its registry, whose snapshot carries the pins to the call path.

// ObserveManifests compares the tools an MCP server lists now (the entries of its tools/list
// result, every page) with their pins and records what changed.
// A listing of a server being registered right now waits for that registration's own listing
// to pin first (PinAtRegistration).
func (s *Service) ObserveManifests(ctx context.Context, tool string, entries []json.RawMessage) error {
	if err := s.registering.wait(ctx, tool); err != nil {
		return err
	}
	return s.observe(ctx, tool, entries, nil)
}

// observe compares a listing with the pins and records what changed. by is the person whose
// registration of the server listed it (PinAtRegistration), nil for an agent session's listing.
func (s *Service) observe(ctx context.Context, tool string, entries []json.RawMessage, by *warden.Principal) error {
	current, err := pin.ParseList(entries)
	if err != nil {
		return fmt.Errorf("reading the tools/list of %s: %w", tool, err)
	}
	rows, err := s.store.ToolManifests(ctx, tool)
	if err != nil {
		return err
	}
	if unchanged(rows, current) {
		return nil // the usual case: nothing written, nothing announced
	}
	now := s.now().UTC()
	var events []*warden.AuditEvent
	_, err = s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		var puts []*warden.ToolManifest
		// Compared again inside the update: another replica may have pinned or held since.
		err := s.store.UpdateToolManifests(ctx, tool, func(rows []*warden.ToolManifest) ([]*warden.ToolManifest, error) {
			puts, events = compareManifests(tool, rows, current, now)
			return puts, nil
		})
		if err != nil || len(puts) == 0 {
			events = nil
			return err
		}
		if by != nil {
			for _, ev := range events {
				if ev.Type == warden.EventManifestPinned { // the person's registration pinned them
					ev.Actor = humanActor(ctx, by)
					ev.Decision.Message = "pinned when registered: " + strings.TrimPrefix(ev.Decision.Message, "pinned ")
				}
			}
		}
		s.reloadRegistry(ctx, tool)
		announce(fleet.TopicTool, tool)
		return nil
	})
	if err != nil {
		return err
	}
	for _, ev := range events {
		if err := s.audit.Append(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// compareManifests compares what a server lists now with its stored manifests and returns the
// rows to store and the events to record: the first listing pins (unless the scanner blocks a
// tool), a changed or added tool is held, a removed one recorded, a change undone pinned again.
func compareManifests(tool string, rows []*warden.ToolManifest, current map[string]*pin.Manifest, now time.Time) ([]*warden.ToolManifest, []*warden.AuditEvent) {
	byName := map[string]*warden.ToolManifest{}
	pinned := map[string]*pin.Manifest{}
	for _, r := range rows {
		byName[r.Name] = r
		if r.Digest != "" && r.State != warden.ManifestRemoved {
			pinned[r.Name] = &pin.Manifest{Name: r.Name, Canonical: r.Manifest, Digest: r.Digest}
		}
	}
	first := len(rows) == 0
	var pinnedNow []string
	var puts []*warden.ToolManifest
	var events []*warden.AuditEvent
	names := slices.Sorted(maps.Keys(current))
	for _, c := range pin.Compare(pinned, current) {
		r := byName[c.Tool]
		switch {
		case c.Kind == pin.Removed:
			if r.State == warden.ManifestRemoved {
				continue
			}
			r.State, r.HeldDigest, r.HeldManifest, r.Diff = warden.ManifestRemoved, "", nil, nil
			puts = append(puts, r)
			events = append(events, manifestEvent(warden.EventManifestRemoved, tool, c.Tool, "no longer listed by the server; pinned "+c.Pinned))
			continue
		case r != nil && r.State == warden.ManifestRemoved && r.Digest == c.Current:
			r.State = warden.ManifestPinned // listed again as it was pinned
			puts = append(puts, r)
			continue
		case r != nil && r.State == warden.ManifestHeld && r.HeldDigest == c.Current:
			continue // held already, for this very manifest
		}
		m := current[c.Tool]
		findings := scanManifest(tool, c.Tool, names, m.Canonical, "")
		if r == nil {
			r = &warden.ToolManifest{Tool: tool, Name: c.Tool, FirstSeen: now}
		}
		if first && !scan.Blocking(findings) {
			r.State, r.Digest, r.Manifest, r.Findings = warden.ManifestPinned, m.Digest, m.Canonical, jsonOf(findings)
			puts = append(puts, r)
			pinnedNow = append(pinnedNow, c.Tool)
			continue
		}
		diff := redactDiff(c.Fields)
		r.State, r.HeldDigest, r.HeldManifest, r.Diff, r.Findings = warden.ManifestHeld, m.Digest, m.Canonical, jsonOf(diff), jsonOf(findings)
		puts = append(puts, r)
		events = append(events, manifestEvent(warden.EventManifestChanged, tool, c.Tool, changeMessage(c, diff, findings)))
	}
	for _, r := range rows {
		m := current[r.Name]
		switch {
		case r.State == warden.ManifestHeld && m != nil && m.Digest == r.Digest:
			// The change was undone: the server lists the pinned manifest again.
			r.State, r.HeldDigest, r.HeldManifest, r.Diff = warden.ManifestPinned, "", nil, nil
			puts = append(puts, r)
		case r.State == warden.ManifestHeld && r.Digest == "" && m == nil:
			// An added tool, never accepted, gone again (Compare knows only pinned ones).
			r.State = warden.ManifestRemoved
			puts = append(puts, r)
			events = append(events, manifestEvent(warden.EventManifestRemoved, tool, r.Name, "no longer listed by the server; it was held, never pinned"))
		}
	}
	if first {
		slices.Sort(pinnedNow)
		ev := manifestEvent(warden.EventManifestPinned, tool, "", fmt.Sprintf("pinned %d tools: %s", len(pinnedNow), strings.Join(pinnedNow, ", ")))
		ev.Decision.Effect, ev.Decision.Reason = warden.EffectAllow, ""
		events = append(events, ev)
	}
	if len(puts) == 0 {
		return nil, nil
	}
	return puts, events
}

// unchanged reports whether every tool listed has its pin and is pinned, and every pin is listed.
func unchanged(rows []*warden.ToolManifest, current map[string]*pin.Manifest) bool {
	if len(rows) != len(current) {
		return false
	}
	for _, r := range rows {
		m := current[r.Name]
		if m == nil || r.State != warden.ManifestPinned || m.Digest != r.Digest {
			return false
		}
	}
	return true
}

// scanManifest scans one MCP tool's canonical manifest, with the server's other tool names
// for shadowing; its findings are placed at "tool:SERVER/NAME" + suffix (suffix "@held" for a
// held manifest beside its pin). A manifest that does not read is a high finding, never clean.
func scanManifest(tool, name string, names []string, canonical json.RawMessage, suffix string) []scan.Finding {
	others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name })
	source := "tool:" + tool + "/" + name + suffix
	fs, err := scan.New(scan.Options{Self: name, Tools: others}).JSON(source, canonical)
	if err != nil {
		return []scan.Finding{{Rule: "unreadable", Severity: scan.SeverityHigh, Source: source, Line: 1, Column: 1, Message: "the manifest could not be read as JSON: " + err.Error()}}
	}
	return fs
}

// redactDiff redacts what looks like a credential in a difference: a description may carry one.
func redactDiff(fields []pin.FieldChange) []pin.FieldChange {
	rd := redact.New(nil, nil)
	out := make([]pin.FieldChange, len(fields))
	for i, f := range fields {
		out[i] = pin.FieldChange{Path: f.Path, Before: rd.String(f.Before), After: rd.String(f.After)}
	}
	return out
}

// changeMessage is a change's audit message: the readable diff and the scanner's findings.
func changeMessage(c pin.Change, diff []pin.FieldChange, findings []scan.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: held %s", c.Kind, c.Current)
	if c.Pinned != "" {
		fmt.Fprintf(&b, " (pinned %s)", c.Pinned)
	}
	for _, f := range diff {
		fmt.Fprintf(&b, "; %s: %s -> %s", f.Path, orNone(f.Before), orNone(f.After))
	}
	for _, f := range findings {
		fmt.Fprintf(&b, "; finding %s (%s): %s", f.Rule, f.Severity, f.Message)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func manifestEvent(typ, tool, name, msg string) *warden.AuditEvent {
	return &warden.AuditEvent{
		Type:     typ,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target:   warden.EventTarget{Tool: tool, Action: name, Resource: "tool:" + tool},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonManifestChanged, Message: msg},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
}

func jsonOf[T any](v []T) json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

// ToolManifests lists the pinned manifests of an MCP server, held ones with their diff and
// findings, for people: what looks like a credential in a manifest is redacted (the store keeps
// the manifests as listed, which their digests are of).
func (s *Service) ToolManifests(ctx context.Context, tool string) ([]*warden.ToolManifest, error) {
	ms, err := s.toolManifests(ctx, tool)
	if err != nil {
		return nil, err
	}
	rd := redact.New(nil, nil)
	for _, m := range ms {
		m.Manifest, m.HeldManifest = redactRaw(rd, m.Manifest), redactRaw(rd, m.HeldManifest)
	}
	return ms, nil
}

func redactRaw(rd *redact.Redactor, raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	return json.RawMessage(rd.String(string(raw)))
}

func (s *Service) toolManifests(ctx context.Context, tool string) ([]*warden.ToolManifest, error) {
	if _, err := s.store.Tool(ctx, tool); err != nil {
		return nil, err
	}
	return s.store.ToolManifests(ctx, tool)
}

// AcceptManifests pins the held manifests of an MCP server (only of MCP tool name when it is
// not ""), after which calls to them go on to policy again.
func (s *Service) AcceptManifests(ctx context.Context, p *warden.Principal, tool, name, digest, reason string) ([]*warden.ToolManifest, error) {
	if digest != "" && !warden.ValidDigest(digest) {
		return nil, warden.Errorf(warden.EInvalid, "digest %q: want sha256:<64 hex digits>", digest)
	}
	reason, err := validateReason(reason, true)
	if err != nil {
		return nil, err
	}
	var accepted []*warden.ToolManifest
	_, err = s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		err := s.store.UpdateToolManifests(ctx, tool, func(rows []*warden.ToolManifest) ([]*warden.ToolManifest, error) {
			accepted = nil
			var other []string
			for _, r := range rows {
				if r.State != warden.ManifestHeld || name != "" && r.Name != name {
					continue
				}
				if digest != "" && r.HeldDigest != digest {
					other = append(other, r.Name+" is held as "+r.HeldDigest)
					continue
				}
				r.State, r.Digest, r.Manifest = warden.ManifestPinned, r.HeldDigest, r.HeldManifest
				r.HeldDigest, r.HeldManifest, r.Diff = "", nil, nil
				r.AcceptedBy, r.AcceptedReason = p.Name, reason
				accepted = append(accepted, r)
			}
			if len(accepted) == 0 && len(other) > 0 {
				return nil, warden.Errorf(warden.EConflict, "no tool of %s is held as %s (%s): the server changed it since it was reviewed; review it again", tool, digest, strings.Join(other, "; "))
			}
			if len(accepted) == 0 {
				what := "no tool of " + tool
				if name != "" {
					what = "the tool " + name + " of " + tool + " is not"
				}
				return nil, warden.Errorf(warden.ENotFound, "%s held for review", what)
			}
			return accepted, nil
		})
		if err != nil {
			return err
		}
		s.reloadRegistry(ctx, tool)
		announce(fleet.TopicTool, tool)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range accepted {
		ev := manifestEvent(warden.EventManifestAccepted, tool, r.Name, "accepted "+r.Digest+": "+reason)
		ev.Actor = humanActor(ctx, p)
		ev.Decision.Effect, ev.Decision.Reason = warden.EffectAllow, ""
		if err := s.audit.Append(ctx, ev); err != nil {
			return nil, err
		}
	}
	return accepted, nil
}
