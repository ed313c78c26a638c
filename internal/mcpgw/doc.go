// Package mcpgw is the MCP entry point of the gateway: it serves the Model Context Protocol
// (streamable HTTP) to agents at /mcp and /mcp/<tool>, and relays each session to the upstream
// MCP servers through the enforcement pipeline.
//
// # Endpoints
//
// /mcp aggregates every MCP upstream the calling agent may use. /mcp/<tool> exposes one upstream
// under its original names, so a standard client (or the MCP conformance suite) sees the server
// unchanged. Both speak the stateful streamable HTTP transport of the official Go SDK, with the
// protocol revisions it negotiates through the initialize handshake (2024-11-05 to 2025-11-25).
// Every HTTP request (POST, GET, DELETE) is authenticated through [Pipeline.Authenticate];
// without a valid token the answer is 401 with a WWW-Authenticate header that points to the
// RFC 9728 protected resource metadata, which [Server.ProtectedResourceMetadata] serves.
//
// # Sessions
//
// A downstream session (Mcp-Session-Id) belongs to the agent whose token created it: a request
// with another agent's token on that session is refused with 403 by warden's entry point, for
// every HTTP method and message kind (and again by the SDK's own binding), so a session ID alone
// cannot be hijacked. Each downstream session owns one upstream client session per remote (kind mcp)
// upstream it uses, created lazily (at initialize for /mcp/<tool>, at first use for /mcp) and
// closed with it, so upstream state — subscriptions, logging level, in-flight requests — maps
// one to one. [Server.CloseAgentSessions] closes every session of an agent, cancelling its
// calls and ending its streams: the kill switch calls it.
//
// # Names on /mcp
//
// Tools and prompts appear as "<tool-server>.<name>", where tool-server is the warden tool name
// (which never contains a dot), so the first dot routes the call back. Resource URIs and URI
// templates appear as "<tool-server>+<uri>": the upstream's scheme gets the tool-server as a
// prefix ("everything+test://static/1", like "git+ssh"), which keeps templates expandable and is
// split back at the first '+'. URIs inside results (resource links, embedded resources, resource
// contents, resources/updated notifications) are rewritten the same way. Completion references
// use the same names.
//
// # Decisions
//
// tools/call, resources/read, resources/subscribe, prompts/get and completion/complete each go
// through [Pipeline.Authorize] as a Call with Entry "mcp", Tool the tool-server, and Action the
// upstream tool name (tools/call) or the method name (Resource: the URI or prompt name). A
// denied tools/call is answered with a tool result {isError: true} whose text is the reason and
// the decision id; any other denied method with a JSON-RPC error carrying the same text. An
// allowed call goes upstream under the permit's context (a kill cancels it) and ends with
// exactly one Permit.Done: ok, error (an upstream error or an isError result) or canceled.
// Listings (tools/list, resources/list, resources/templates/list, prompts/list) show only what
// [Pipeline.Visible] allows. Before any of that, a tools/call must name exactly a tool its
// upstream listed, by the MCP tool-name rule; any other name is refused with unknown_tool
// through [Pipeline.Refuse] and never reaches the upstream (toolnames.go).
//
// # What flows from server to client
//
// Sampling, elicitation and roots/list requests, logging, progress, list-changed,
// resources/updated and elicitation/complete notifications, and cancellation are relayed to the
// agent. A message is related to the agent's call that caused it (and so travels on that call's
// SSE stream) when it can be attributed: progress notifications exactly, through a progress
// token warden substitutes per call; other messages when exactly one call is in flight on that
// upstream session. Otherwise a per-session upstream's messages go to its session's standalone
// stream.
//
// # One call path
//
// Every tools/call goes through one forwarding core (core.go): the listed-name check, the
// decision, the permit, the forwarding and the outcome, whichever entry it came by and whichever
// transport carries it. Through the SDK a tools/call is decoded and encoded a dozen times between
// warden's server and client halves, which costs several times the whole pipeline. So a
// tools/call that is a plain JSON-RPC request on a known session of the caller, to a remote
// upstream, enters by the lean relay (relay.go) and travels over its raw transport on the
// agent's upstream session: the same brokered headers, warden's progress token, the upstream's
// related notifications and server→client requests relayed on the call's own stream (answered
// as JSON when nothing else travels with the result, else as SSE), the agent's answers to those
// requests and its cancellation forwarded upstream. Whatever the relay cannot take with the same
// meaning enters through the SDK's server; the choice is made before anything is sent. The core
// chooses the transport by the upstream: the raw one for a remote server, the SDK client
// (transport.go) for a local one. Because the SDK then never sees the relayed calls, warden keeps sessions'
// idle timeouts itself. What upstreams send their client is routed to the agents in one place
// (notify.go), and the package's own reading and writing of the protocol — JSON-RPC messages,
// SSE, the protocol-version rule — is the pure package wire.
//
// # Local (stdio) servers
//
// An mcp_command upstream is one process warden starts, restarts with backoff when it dies, and
// stops on Close. With Options.Sandbox in mode required (the server's default) it runs in
// warden's Linux sandbox (sandbox.go): its workspace DATA/mcp/<tool> as HOME and working
// directory, the command's own directories read-only, no network but the tool's allowed hosts
// through an audited egress proxy, and an environment of PATH, HOME, TMPDIR, the proxy variables
// and the tool's secret variables — never warden's own. A stdio server has one client, so it is shared
// by every downstream session. Warden relays a request from a shared server (sampling,
// elicitation) only when it can attribute it to exactly one downstream call in flight, to that
// call's agent; otherwise it refuses the request (fail closed). Notifications follow the same
// rule and are dropped when they cannot be attributed, except list-changed (sent to every
// session using the server) and resources/updated (sent to the sessions that subscribed to that
// URI). Warden does not declare roots to a shared server (whose roots would they be?); a server
// that asks anyway gets the same rule.
package mcpgw
