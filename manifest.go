package warden

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// ToolManifest is one MCP tool of a registered MCP server as warden pinned it: the digest of
// its canonical manifest (name, title, description, input and output schemas, annotations),
// which is what the model reads as instructions. A tool whose manifest upstream changed, or a
// tool upstream added, is held until a person accepts it: hidden from listings, its calls
// denied with ReasonManifestChanged.
type ToolManifest struct {
	Tool     string          `json:"tool"`               // the registered MCP server
	Name     string          `json:"name"`               // the MCP tool's name
	State    string          `json:"state"`              // ManifestPinned, ManifestHeld or ManifestRemoved
	Digest   string          `json:"digest,omitempty"`   // the pinned manifest's digest; "" for an added tool never accepted
	Manifest json.RawMessage `json:"manifest,omitempty"` // the pinned canonical manifest
	// HeldDigest and HeldManifest are the manifest upstream now lists, waiting for review.
	HeldDigest   string          `json:"held_digest,omitempty"`
	HeldManifest json.RawMessage `json:"held_manifest,omitempty"`
	// Diff is the readable difference between the pinned and the held manifest (JSON array of
	// {path, before, after}), secrets redacted.
	Diff json.RawMessage `json:"diff,omitempty"`
	// Findings are the scanner's findings on the held manifest (or, once accepted, the pinned
	// one), as JSON (scan.Finding).
	Findings       json.RawMessage `json:"findings,omitempty"`
	FirstSeen      time.Time       `json:"first_seen"`
	AcceptedBy     string          `json:"accepted_by,omitempty"`
	AcceptedReason string          `json:"accepted_reason,omitempty"`
}

// States of a ToolManifest.
const (
	ManifestPinned  = "pinned"  // upstream lists the pinned manifest; calls go on to policy
	ManifestHeld    = "held"    // upstream changed or added it; hidden and denied until accepted
	ManifestRemoved = "removed" // upstream no longer lists it
)

// Tool manifest events.
const (
	EventManifestPinned   = "tool.manifest_pinned"   // the first listing of a server pinned its tools
	EventManifestChanged  = "tool.manifest_changed"  // a tool's manifest changed or a tool was added: held
	EventManifestRemoved  = "tool.manifest_removed"  // upstream no longer lists a pinned tool
	EventManifestAccepted = "tool.manifest_accepted" // a person pinned the held manifest
	// EventManifestPinDeferred: a server could not be listed when it was registered, so nothing
	// is pinned yet; the first complete listing will pin.
	EventManifestPinDeferred = "tool.manifest_pin_deferred"
)

// ToolManifestStore keeps the pinned manifests of MCP servers' tools.
type ToolManifestStore interface {
	// ToolManifests lists the manifests of one server, or ("") of every server, by server then
	// name.
	ToolManifests(ctx context.Context, tool string) ([]*ToolManifest, error)
	// PutToolManifest stores a manifest, replacing the one of the same server and name.
	PutToolManifest(ctx context.Context, m *ToolManifest) error
	// UpdateToolManifests reads a server's manifests and stores what fn returns to replace, in
	// one transaction that excludes every other update of the same server's manifests, from
	// this process or another replica: two replicas that see a server's first listing at once
	// pin it once, and neither takes the other's half-written pins for a change. The server
	// must exist (ENotFound otherwise). fn's error aborts the transaction and comes back as it is.
	UpdateToolManifests(ctx context.Context, tool string, fn func(current []*ToolManifest) ([]*ToolManifest, error)) error
	// DeleteToolManifests forgets every manifest of a server (the tool was removed).
	DeleteToolManifests(ctx context.Context, tool string) error
}

// ValidDigest reports whether d is a digest as warden writes them: "sha256:" and 64 lowercase
// hex digits. Skills, tool manifests and server packages are named by such digests.
func ValidDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
