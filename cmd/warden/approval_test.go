package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestApprovalFromAnotherProcess holds an agent's tools/call in `warden serve` until a person
// runs `warden approve` — three processes: the server, the agent (this test, with the Go MCP
// SDK) and the approver's CLI.
func TestApprovalFromAnotherProcess(t *testing.T) {
	var transfers atomic.Int32
	s := mcp.NewServer(&mcp.Implementation{Name: "bank", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "transfer"}, func(context.Context, *mcp.CallToolRequest, struct {
		Amount int `json:"amount"`
	}) (*mcp.CallToolResult, any, error) {
		transfers.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sent"}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer up.Close()

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	addr := freePort(t)
	cmd, _, _ := serve(t, dir, addr, "--config", write("server.yaml", "approvals:\n  hold: 30s\n"))
	env := []string{"WARDEN_ADDR=http://" + addr}
	doc := write("warden.yaml", `
agents:
  - name: pay-bot
    owner: alice@example.com
    purpose: Pay invoices
tools:
  - name: bank
    mcp: `+up.URL+`
    risk: critical
grants:
  - agent: pay-bot
    tool: bank
`)
	out, errOut, code := run(t, dir, env, "apply", "-f", doc, "--json")
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, errOut)
	}
	var plan struct {
		Credentials map[string]struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	cred := plan.Credentials["pay-bot"]
	resp, err := http.PostForm("http://"+addr+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {cred.ClientID}, "client_secret": {cred.ClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", HTTPClient: &http.Client{Transport: bearer{tok.AccessToken}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	held := make(chan result, 1)
	go func() {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "bank.transfer", Arguments: map[string]any{"amount": 250}})
		held <- result{res, err}
	}()

	var id string
	deadline := time.Now().Add(15 * time.Second)
	for id == "" {
		out, errOut, code := run(t, dir, env, "approvals", "list", "--json")
		if code != 0 {
			t.Fatalf("approvals list: exit %d: %s", code, errOut)
		}
		var list []struct {
			ID     string `json:"id"`
			Agent  string `json:"agent"`
			Action string `json:"action"`
		}
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].Agent == "pay-bot" && list[0].Action == "transfer" {
			id = list[0].ID
		} else if time.Now().After(deadline) {
			t.Fatalf("no pending request: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if transfers.Load() != 0 {
		t.Fatal("the upstream got the call before anyone approved it")
	}
	out, errOut, code = run(t, dir, env, "approve", id, "--note", "invoice 7")
	if code != 0 || !strings.Contains(out, "Approved "+id) {
		t.Fatalf("warden approve: exit %d: %s%s", code, out, errOut)
	}
	select {
	case r := <-held:
		if r.err != nil || r.res.IsError || transfers.Load() != 1 {
			t.Fatalf("the approved call: %v %+v (transfers %d)", r.err, r.res, transfers.Load())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held call did not complete after the approval")
	}
	stop(t, cmd)
}
