package mcpgw

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
)

// Only the tools an upstream listed are callable through warden, by their exact names. A name
// policy never saw — "transfer " or "Transfer" or "transfer\u0000" where policy forbids
// "transfer" — would otherwise go upstream, where a server that trims, folds case or stops at
// a NUL runs the forbidden tool. So every tools/call, whichever entry it came by (the SDK's
// server or the lean relay) and on either endpoint, is checked by the forwarding core (core.go)
// before policy: the name must meet the MCP specification's tool-name rule and be one the
// upstream session listed. Anything else is refused with reason unknown_tool, recorded like
// every decision.

// Decision reasons of the MCP gateway (the pipeline gives its own, see package gateway).
const (
	// ReasonUnknownTool: the name is not one the upstream listed, or breaks the MCP tool-name
	// rule. The same code the pipeline gives a call to a tool warden does not know.
	ReasonUnknownTool = warden.ReasonUnknownTool
	// ReasonUpstreamUnavailable: the upstream's tool list could not be read, so the call could
	// not be resolved; fail closed.
	ReasonUpstreamUnavailable = warden.ReasonUpstreamUnavailable
)

// toolListTTL is how long a tool list that does not have a name asked for stands before a
// miss reads it again: an upstream that adds a tool without notifications/tools/list_changed
// gets it callable within this time, and a stream of bad names costs the upstream one listing
// per period at most.
const toolListTTL = 5 * time.Second

// toolList is the set of tool names an upstream session listed, and when.
type toolList struct {
	names map[string]bool
	at    time.Time
}

// forgetTools drops the tool list: the upstream said it changed.
func (up *upstream) forgetTools() {
	up.mu.Lock()
	up.tools = nil
	up.toolsGen++
	up.mu.Unlock()
}

// listed reports whether the upstream session lists a tool of exactly this name. It reads the
// list (every page, up to maxPages) when it has none, and again on a miss once the list is
// older than toolListTTL.
func (up *upstream) listed(ctx context.Context, name string) (bool, error) {
	if ok, fresh := up.cachedTool(name); ok || fresh {
		return ok, nil
	}
	up.listMu.Lock() // one listing at a time; the others find its result
	defer up.listMu.Unlock()
	if ok, fresh := up.cachedTool(name); ok || fresh {
		return ok, nil
	}
	up.mu.Lock()
	gen := up.toolsGen
	up.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, up.g.opts.UpstreamTimeout)
	defer cancel()
	all, err := listAll(ctx, up.cs, up.tool.Name)
	if err != nil {
		return false, err
	}
	names := make(map[string]bool, len(all))
	for _, t := range all {
		names[t.Name] = true
	}
	if err := up.g.observe(ctx, up.tool.Name, all); err != nil {
		return false, err
	}
	up.mu.Lock()
	if up.toolsGen == gen {
		// Not when the list changed while it was read: the next call reads it again.
		up.tools = &toolList{names: names, at: up.g.opts.Clock.Now()}
	}
	up.mu.Unlock()
	return names[name], nil
}

// observe hands a full tool list of an upstream to Options.Manifests. An error fails the call
// or listing closed: a list warden could not compare with the pins is not trusted.
func (g *Server) observe(ctx context.Context, tool string, tools []*mcp.Tool) error {
	if g.opts.Manifests == nil {
		return nil
	}
	entries, err := entriesOf(tool, tools)
	if err != nil {
		return err
	}
	if err := g.opts.Manifests.ObserveManifests(ctx, tool, entries); err != nil {
		return fmt.Errorf("comparing the tools of %s with their pins: %w", tool, err)
	}
	return nil
}

// listAll reads an upstream's whole tool list, every page up to maxPages; a tool whose name
// breaks the MCP tool-name rule is left out (it could never be called through warden).
func listAll(ctx context.Context, cs *mcp.ClientSession, tool string) ([]*mcp.Tool, error) {
	var all []*mcp.Tool
	cursor := ""
	for range maxPages {
		res, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
		if err != nil {
			return nil, fmt.Errorf("listing the tools of %s: %w", tool, err)
		}
		for _, t := range res.Tools {
			if t != nil && warden.ValidateMCPToolName(t.Name) == nil {
				all = append(all, t)
			}
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			break
		}
		cursor = res.NextCursor
	}
	return all, nil
}

// entriesOf encodes listed tools as the raw entries Options.Manifests compares.
func entriesOf(tool string, tools []*mcp.Tool) ([]json.RawMessage, error) {
	entries := make([]json.RawMessage, 0, len(tools))
	for _, t := range tools {
		b, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encoding a tool of %s: %w", tool, err)
		}
		entries = append(entries, b)
	}
	return entries, nil
}

// cachedTool reports whether the tool list in hand has the name, and whether a miss there is
// final (a list younger than toolListTTL).
func (up *upstream) cachedTool(name string) (ok, fresh bool) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.tools == nil {
		return false, false
	}
	return up.tools.names[name], clock.Since(up.g.opts.Clock, up.tools.at) < toolListTTL
}

// checkToolName resolves a tools/call's name before policy: the name of a tool the upstream
// listed. It returns nil when the call may go on to Authorize, else the recorded refusal. A
// call to a tool-server warden does not know is Authorize's to refuse (unknown_tool too).
// agentName is the name as the agent sent it, for the message.
func (s *session) checkToolName(ctx context.Context, c *gateway.Caller, call *gateway.Call, agentName string) *gateway.Permit {
	tool := s.g.tool(call.Tool)
	if tool == nil {
		return nil
	}
	refuse := func(reason, msg string) *gateway.Permit {
		return s.g.p.Refuse(ctx, c, call, reason, msg)
	}
	unknown := func() *gateway.Permit {
		return refuse(ReasonUnknownTool, fmt.Sprintf("unknown tool %s: the MCP server %s lists no tool of that exact name", quoteName(agentName), tool.Name))
	}
	if warden.ValidateMCPToolName(call.Action) != nil {
		return unknown()
	}
	octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: call.Trace.Child()})
	defer cancel()
	up, err := s.upstream(octx, tool)
	if err == nil {
		var ok bool
		if ok, err = up.listed(octx, call.Action); err == nil && !ok {
			return unknown()
		}
	}
	if err != nil {
		s.g.log.Warn("mcp upstream tool list unavailable; refusing the call", "tool", tool.Name, "agent", s.agentID, "err", err)
		return refuse(ReasonUpstreamUnavailable, "the tools of the MCP server "+tool.Name+" could not be listed; retry later")
	}
	return nil
}

// deniedCall is what the agent gets for a tools/call warden did not allow: for a call that
// names no tool warden will forward (unknown_tool) or whose arguments it cannot read as one
// meaning (invalid_arguments), the JSON-RPC error the MCP specification gives a malformed call
// (invalid params), carrying the decision as any denied method's error does; otherwise a tool
// result with isError, which the model can read and act on.
func deniedCall(p *gateway.Permit) (*mcp.CallToolResult, *jsonrpc.Error) {
	switch p.Decision.Reason {
	case ReasonUnknownTool, warden.ReasonInvalidArguments:
		data, _ := json.Marshal(map[string]string{"decision": p.Decision.ID, "effect": p.Decision.Effect, "reason": p.Decision.Reason})
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: denial(p), Data: data}
	}
	return toolError(denial(p), p), nil
}

// quoteName quotes a name an agent sent, for a message, cut short.
func quoteName(name string) string {
	if len(name) > 80 {
		name = name[:80] + "…"
	}
	b, _ := json.Marshal(name)
	return string(b)
}
