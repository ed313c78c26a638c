package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashKeepsEveryAllow kills `warden serve` with SIGKILL while calls flow through the HTTP
// gateway to an upstream that records what it receives. After a restart, every call the
// upstream received has its allow event in the log — the event was durable before the call
// went out — and the chain verifies.
func TestCrashKeepsEveryAllow(t *testing.T) {
	var mu sync.Mutex
	received := map[string]bool{} // the span ids of the traceparents the upstream got
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.Header.Get("Traceparent"), "-")
		if len(parts) == 4 {
			mu.Lock()
			received[parts[2]] = true
			mu.Unlock()
		}
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(received)
	}

	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	cmd, _, stderr := serve(t, dir, addr)
	env := []string{"WARDEN_ADDR=" + base}
	mustRun := func(args ...string) string {
		t.Helper()
		out, errOut, code := run(t, dir, env, args...)
		if code != 0 {
			t.Fatalf("warden %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	mustRun("tool", "add", "recorder", "--http", upstream.URL, "--risk", "low", "--route", "POST /calls -> calls.make")
	var agent struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(mustRun("agent", "create", "crash-bot", "--owner", "a@example.com", "--purpose", "crash test", "--json")), &agent); err != nil {
		t.Fatal(err)
	}
	policies := t.TempDir()
	if err := os.WriteFile(filepath.Join(policies, "p.cedar"), []byte(`permit(principal == Agent::"crash-bot", action == Action::"recorder:calls.make", resource);`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun("policy", "apply", policies)
	resp, err := http.PostForm(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {agent.ClientID}, "client_secret": {agent.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}

	// Calls flow from several agents' worth of connections until the server dies under them.
	ctx, stopCalls := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ok atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/http/recorder/calls", strings.NewReader(fmt.Sprintf(`{"worker":%d,"n":%d}`, w, i)))
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					continue // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				}
			}
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for count() < 300 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no last checkpoint
		t.Fatal(err)
	}
	cmd.Wait()
	time.Sleep(200 * time.Millisecond) // calls still trying fail against nothing
	stopCalls()
	wg.Wait()
	calls := count()
	if calls < 50 {
		t.Fatalf("the upstream received only %d calls before the kill; stderr:\n%s", calls, stderr.String())
	}

	serve(t, dir, addr)
	admin, err := os.ReadFile(filepath.Join(dir, "warden-data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	after := int64(0)
	for {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/audit/events?type=tool.call&tool=recorder&decision=allow&limit=1000&after=%d", base, after), nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var evs []struct {
			Seq    int64  `json:"seq"`
			SpanID string `json:"span_id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&evs)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("search: %d %v", resp.StatusCode, err)
		}
		for _, ev := range evs {
			allowed[ev.SpanID] = true
			after = ev.Seq
		}
		if len(evs) < 1000 {
			break
		}
	}
	mu.Lock()
	missing := 0
	for span := range received {
		if !allowed[span] {
			missing++
		}
	}
	mu.Unlock()
	if missing > 0 {
		t.Fatalf("%d of the %d calls the upstream received have no allow event", missing, calls)
	}
	out, errOut, code := run(t, dir, append(env, "WARDEN_TOKEN="+strings.TrimSpace(string(admin))), "audit", "verify")
	if code != 0 {
		t.Fatalf("verify after the crash: exit %d: %s\n%s", code, errOut, out)
	}
	t.Logf("killed after the upstream got %d calls (%d answered 200); %d allow events; verify:\n%s", calls, ok.Load(), len(allowed), out)
}
