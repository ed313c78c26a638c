package wire

import (
	"slices"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The protocol version rules of the MCP gateway, in one place.
//
// StatelessVersion is the first MCP protocol revision without sessions (2026-07-28). The
// stateful streamable HTTP transport warden serves negotiates the revisions before it; from it
// on the SDK answers a stateful server's requests with UnsupportedProtocolVersion, and its
// clients fall back to initialize. It is also the revision from which roots, sampling and
// logging are deprecated (SEP-2577): warden relays them for sessions on the revisions before it,
// which by this rule is every session it serves.
const StatelessVersion = "2026-07-28"

// LatestStatefulVersion is the revision warden asks an upstream for when the agent's is not one
// a stateful session speaks.
const LatestStatefulVersion = "2025-11-25"

// Stateful reports whether v is a revision a stateful session speaks: one the SDK knows,
// before StatelessVersion.
func Stateful(v string) bool {
	return v != "" && v < StatelessVersion && slices.Contains(supportedVersions, v)
}

// supportedVersions are the revisions the SDK knows (its function copies them on every call).
var supportedVersions = mcp.SupportedProtocolVersions()

// UpstreamVersion is the revision warden asks an upstream for on behalf of an agent that
// negotiated v: the agent's, so that both halves of a relay speak the same revision, or else
// LatestStatefulVersion.
func UpstreamVersion(v string) string {
	if !Stateful(v) {
		return LatestStatefulVersion
	}
	return v
}
