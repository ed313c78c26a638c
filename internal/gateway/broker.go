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
// with the W3C traceparent. The agent's own token is never among them. With no caller (c nil:
// warden itself lists a server's tools when it is registered, mcpgw.Server.ListTools) only the
// credential and traceparent go.
func (g *Pipeline) UpstreamHeaders(ctx context.Context, c *Caller, tool *warden.Tool, trace TraceContext) (http.Header, error) {
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
	h.Set("Traceparent", trace.Traceparent())
	if c == nil {
		return h, nil
	}
	h.Set("Warden-Agent", c.Agent.Name)
	h.Set("Warden-Session", c.Claims.SessionID)
	if obo := c.Claims.OnBehalfOf(); obo != "" {
		h.Set("Warden-On-Behalf-Of", obo)
	}
	return h, nil
}

// overrideHeaders are the request headers by which web frameworks and proxies let a client
// say that a request is "really" another method or another path than the one it carries:
// method overrides (Rails, Symfony, Laravel, Spring's HiddenHttpMethodFilter, Express
// method-override, ASP.NET, Google APIs), and original or rewritten URLs (IIS URL Rewrite,
// Symfony, Zend/Laminas, nginx and Envoy conventions). Warden judges the method and path it
// forwards; a route granted for POST /issues must not turn into DELETE /issues upstream, so none
// of these ever goes upstream, from the HTTP or the MCP gateway (StripOverrideHeaders). Names are
// canonical (http.CanonicalHeaderKey). X-Forwarded-* and Forwarded are stripped by the HTTP
// gateway as a family; the ones among them that carry a method or a path are listed here too, so
// that the list alone is the rule for every upstream request.
var overrideHeaders = map[string]bool{
	"X-Http-Method-Override":  true,
	"X-Http-Method":           true,
	"X-Method-Override":       true,
	"X-Original-Method":       true,
	"X-Forwarded-Method":      true,
	"X-Envoy-Original-Method": true,
	"X-Original-Url":          true,
	"X-Original-Uri":          true,
	"X-Rewrite-Url":           true,
	"X-Override-Url":          true,
	"X-Forwarded-Uri":         true,
	"X-Forwarded-Url":         true,
	"X-Forwarded-Path":        true,
	"X-Forwarded-Prefix":      true,
	"X-Envoy-Original-Path":   true,
}

// OverrideHeader reports whether a header may make an upstream take a request for another method
// or path than warden judged (see overrideHeaders).
func OverrideHeader(name string) bool { return overrideHeaders[http.CanonicalHeaderKey(name)] }

// StripOverrideHeaders removes from h every header by which an upstream could take the request
// for another method or path than the one warden judged. Every upstream request passes it.
func StripOverrideHeaders(h http.Header) {
	for k := range h {
		if OverrideHeader(k) {
			delete(h, k)
		}
	}
}

// CommandEnv returns the secret environment of a local MCP server: NAME=value for each
// --secret-env entry, sorted.
func (g *Pipeline) CommandEnv(ctx context.Context, tool *warden.Tool) ([]string, error) {
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
func (g *Pipeline) MCPTools() []*warden.Tool {
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
func (g *Pipeline) Visible(c *Caller, tool *warden.Tool, action string) bool {
	snap := g.Registry.current()
	e := snap.tools[tool.Name]
	if e == nil || e.tool.Disabled || snap.engine == nil {
		return false
	}
	ks := g.Kill.Load()
	if reason, _ := ks.Check(c.Agent.ID, c.Claims.Epoch, tool, g.now()); reason != "" {
		return false
	}
	if reason, _ := manifestRefusal(ks, e, action); reason != "" {
		return false // held or quarantined: not shown
	}
	return snap.engine.MayPermit(c.Agent, tool, action)
}
