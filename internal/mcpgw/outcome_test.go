package mcpgw

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/mcpgw/wire"
	"github.com/wardenhq/warden/internal/sqlite"
)

// eventLog is an audit log in memory.
type eventLog struct {
	mu     sync.Mutex
	events []warden.AuditEvent
}

func (l *eventLog) Append(_ context.Context, ev *warden.AuditEvent) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, *ev)
	return nil
}

// results returns the tool.result events of calls to action.
func (l *eventLog) results(action string) []warden.AuditEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []warden.AuditEvent
	for _, ev := range l.events {
		if ev.Type == warden.EventToolResult && ev.Target.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// realPipelineGateway is the MCP gateway in front of the real pipeline (SQLite store, token
// service, registry, Cedar), whose audit events land in log. It returns an agent's token.
func realPipelineGateway(t *testing.T, tool *warden.Tool, log *eventLog) (srvURL, token string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now().UTC()
	_, hash := identity.NewSecret("wsec_")
	agent := &warden.Agent{ID: warden.NewID("agt_"), Name: "alice", Owner: "a@example.com", Purpose: "test",
		Status: warden.AgentActive, Epoch: 1, SecretHash: hash, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateAgent(ctx, agent); err != nil {
		t.Fatal(err)
	}
	tool.CreatedAt, tool.UpdatedAt = now, now
	if err := store.CreateTool(ctx, tool); err != nil {
		t.Fatal(err)
	}
	policy := `permit(principal == Agent::"alice", action, resource);`
	if err := store.CreatePolicySet(ctx, &warden.PolicySet{Files: map[string]string{"p.cedar": policy}, CreatedAt: now}, -1); err != nil {
		t.Fatal(err)
	}
	kill := killswitch.NewState()
	ids, err := identity.New(ctx, store, make([]byte, 32), identity.Config{Issuer: "http://127.0.0.1:8787", Kill: kill}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ids.Issue(ctx, agent, identity.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	reg := gateway.NewRegistry(store, testLog())
	reg.Kill = kill
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	gw := &gateway.Pipeline{Registry: reg, Tokens: ids, Kill: kill, Secrets: noSecrets{}, Audit: log, Log: testLog()}
	g := New(gw, testLog(), Options{SessionIdle: -1, Sandbox: SandboxOptions{Mode: SandboxOff}})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() {
		_ = g.Close()
		srv.Close()
	})
	return srv.URL, issued.Token
}

type noSecrets struct{}

func (noSecrets) SecretValue(context.Context, string) (string, error) {
	return "", warden.Errorf(warden.ENotFound, "no secrets here")
}

// TestIsErrorResultIsRecordedAsError pins the outcome of a tool result with isError: true, on
// the lean relay and on the SDK path: the tool.result audit event says error, as it says ok
// for a plain result on the same path.
func TestIsErrorResultIsRecordedAsError(t *testing.T) {
	up := startUpstream(t)
	log := &eventLog{}
	url, token := realPipelineGateway(t, remoteTool("up", up.URL), log)
	post := func(sessionID, version, body string) string {
		resp := rawRequest(t, http.MethodPost, url+"/mcp/up", token, sessionID, version, body)
		data, _ := io.ReadAll(resp.Body)
		return wire.MediaType(resp.Header.Get("Content-Type")) + " " + string(data)
	}
	cs := connect(t, url+"/mcp/up", token, nil)
	sid, version := cs.ID(), cs.InitializeResult().ProtocolVersion
	paths := []struct {
		name  string
		extra string // what puts the call on its path
		media string // how that path answers a plain call
	}{
		{"relay", "", "application/json"},
		{"sdk", `,"x-extra":1`, "text/event-stream"}, // a member the relay does not know
	}
	id := 0
	for i, p := range paths {
		for _, c := range []struct{ action, status string }{{"echo", warden.StatusOK}, {"fail", warden.StatusError}} {
			id++
			answer := post(sid, version, `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"tools/call","params":{"name":"`+c.action+`","arguments":{"text":"x"}`+p.extra+`}}`)
			if media, _, _ := strings.Cut(answer, " "); media != p.media {
				t.Fatalf("%s %s answered as %s; want %s, the %s path", p.name, c.action, media, p.media, p.name)
			}
			var got []string
			eventually(t, func() bool {
				got = got[:0]
				for _, ev := range log.results(c.action) {
					got = append(got, ev.Outcome.Status)
				}
				return len(got) == i+1
			})
			if got[i] != c.status {
				t.Errorf("%s: %s recorded tool.result status %q; want %q (answer %s)", p.name, c.action, got[i], c.status, answer)
			}
		}
	}
	if evs := log.results("fail"); !slices.ContainsFunc(evs, func(ev warden.AuditEvent) bool { return ev.Decision.Effect == warden.EffectAllow }) {
		t.Errorf("tool.result events %+v; want the allowed calls' outcomes", evs)
	}
}
