package apitype

import (
	"encoding/json"

	"github.com/wardenhq/warden"
)

// ToolAdded answers a tool's registration: the tool, and for an MCP server what warden pinned
// of it then.
type ToolAdded struct {
	*warden.Tool
	Manifests *ManifestPins `json:"manifests,omitempty"`
}

// ManifestPins is what warden pinned of an MCP server when a person registered it (tool add,
// apply): it lists the server's tools at once and pins them, holding a tool with a high scanner
// finding for an operator to accept.
type ManifestPins struct {
	Tool string `json:"tool"`
	// Listed is false when the server could not be listed: nothing is pinned yet, and the first
	// complete listing an agent's session reads will pin (Message says why).
	Listed bool     `json:"listed"`
	Pinned []string `json:"pinned,omitempty"` // MCP tool names pinned
	Held   []string `json:"held,omitempty"`   // MCP tool names held for review
	// Findings are the scanner's findings on the manifests listed (JSON array of scan.Finding).
	Findings json.RawMessage `json:"findings,omitempty"`
	Message  string          `json:"message"` // one line for people
}

// ToolScan is what the scanner finds in an MCP server's manifests (GET /v1/tools/{name}/scan):
// the pinned ones and those held for review.
type ToolScan struct {
	Tool      string            `json:"tool"`
	Manifests []ScannedManifest `json:"manifests"`
}

// ScannedManifest is one MCP tool's manifest as scanned.
type ScannedManifest struct {
	Name   string `json:"name"`  // the MCP tool
	State  string `json:"state"` // pinned (the pinned manifest) or held (the one waiting for review)
	Digest string `json:"digest"`
	// Findings is a JSON array of scan.Finding; each finding's source is "tool:SERVER/NAME"
	// (with "@held" for a held manifest) followed by the JSON Pointer of the string it is in.
	Findings json.RawMessage `json:"findings,omitempty"`
}
