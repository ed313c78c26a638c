package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
)

const metadataPath = "/.well-known/oauth-protected-resource"

// An endpoint is /mcp (tool "") or /mcp/<tool>: one MCP server and its streamable HTTP
// handler, which keeps that endpoint's sessions. A session ID from one endpoint is unknown at
// another.
type endpoint struct {
	g       *Server
	tool    string
	server  *mcp.Server
	handler http.Handler
}

func (g *Server) endpoint(tool string) (*endpoint, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errClosed
	}
	if ep := g.endpoints[tool]; ep != nil {
		return ep, nil
	}
	ep := &endpoint{g: g, tool: tool}
	ep.server = mcp.NewServer(&mcp.Implementation{Name: "warden", Version: g.opts.Version}, &mcp.ServerOptions{
		// What the agent sees is decided per session in initialize.
		Capabilities: &mcp.ServerCapabilities{},
		Logger:       g.sdkLog,
	})
	ep.server.AddReceivingMiddleware(ep.receive)
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ep.server }, &mcp.StreamableHTTPOptions{
		Logger: g.sdkLog,
		// Warden closes idle sessions itself (session.startIdle): the lean relay serves calls
		// the SDK never sees.
		MaxRequestBodyBytes:        g.opts.MaxBody,
		DisableLocalhostProtection: g.opts.DisableLocalhostProtection,
	})
	// The SDK binds a session to the TokenInfo.UserID of the request that created it and
	// refuses other users on it (403): that is how a session stays with its agent.
	ep.handler = auth.RequireBearerToken(verifiedToken, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(sdk)
	g.endpoints[tool] = ep
	return ep, nil
}

type tokenInfoKey struct{}

// verifiedToken hands the SDK the TokenInfo of a token the pipeline already verified.
func verifiedToken(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
	if ti, ok := ctx.Value(tokenInfoKey{}).(*auth.TokenInfo); ok {
		return ti, nil
	}
	return nil, auth.ErrInvalidToken
}

const callerKey = "warden.caller"

// callerOf returns the caller that sent this request (not the session's first request: the
// SDK's handler context keeps the values of the request that created the session).
func callerOf(req mcp.Request) *gateway.Caller {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return nil
	}
	c, _ := extra.TokenInfo.Extra[callerKey].(*gateway.Caller)
	return c
}

// Handler serves /mcp (every upstream the agent may use) and /mcp/<tool> (one upstream under its
// original names). Mount it at /mcp and /mcp/.
func (g *Server) Handler() http.Handler { return http.HandlerFunc(g.serveMCP) }

func (g *Server) serveMCP(w http.ResponseWriter, r *http.Request) {
	tool, ok := toolFromPath(r.URL.Path)
	if !ok {
		writeJSONRPCError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "no MCP endpoint at this path")
		return
	}
	caller, err := g.p.Authenticate(r)
	if err != nil || caller == nil || caller.Agent == nil || caller.Claims == nil {
		if warden.ErrorCode(err) == warden.EUnavailable {
			writeJSONRPCError(w, http.StatusServiceUnavailable, jsonrpc.CodeInternalError, "authentication is unavailable; retry later")
			return
		}
		msg := "a valid Bearer access token is required"
		if err != nil {
			msg = warden.ErrorMessage(err)
		}
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+g.baseURL(r)+metadataPath+endpointPath(tool)+`"`)
		writeJSONRPCError(w, http.StatusUnauthorized, jsonrpc.CodeInvalidRequest, msg)
		return
	}
	if tool != "" && g.tool(tool) == nil {
		writeJSONRPCError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, "no MCP tool named "+tool)
		return
	}
	ep, err := g.endpoint(tool)
	if err != nil {
		writeJSONRPCError(w, http.StatusServiceUnavailable, jsonrpc.CodeInternalError, "the MCP gateway is shutting down")
		return
	}
	// Warden's own check that the session is the caller's, for every method — POST, the GET
	// stream, DELETE; requests, answers to the upstream's requests, notifications — before
	// anything of the request is read or passed on. The SDK binds a session to its creator's
	// TokenInfo.UserID too; this does not rely on it (defence in depth).
	var s *session
	if id := r.Header.Get("Mcp-Session-Id"); id != "" {
		var status int
		if s, status = g.ownedSession(tool, id, caller); s == nil {
			msg := "session not found"
			if status == http.StatusForbidden {
				msg = "this session belongs to another agent"
			}
			writeJSONRPCError(w, status, jsonrpc.CodeInvalidRequest, msg)
			return
		}
	}
	var msg wire.Message
	plain := false
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.MaxBody))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				writeJSONRPCError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest, "the request body is over the limit")
				return
			}
			writeJSONRPCError(w, http.StatusBadRequest, jsonrpc.CodeParseError, "the request body could not be read")
			return
		}
		var code int64
		var errMsg string
		if msg, plain, code, errMsg = wire.Check(body); code != 0 {
			writeJSONRPCError(w, http.StatusBadRequest, code, errMsg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if s != nil {
			// A session is idle while no POST of its agent is being served (as the SDK counts).
			s.busy()
			defer s.rest()
			if plain && g.relay(w, r, s, caller, msg) {
				return
			}
		}
	}
	ti := &auth.TokenInfo{
		UserID:     caller.Agent.ID,
		Expiration: caller.Claims.ExpiresAt,
		Extra:      map[string]any{callerKey: caller},
	}
	ep.handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenInfoKey{}, ti)))
}

// endpointPath is the path of the endpoint of a tool ("" for /mcp).
func endpointPath(tool string) string {
	if tool == "" {
		return "/mcp"
	}
	return "/mcp/" + tool
}

// toolFromPath maps /mcp and /mcp/ to "" and /mcp/<tool> to the tool name.
func toolFromPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/mcp")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	if rest == "" {
		return "", true
	}
	name, ok := strings.CutPrefix(rest, "/")
	if !ok || warden.ValidateName("tool", name) != nil {
		return "", false
	}
	return name, true
}

func writeJSONRPCError(w http.ResponseWriter, status int, code int64, msg string) {
	writeRPCError(w, status, json.RawMessage("null"), code, msg)
}

func (g *Server) baseURL(r *http.Request) string {
	if g.opts.BaseURL != "" {
		return strings.TrimSuffix(g.opts.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ProtectedResourceMetadata serves the RFC 9728 metadata of the MCP endpoints at
// /.well-known/oauth-protected-resource and its path-suffixed forms
// /.well-known/oauth-protected-resource/mcp and /.well-known/oauth-protected-resource/mcp/<tool>.
// The bare form describes /mcp.
func (g *Server) ProtectedResourceMetadata() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, metadataPath)
		if rest == "" {
			rest = "/mcp"
		}
		tool, known := toolFromPath(rest)
		if !ok || !known {
			http.NotFound(w, r)
			return
		}
		scopes := g.opts.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		var servers []string
		if g.opts.Issuer != "" {
			servers = []string{g.opts.Issuer}
		}
		meta := struct {
			*oauthex.ProtectedResourceMetadata
			ScopesSupported []string `json:"scopes_supported"`
		}{
			ProtectedResourceMetadata: &oauthex.ProtectedResourceMetadata{
				Resource:               g.baseURL(r) + endpointPath(tool),
				AuthorizationServers:   servers,
				BearerMethodsSupported: []string{"header"},
				ResourceName:           "warden MCP gateway",
			},
			ScopesSupported: scopes,
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(meta)
	})
}
