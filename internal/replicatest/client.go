package replicatest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// AgentToken gets an access token for a through replica i's token endpoint.
func (f *Fleet) AgentToken(ctx context.Context, i int, a *Agent) string {
	f.t.Helper()
	tr, err := f.Client(i).WithToken(nil).ClientCredentialsToken(ctx, a.ClientID, a.Secret, "")
	if err != nil {
		f.t.Fatalf("token for %s from %s: %v", a.Name, f.Replicas[i].ID, err)
	}
	return tr.AccessToken
}

// Get sends GET url with the bearer token and returns the status and the start of the body.
func Get(ctx context.Context, hc *http.Client, url, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// Echo calls the HTTP tool's echo route through replica i and returns the status.
func (f *Fleet) Echo(ctx context.Context, i int, token string) (int, string, error) {
	return Get(ctx, &http.Client{Timeout: 10 * time.Second}, f.Replicas[i].URL+"/http/"+HTTPTool+"/echo", token)
}

// WaitEcho waits until an echo call through replica i answers want, trying every 20 ms for up
// to 10 s: how a test waits for a change made through one replica to reach another while the
// fleet still learns of changes by polling the store.
func (f *Fleet) WaitEcho(ctx context.Context, i int, token string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		status, body, err := f.Echo(ctx, i, token)
		if err == nil && status == want {
			return nil
		}
		last = fmt.Sprintf("%d %s %v", status, body, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("replica %s never answered %d to an echo call; last: %s", f.Replicas[i].ID, want, last)
		case <-tick.C:
		}
	}
}

// bearer adds an agent's token to every request.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// MCPConnect opens an MCP session at endpoint (a replica's or the load balancer's /mcp) with
// the official Go SDK client, as an agent holding token would.
func MCPConnect(ctx context.Context, endpoint, token string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "replicatest", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hc := &http.Client{Transport: bearer{token: token, base: http.DefaultTransport.(*http.Transport).Clone()}}
	return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}, nil)
}
