package mcpgw

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Roots, sampling and logging are deprecated from MCP protocol revision 2026-07-28 (SEP-2577),
// and so are the SDK's types for them. Warden is a gateway: it keeps relaying them for clients
// that negotiated an earlier revision — which, by the one protocol-version rule
// (wire.Stateful: warden serves the stateful transport, negotiated before
// wire.StatelessVersion), is every session it serves. Every use of those SDK APIs is in this
// file, each marked for staticcheck with why it stays. Elsewhere a logging level is a plain
// string, which warden checks itself (levelRank).

// logLevel is an MCP logging level as warden keeps it ("" when none was set).
type logLevel = string

// levelParams reads the params of the agent's logging/setLevel.
func levelParams(req mcp.Request) (level logLevel, meta mcp.Meta, ok bool) {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	p, _ := req.GetParams().(*mcp.SetLoggingLevelParams)
	if p == nil {
		return "", nil, false
	}
	return string(p.Level), p.Meta, true
}

// setUpstreamLevel sends logging/setLevel to an upstream session.
func setUpstreamLevel(ctx context.Context, cs *mcp.ClientSession, meta mcp.Meta, level logLevel) error {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	return cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Meta: meta, Level: mcp.LoggingLevel(level)})
}

// rootsListChanged tells an upstream session that the agent's roots changed.
func rootsListChanged(ctx context.Context, cs *mcp.ClientSession) error {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	_, err := clientSend(ctx, "notifications/roots/list_changed", cs, &mcp.RootsListChangedParams{})
	return err
}

// declaresSampling and declaresRoots report what the agent's client declared.
func declaresSampling(c *mcp.ClientCapabilities) bool {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	return c.Sampling != nil
}

func declaresRoots(c *mcp.ClientCapabilities) bool {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	return c.RootsV2 != nil
}

// aggregateCapabilities is what /mcp declares to the agent: logging among them, which it
// relays from every upstream.
func aggregateCapabilities() *mcp.ServerCapabilities {
	return &mcp.ServerCapabilities{
		Tools:       &mcp.ToolCapabilities{ListChanged: true},
		Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
		Prompts:     &mcp.PromptCapabilities{ListChanged: true},
		Completions: &mcp.CompletionCapabilities{},
		//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
		Logging: &mcp.LoggingCapabilities{},
	}
}

// sharedClientCapabilities is what warden declares to a shared local server: sampling and
// elicitation, relayed to the one agent whose call caused them; not roots (whose would they be?).
func sharedClientCapabilities() *mcp.ClientCapabilities {
	return &mcp.ClientCapabilities{
		//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
		Sampling:    &mcp.SamplingCapabilities{},
		Elicitation: &mcp.ElicitationCapabilities{Form: &mcp.FormElicitationCapabilities{}, URL: &mcp.URLElicitationCapabilities{}},
	}
}

// newLogParams is the params of a notifications/message, for decoding.
func newLogParams() mcp.Params {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	return &mcp.LoggingMessageParams{}
}

// logMessage reads a notifications/message's level and logger, and returns a copy of it under
// another logger name.
func logMessage(params mcp.Params) (level logLevel, logger string, rename func(string) mcp.Params, ok bool) {
	//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
	p, ok := params.(*mcp.LoggingMessageParams)
	if !ok || p == nil {
		return "", "", nil, false
	}
	return string(p.Level), p.Logger, func(name string) mcp.Params {
		q := *p
		q.Logger = name
		return &q
	}, true
}

// newRequestParams is the params of a server→client request warden relays, for decoding; nil
// for another method.
func newRequestParams(method string) mcp.Params {
	switch method {
	case "sampling/createMessage":
		//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
		return &mcp.CreateMessageParams{}
	case "elicitation/create":
		return &mcp.ElicitParams{}
	case "roots/list":
		//lint:ignore SA1019 relayed for clients on protocol versions before 2026-07-28 (SEP-2577), i.e. every session warden serves (wire.Stateful)
		return &mcp.ListRootsParams{}
	}
	return nil
}
