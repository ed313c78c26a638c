package mcpgw

import (
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// On /mcp, tools and prompts are named "<tool-server>.<name>" and resources "<tool-server>+<uri>".
// Warden tool names are lowercase letters, digits and '-', so the first '.' or '+' is always the
// separator, whatever the upstream's own names contain.

func joinName(server, name string) string { return server + "." + name }

func splitName(s string) (server, name string) {
	server, name, ok := strings.Cut(s, ".")
	if !ok {
		return "", s
	}
	return server, name
}

func joinURI(server, uri string) string { return server + "+" + uri }

func splitURI(s string) (server, uri string) {
	server, uri, ok := strings.Cut(s, "+")
	if !ok {
		return "", s
	}
	return server, uri
}

// namer translates names between what the agent sees and what the upstream knows: on /mcp it
// adds and removes the tool-server prefix, on /mcp/<tool> names pass unchanged.
type namer struct {
	server string // the tool-server whose names these are
	agg    bool   // the agent is on /mcp
}

func (n namer) name(s string) string {
	if !n.agg {
		return s
	}
	return joinName(n.server, s)
}

func (n namer) uri(s string) string {
	if !n.agg || s == "" {
		return s
	}
	return joinURI(n.server, s)
}

// contents rewrites the URIs inside content blocks so that the agent can read them back.
func (n namer) contents(cs []mcp.Content) {
	if !n.agg {
		return
	}
	for _, c := range cs {
		switch c := c.(type) {
		case *mcp.ResourceLink:
			c.URI = n.uri(c.URI)
		case *mcp.EmbeddedResource:
			if c.Resource != nil {
				c.Resource.URI = n.uri(c.Resource.URI)
			}
		}
	}
}

func (n namer) resourceContents(rs []*mcp.ResourceContents) {
	for _, r := range rs {
		if r != nil {
			r.URI = n.uri(r.URI)
		}
	}
}
