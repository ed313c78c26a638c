package gateway

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/wardenhq/warden"
)

// UpstreamHeaders returns what goes upstream with a call: the brokered credential from the
// tool's inject template, and who acted — Warden-Agent, Warden-Session, Warden-On-Behalf-Of —
// with the W3C traceparent. The agent's own token is never among them.
func (g *Gateway) UpstreamHeaders(ctx context.Context, c *Caller, tool *warden.Tool, trace TraceContext) (http.Header, error) {
	h := http.Header{}
	e := g.Registry.current().tools[tool.Name]
	if e == nil {
		return nil, warden.Errorf(warden.ENotFound, "tool %s is not registered", tool.Name)
	}
	if e.header != "" {
		secret, err := g.Secrets.SecretValue(ctx, e.tool.Secret)
		if err != nil {
			return nil, warden.WrapError(warden.EUnavailable, "the tool's credential is unavailable", err)
		}
		h.Set(e.header, strings.Replace(e.value, "{{secret}}", secret, 1))
	}
	h.Set("Warden-Agent", c.Agent.Name)
	h.Set("Warden-Session", c.Claims.SessionID)
	if obo := c.Claims.OnBehalfOf(); obo != "" {
		h.Set("Warden-On-Behalf-Of", obo)
	}
	h.Set("Traceparent", trace.Traceparent())
	return h, nil
}

// CommandEnv returns the secret environment of a local MCP server: NAME=value for each
// --secret-env entry, sorted.
func (g *Gateway) CommandEnv(ctx context.Context, tool *warden.Tool) ([]string, error) {
	env := make([]string, 0, len(tool.SecretEnv))
	for name, secret := range tool.SecretEnv {
		v, err := g.Secrets.SecretValue(ctx, secret)
		if err != nil {
			return nil, warden.WrapError(warden.EUnavailable, "secret "+secret+" of tool "+tool.Name+" is unavailable", err)
		}
		env = append(env, name+"="+v)
	}
	sort.Strings(env)
	return env, nil
}

// MCPTools returns the registered, enabled MCP tools, ordered by name.
func (g *Gateway) MCPTools() []*warden.Tool {
	var out []*warden.Tool
	for _, e := range g.Registry.current().tools {
		if !e.tool.Disabled && (e.tool.Kind == warden.ToolMCP || e.tool.Kind == warden.ToolMCPCommand) {
			out = append(out, e.tool)
		}
	}
	slices.SortFunc(out, func(a, b *warden.Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Visible reports whether a listing (tools/list and the like) should show the caller this action
// of a tool: the tool is enabled and some policy may permit the agent the action — conditions on
// arguments are judged when the call is made, not here.
func (g *Gateway) Visible(c *Caller, tool *warden.Tool, action string) bool {
	snap := g.Registry.current()
	e := snap.tools[tool.Name]
	if e == nil || e.tool.Disabled || snap.engine == nil {
		return false
	}
	if reason, _ := g.Kill.Load().Check(c.Agent.ID, c.Claims.Epoch, tool, g.now()); reason != "" {
		return false
	}
	return snap.engine.MayPermit(c.Agent, tool, action)
}
