package mcpgw

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// recorder keeps every response body the client receives.
type recorder struct {
	base   http.RoundTripper
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || resp.Header.Get("Content-Type") == "text/event-stream" && req.Method == http.MethodGet {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

// TestEmptyListingIsAnArray: when no upstream answers (or none is visible), tools/list is an
// empty array, never null, which MCP clients reject.
func TestEmptyListingIsAnArray(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/mcp"
	l.Close() // nothing listens there any more
	tg := newTestGateway(t, remoteTool("down", dead))
	token, _ := tg.p.addAgent("alice")
	rec := &recorder{base: bearer{token, http.DefaultTransport}}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: tg.srv.URL + "/mcp", HTTPClient: &http.Client{Transport: rec}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 0 {
		t.Fatalf("tools = %v, want none", res.Tools)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	found := false
	for _, b := range rec.bodies {
		if strings.Contains(b, `"tools":null`) {
			t.Fatalf("tools/list answered null: %s", b)
		}
		found = found || strings.Contains(b, `"tools":[]`)
	}
	if !found {
		t.Fatalf("no tools/list answer with an empty array among %q", rec.bodies)
	}
}
