package mcpgw

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
)

func entryNames(t *testing.T, entries []json.RawMessage) []string {
	t.Helper()
	var names []string
	for _, e := range entries {
		var tl struct{ Name string }
		if err := json.Unmarshal(e, &tl); err != nil {
			t.Fatal(err)
		}
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// TestListToolsForRegistration: warden lists a remote server's tools for itself, with the
// brokered credential and nothing of any agent, every page, on a session of its own; the
// manifests observer is not involved (the registration pins what it gets).
func TestListToolsForRegistration(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "paged", Version: "1"}, &mcp.ServerOptions{PageSize: 1})
	for _, n := range []string{"alpha", "beta"} {
		mcp.AddTool(s, &mcp.Tool{Name: n, Description: "Tool " + n}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{}, nil, nil
		})
	}
	var mu sync.Mutex
	var headers []http.Header
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		headers = append(headers, r.Header.Clone())
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	tool := &warden.Tool{Name: "paged", Kind: warden.ToolMCP, URL: up.URL, Risk: warden.RiskLow}
	tg := newTestGatewayWith(t, Options{Manifests: observerFunc(func(context.Context, string, []json.RawMessage) error {
		t.Error("ListTools went through the manifests observer")
		return nil
	})}, tool)
	entries, err := tg.g.ListTools(ctxT(t), tool)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryNames(t, entries); !slices.Equal(got, []string{"alpha", "beta"}) {
		t.Fatalf("listed %v; want every page", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(headers) == 0 {
		t.Fatal("the upstream saw no request")
	}
	for _, h := range headers {
		if h.Get("Authorization") != "Bearer "+tg.p.secret || h.Get("Warden-Agent") != "" || h.Get("Warden-Session") != "" {
			t.Fatalf("a listing request carried %v", h)
		}
	}
}

type observerFunc func(context.Context, string, []json.RawMessage) error

func (f observerFunc) ObserveManifests(ctx context.Context, tool string, entries []json.RawMessage) error {
	return f(ctx, tool, entries)
}

// TestListToolsOfLocalServer: a local server is started as agents' sessions would start it,
// and listed.
func TestListToolsOfLocalServer(t *testing.T) {
	tg := newPeerGateway(t)
	entries, err := tg.g.ListTools(ctxT(t), peerTool(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := entryNames(t, entries); !slices.Contains(got, "whoami") || !slices.Contains(got, "interact") {
		t.Fatalf("listed %v", got)
	}
}

// TestListToolsRefusesWhatIsNotThere: an HTTP tool has nothing to list; an unreachable server
// is an error, not an empty list.
func TestListToolsRefusesWhatIsNotThere(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	tool := &warden.Tool{Name: "gone", Kind: warden.ToolMCP, URL: dead.URL}
	tg := newTestGateway(t, tool)
	if entries, err := tg.g.ListTools(ctxT(t), tool); err == nil {
		t.Fatalf("listed an unreachable server: %d entries", len(entries))
	}
	if _, err := tg.g.ListTools(ctxT(t), &warden.Tool{Name: "web", Kind: warden.ToolHTTP, URL: dead.URL}); err == nil {
		t.Fatal("listed an HTTP tool")
	}
}

// TestLimitedBodyFailsPastItsLimit: an answer over the limit is an error, never a cut answer a
// JSON reader could take for a shorter one.
func TestLimitedBodyFailsPastItsLimit(t *testing.T) {
	read := func(body string, limit int64) (string, error) {
		b, err := io.ReadAll(&limitedBody{rc: io.NopCloser(strings.NewReader(body)), left: limit})
		return string(b), err
	}
	if got, err := read("12345", 5); err != nil || got != "12345" {
		t.Fatalf("at the limit: %q, %v", got, err)
	}
	if _, err := read("123456", 5); !errors.Is(err, errListingTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	big := bytes.Repeat([]byte("x"), 10000)
	if _, err := read(string(big), 9999); !errors.Is(err, errListingTooLarge) {
		t.Fatalf("over the limit in one read: %v", err)
	}
}

// TestListToolsOfSandboxedServer: listing a local server for its registration starts it in its
// sandbox, as an agent's session would; agents then use that same sandboxed server.
func TestListToolsOfSandboxedServer(t *testing.T) {
	tool := sandboxPeer(t, "boxed", nil)
	f := newSandboxGateway(t, netip.MustParseAddrPort("127.0.0.1:9"), tool)
	entries, err := f.tg.g.ListTools(ctxT(t), tool)
	if err != nil {
		t.Fatal(err)
	}
	if got := entryNames(t, entries); !slices.Contains(got, "whoami") || !slices.Contains(got, "read") {
		t.Fatalf("listed %v", got)
	}
	box := runningBox(t, f.tg.g, "boxed")
	cs := connect(t, f.tg.srv.URL+"/mcp", f.token, nil)
	call(t, cs, "boxed.whoami", "")
	if runningBox(t, f.tg.g, "boxed") != box {
		t.Fatal("the agent's call started another server than the one listed at registration")
	}
}
