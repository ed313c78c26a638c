package mcpgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

// ListTools lists what an MCP server offers now — every page of its tools/list, as the raw
// entries Options.Manifests compares — for warden itself rather than for an agent: when a person
// registers the server, its tools are pinned from this listing (admin.Service.PinAtRegistration),
// so the trust point is that person's act, not the first agent's session. It does not go through
// Options.Manifests; the caller pins what it returns.
//
// A remote server gets a session of its own, with the brokered credential and no agent's
// headers, closed once it answered. A local server is the shared one agents use, started in
// its sandbox as usual if it is not running. The whole listing is bounded by
// Options.UpstreamTimeout.
func (g *Server) ListTools(ctx context.Context, tool *warden.Tool) ([]json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, g.opts.UpstreamTimeout)
	defer cancel()
	var cs *mcp.ClientSession
	switch tool.Kind {
	case warden.ToolMCPCommand:
		st, err := g.stdioServer(tool)
		if err != nil {
			return nil, err
		}
		up, err := st.get(ctx)
		if err != nil {
			return nil, err
		}
		cs = up.cs
	case warden.ToolMCP:
		var err error
		if cs, err = g.dialForListing(ctx, tool); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", tool.Name, err)
		}
		defer func() {
			if err := cs.Close(); err != nil {
				g.log.Debug("closing the listing session of an mcp upstream", "tool", tool.Name, "err", err)
			}
		}()
	default:
		return nil, fmt.Errorf("tool %s is not an MCP tool", tool.Name)
	}
	tools, err := listAll(ctx, cs, tool.Name)
	if err != nil {
		return nil, err
	}
	return entriesOf(tool.Name, tools)
}

// dialForListing opens a session to a remote upstream that declares no client capability:
// nobody is there to answer sampling or elicitation.
func (g *Server) dialForListing(ctx context.Context, tool *warden.Tool) (*mcp.ClientSession, error) {
	if tool.URL == "" {
		return nil, fmt.Errorf("tool %s has no URL", tool.Name)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "warden", Version: g.opts.Version}, &mcp.ClientOptions{
		Logger:         g.sdkLog,
		Capabilities:   &mcp.ClientCapabilities{},
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: true},
	})
	transport := &mcp.StreamableClientTransport{
		Endpoint: tool.URL,
		HTTPClient: &http.Client{
			Transport:     &listingBroker{g: g, tool: tool, trace: gateway.NewTrace()},
			CheckRedirect: g.client.CheckRedirect,
		},
	}
	return client.Connect(ctx, transport, &mcp.ClientSessionOptions{ProtocolVersion: wire.LatestStatefulVersion})
}

// listingBroker adds the brokered credential (Pipeline.UpstreamHeaders with no caller) to the
// requests of a listing session, and bounds each response it reads.
type listingBroker struct {
	g     *Server
	tool  *warden.Tool
	trace gateway.TraceContext
}

func (b *listingBroker) RoundTrip(r *http.Request) (*http.Response, error) {
	out := r.Clone(r.Context())
	if err := b.g.broker(r.Context(), callInfo{trace: b.trace}, b.tool, out.Header); err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	resp, err := b.g.client.Transport.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: relayLimit}
	return resp, nil
}

// errListingTooLarge: an upstream's answer to a listing went over relayLimit.
var errListingTooLarge = errors.New("the upstream's answer is larger than warden reads")

// limitedBody fails a read past its limit rather than truncating: a cut listing would be read as
// a shorter, valid one.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.rc.Read(p)
	if int64(n) > l.left {
		return 0, errListingTooLarge
	}
	l.left -= int64(n)
	return n, err
}

func (l *limitedBody) Close() error { return l.rc.Close() }
