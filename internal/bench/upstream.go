package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// upstream is the trivial tool bench and drill put behind warden, served in this process on
// 127.0.0.1: an HTTP API and an MCP server (the official Go SDK over streamable HTTP) that answer
// at once, and a route and a tool that block until their request is cancelled. A plain
// httputil.ReverseProxy in front of it is the baseline warden is compared with.
//
//	GET|POST /api/echo          {"ok":true}
//	GET      /api/block?id=ID   blocks until cancelled (recorded)
//	POST     /api/authorize     what the decision API answers, for the authorize path's baseline
//	POST     /api/outcome       204
//	         /mcp               tools echo {text} and block {id}
type upstream struct {
	URL      string // http://127.0.0.1:PORT, direct
	ProxyURL string // the same through httputil.ReverseProxy

	blocks *blockLog
	srvs   []*http.Server
	wg     sync.WaitGroup
}

// blockLog records when each blocking call reached the upstream and when the upstream saw it
// cancelled: the drill's proof that a kill aborted work in flight.
type blockLog struct {
	mu        sync.Mutex
	started   map[string]time.Time
	cancelled map[string]time.Time
	changed   chan struct{} // closed and replaced on every change
}

func newBlockLog() *blockLog {
	return &blockLog{started: map[string]time.Time{}, cancelled: map[string]time.Time{}, changed: make(chan struct{})}
}

func (b *blockLog) note(m map[string]time.Time, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m[id] = time.Now()
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *blockLog) block(ctx context.Context, id string) {
	b.note(b.started, id)
	select {
	case <-ctx.Done():
		b.note(b.cancelled, id)
	case <-time.After(10 * time.Minute):
	}
}

// wait waits until cond holds of the log or ctx ends.
func (b *blockLog) wait(ctx context.Context, cond func(started, cancelled map[string]time.Time) bool) error {
	for {
		b.mu.Lock()
		ok, ch := cond(b.started, b.cancelled), b.changed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *blockLog) times(id string) (started, cancelled time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started[id], b.cancelled[id]
}

func newMCPUpstreamServer(blocks *blockLog) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "warden-bench-upstream", Version: "1"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "answers at once"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	type blockIn struct {
		ID string `json:"id"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "block", Description: "waits until cancelled"}, func(ctx context.Context, _ *mcp.CallToolRequest, in blockIn) (*mcp.CallToolResult, any, error) {
		blocks.block(ctx, in.ID)
		return nil, nil, errors.New("cancelled")
	})
	return s
}

func startUpstream() (*upstream, error) {
	u := &upstream{blocks: newBlockLog()}
	mcpServer := newMCPUpstreamServer(u.blocks)
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return mcpServer }, nil))
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}` + "\n"))
	}
	mux.HandleFunc("GET /api/echo", echo)
	mux.HandleFunc("POST /api/echo", echo)
	mux.HandleFunc("GET /api/block", func(w http.ResponseWriter, r *http.Request) {
		u.blocks.block(r.Context(), r.URL.Query().Get("id"))
	})
	mux.HandleFunc("POST /api/authorize", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"effect":"allow","decision_id":"dec_baseline"}` + "\n"))
	})
	mux.HandleFunc("POST /api/outcome", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var err error
	if u.URL, err = u.serve(mux); err != nil {
		return nil, err
	}
	target, _ := url.Parse(u.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// A tuned transport, so the baseline is a fair one: the default keeps 2 idle connections
	// per host and would make the proxy, not warden, look slow under concurrency.
	proxy.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	proxy.ErrorLog = nil
	if u.ProxyURL, err = u.serve(proxy); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

func (u *upstream) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	u.srvs = append(u.srvs, srv)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the servers; blocked calls end with their connections.
func (u *upstream) Close() {
	for _, s := range u.srvs {
		s.Close()
	}
	u.wg.Wait()
}
