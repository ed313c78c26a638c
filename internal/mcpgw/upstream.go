package mcpgw

import (
	"context"
	"encoding/json"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
)

// An upstream is one client session to an upstream MCP server: either the session of one
// downstream session to a remote server (owner set) or the session to a shared local server
// (st set).
type upstream struct {
	g     *Server
	tool  *warden.Tool
	cs    *mcp.ClientSession
	owner *session
	st    *stdioServer
	proc  *exec.Cmd // a local server's process

	mu      sync.Mutex
	flights map[*flight]struct{}   // calls in flight on this upstream session
	tokens  map[string]*flight     // warden's progress token → call
	answers map[jsonrpc.ID]*flight // a local server's request ids of calls in flight (orderedConn)
	seq     uint64

	callSeq atomic.Uint64 // ids of the calls the lean relay sends

	// The tools the upstream listed (toolnames.go), guarded by mu; listMu makes one listing
	// at a time.
	tools    *toolList
	toolsGen uint64 // raised by every notifications/tools/list_changed
	listMu   sync.Mutex
}

// flightKey marks the context of an upstream call with its flight, so that what arrives on that
// call's stream is related to it.
type flightKey struct{}

// A flight is one agent call in flight upstream.
type flight struct {
	s       *session
	ctx     context.Context // the agent request's context: what is sent with it joins that request's stream
	out     *replier        // the call's own stream when the lean relay serves it; nil: the SDK's (ctx)
	token   any             // the agent's progress token; nil if it gave none
	status  atomic.Int32    // the HTTP status of the call's POST to a remote upstream
	bytesIn atomic.Int64    // the size of the upstream's result or error member as it came on the wire
	permit  *gateway.Permit // the call's: what the upstream sends about it is observed under it
}

func newUpstream(g *Server, tool *warden.Tool) *upstream {
	return &upstream{g: g, tool: tool, flights: make(map[*flight]struct{}), tokens: make(map[string]*flight), answers: make(map[jsonrpc.ID]*flight)}
}

func (up *upstream) close() {
	if err := up.cs.Close(); err != nil {
		up.g.log.Debug("closing mcp upstream session", "tool", up.tool.Name, "err", err)
	}
}

// begin records a call in flight and swaps the agent's progress token for one of warden's, so
// progress from this upstream finds its way back to exactly this call.
func (up *upstream) begin(s *session, ctx context.Context, meta mcp.Meta, out *replier) (*flight, mcp.Meta) {
	f := &flight{s: s, ctx: ctx, out: out}
	up.mu.Lock()
	defer up.mu.Unlock()
	up.flights[f] = struct{}{}
	if tok, ok := meta["progressToken"]; ok && tok != nil {
		f.token = tok
		up.seq++
		wt := "warden-" + strconv.FormatUint(up.seq, 10)
		up.tokens[wt] = f
		m := make(mcp.Meta, len(meta))
		for k, v := range meta {
			m[k] = v
		}
		m["progressToken"] = wt
		meta = m
	}
	return f, meta
}

func (up *upstream) end(f *flight) {
	up.mu.Lock()
	defer up.mu.Unlock()
	delete(up.flights, f)
	for k, v := range up.tokens {
		if v == f {
			delete(up.tokens, k)
		}
	}
	for k, v := range up.answers {
		if v == f {
			delete(up.answers, k)
		}
	}
}

// watch notes that the request id of a local server's call belongs to f.
func (up *upstream) watch(id jsonrpc.ID, f *flight) {
	up.mu.Lock()
	defer up.mu.Unlock()
	up.answers[id] = f
}

// answered measures a local server's answer to a call in flight: the size of its result or
// error member on the wire.
func (up *upstream) answered(resp *jsonrpc.Response) {
	up.mu.Lock()
	f := up.answers[resp.ID]
	delete(up.answers, resp.ID)
	up.mu.Unlock()
	if f == nil {
		return
	}
	size := len(resp.Result)
	if resp.Error != nil {
		data, _ := json.Marshal(resp.Error)
		size = len(data)
	}
	f.bytesIn.Store(int64(size))
}

// sessions returns the downstream sessions this upstream serves.
func (up *upstream) sessions() []*session {
	if up.owner != nil {
		return []*session{up.owner}
	}
	return up.st.sessionList()
}
