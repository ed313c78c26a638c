package mcpgw

import (
	"context"
	"encoding/json"
	"slices"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/mcpgw/pin"
)

// Listings show only what Pipeline.Visible allows. On /mcp/<tool> they pass the upstream's pages
// through; on /mcp they gather every page of every upstream into one answer.

// maxPages bounds how many pages warden reads from one upstream for one /mcp listing.
const maxPages = 100

func cursorOf(p mcp.Params) string {
	switch p := p.(type) {
	case *mcp.ListToolsParams:
		if p != nil {
			return p.Cursor
		}
	case *mcp.ListResourcesParams:
		if p != nil {
			return p.Cursor
		}
	case *mcp.ListResourceTemplatesParams:
		if p != nil {
			return p.Cursor
		}
	case *mcp.ListPromptsParams:
		if p != nil {
			return p.Cursor
		}
	}
	return ""
}

// page lists one page of T from an upstream, returning the next cursor.
type page[T any] func(ctx context.Context, up *upstream, cursor string) ([]T, string, error)

// listing answers a list method: keep filters and renames an item for the agent (nil: hide it).
// seen, when not nil, gets every upstream's full list on /mcp before it is filtered.
func listing[T any](s *session, ctx context.Context, req mcp.Request, c *gateway.Caller, has func(*mcp.ServerCapabilities) bool,
	fetch page[T], keep func(tool *warden.Tool, item T) T, seen func(ctx context.Context, tool *warden.Tool, all []T) error) ([]T, string, error) {
	trace := traceOf(req).Child()
	if s.ep.tool != "" {
		tool := s.g.tool(s.ep.tool)
		if tool == nil {
			return nil, "", &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "no MCP tool named " + s.ep.tool}
		}
		octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: trace})
		defer cancel()
		up, err := s.upstream(octx, tool)
		if err != nil {
			return nil, "", s.answerError(tool.Name, forwarded{err: err})
		}
		cursor := cursorOf(req.GetParams())
		items, next, err := fetch(octx, up, cursor)
		if err != nil {
			return nil, "", s.answerError(tool.Name, forwarded{err: err})
		}
		if seen != nil && cursor == "" && next == "" {
			// One page is the whole list: compare it with the pins as /mcp does.
			if err := seen(octx, tool, items); err != nil {
				return nil, "", s.answerError(tool.Name, forwarded{err: err})
			}
		}
		return filter(tool, items, keep), next, nil
	}

	tools := s.g.p.MCPTools()
	results := make([][]T, len(tools))
	var wg sync.WaitGroup
	for i, tool := range tools {
		wg.Go(func() {
			octx, cancel := s.opCtx(ctx, callInfo{caller: c, trace: trace})
			defer cancel()
			up, err := s.upstream(octx, tool)
			if err != nil {
				s.g.log.Warn("mcp upstream unavailable for a listing", "tool", tool.Name, "err", err)
				return
			}
			if caps := up.cs.InitializeResult().Capabilities; caps == nil || !has(caps) {
				return
			}
			var all []T
			cursor := ""
			for range maxPages {
				items, next, err := fetch(octx, up, cursor)
				if err != nil {
					s.g.log.Warn("mcp upstream listing failed", "tool", tool.Name, "err", err)
					return
				}
				all = append(all, items...)
				if next == "" || next == cursor {
					break
				}
				cursor = next
			}
			if seen != nil {
				if err := seen(octx, tool, all); err != nil {
					s.g.log.Warn("mcp upstream listing not compared with its pins; not shown", "tool", tool.Name, "err", err)
					return
				}
			}
			results[i] = filter(tool, all, keep)
		})
	}
	wg.Wait()
	all := slices.Concat(results...)
	if all == nil {
		all = []T{} // an empty list, never null: MCP requires the array
	}
	return all, "", nil
}

// pinnedDigests is what a pipeline that pins tool manifests tells a listing (gateway.Pipeline).
type pinnedDigests interface {
	PinnedDigest(tool, name string) (digest string, ok bool)
}

// pinned reports whether a listing may show the tool as the upstream lists it: its manifest
// is the one pinned, or nothing of the server is pinned yet. A manifest that changed upstream
// is not shown even before the change is recorded (a page of a paged /mcp/<tool> listing, a
// list_changed not yet seen).
func (g *Server) pinned(tool *warden.Tool, t *mcp.Tool) bool {
	pd, ok := g.p.(pinnedDigests)
	if !ok {
		return true
	}
	want, ok := pd.PinnedDigest(tool.Name, t.Name)
	if !ok {
		return true
	}
	b, err := json.Marshal(t)
	if err != nil {
		return false
	}
	m, err := pin.Parse(b)
	return err == nil && m.Digest == want
}

func filter[T any](tool *warden.Tool, items []T, keep func(*warden.Tool, T) T) []T {
	out := make([]T, 0, len(items))
	for _, it := range items {
		var zero T
		if kept := keep(tool, it); any(kept) != any(zero) {
			out = append(out, kept)
		}
	}
	return out
}

func (s *session) listTools(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	tools, next, err := listing(s, ctx, req, c,
		func(caps *mcp.ServerCapabilities) bool { return caps.Tools != nil },
		func(ctx context.Context, up *upstream, cursor string) ([]*mcp.Tool, string, error) {
			res, err := up.cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: cursor})
			if err != nil {
				return nil, "", err
			}
			return res.Tools, res.NextCursor, nil
		},
		func(tool *warden.Tool, t *mcp.Tool) *mcp.Tool {
			// A name outside the MCP tool-name rule is not callable through warden
			// (toolnames.go), so it is not shown either.
			if t == nil || warden.ValidateMCPToolName(t.Name) != nil || !s.g.p.Visible(c, tool, t.Name) || !s.g.pinned(tool, t) {
				return nil
			}
			t2 := *t
			t2.Name = s.namer(tool.Name).name(t.Name)
			return &t2
		},
		func(ctx context.Context, tool *warden.Tool, all []*mcp.Tool) error {
			valid := slices.DeleteFunc(slices.Clone(all), func(t *mcp.Tool) bool { return t == nil || warden.ValidateMCPToolName(t.Name) != nil })
			return s.g.observe(ctx, tool.Name, valid)
		})
	if err != nil {
		return nil, err
	}
	return &mcp.ListToolsResult{Tools: tools, NextCursor: next}, nil
}

func (s *session) listResources(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	rs, next, err := listing(s, ctx, req, c,
		func(caps *mcp.ServerCapabilities) bool { return caps.Resources != nil },
		func(ctx context.Context, up *upstream, cursor string) ([]*mcp.Resource, string, error) {
			res, err := up.cs.ListResources(ctx, &mcp.ListResourcesParams{Cursor: cursor})
			if err != nil {
				return nil, "", err
			}
			return res.Resources, res.NextCursor, nil
		},
		func(tool *warden.Tool, r *mcp.Resource) *mcp.Resource {
			if r == nil || !s.g.p.Visible(c, tool, "resources/read") {
				return nil
			}
			r2 := *r
			r2.URI = s.namer(tool.Name).uri(r.URI)
			return &r2
		}, nil)
	if err != nil {
		return nil, err
	}
	return &mcp.ListResourcesResult{Resources: rs, NextCursor: next}, nil
}

func (s *session) listTemplates(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	ts, next, err := listing(s, ctx, req, c,
		func(caps *mcp.ServerCapabilities) bool { return caps.Resources != nil },
		func(ctx context.Context, up *upstream, cursor string) ([]*mcp.ResourceTemplate, string, error) {
			res, err := up.cs.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Cursor: cursor})
			if err != nil {
				return nil, "", err
			}
			return res.ResourceTemplates, res.NextCursor, nil
		},
		func(tool *warden.Tool, t *mcp.ResourceTemplate) *mcp.ResourceTemplate {
			if t == nil || !s.g.p.Visible(c, tool, "resources/read") {
				return nil
			}
			t2 := *t
			t2.URITemplate = s.namer(tool.Name).uri(t.URITemplate)
			return &t2
		}, nil)
	if err != nil {
		return nil, err
	}
	return &mcp.ListResourceTemplatesResult{ResourceTemplates: ts, NextCursor: next}, nil
}

func (s *session) listPrompts(ctx context.Context, req mcp.Request, c *gateway.Caller) (mcp.Result, error) {
	ps, next, err := listing(s, ctx, req, c,
		func(caps *mcp.ServerCapabilities) bool { return caps.Prompts != nil },
		func(ctx context.Context, up *upstream, cursor string) ([]*mcp.Prompt, string, error) {
			res, err := up.cs.ListPrompts(ctx, &mcp.ListPromptsParams{Cursor: cursor})
			if err != nil {
				return nil, "", err
			}
			return res.Prompts, res.NextCursor, nil
		},
		func(tool *warden.Tool, p *mcp.Prompt) *mcp.Prompt {
			if p == nil || !s.g.p.Visible(c, tool, "prompts/get") {
				return nil
			}
			p2 := *p
			p2.Name = s.namer(tool.Name).name(p.Name)
			return &p2
		}, nil)
	if err != nil {
		return nil, err
	}
	return &mcp.ListPromptsResult{Prompts: ps, NextCursor: next}, nil
}
