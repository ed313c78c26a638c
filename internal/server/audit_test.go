package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

var webhookOutage = flag.Duration("audit.webhook-outage", 3*time.Second,
	"how long the webhook sink is down in TestAuditWebhookOutage; the issue's bar is a minute: -audit.webhook-outage=1m")

// hookReceiver is a webhook endpoint for audit sinks that can be taken down.
type hookReceiver struct {
	mu     sync.Mutex
	down   bool
	seqs   []int64
	bodies bytes.Buffer
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.bodies.Write(body)
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			var ev struct {
				Seq      int64 `json:"seq"`
				Unmapped struct {
					Seq int64 `json:"warden.seq"`
				} `json:"unmapped"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Errorf("webhook: a line is not JSON: %v", err)
				continue
			}
			h.seqs = append(h.seqs, max(ev.Seq, ev.Unmapped.Seq))
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

func (h *hookReceiver) received() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int64(nil), h.seqs...)
}

func (h *hookReceiver) maxSeq() int64 {
	var m int64
	for _, s := range h.received() {
		m = max(m, s)
	}
	return m
}

// checkAtLeastOnceInOrder fails unless seqs is the log 1…head delivered at least once and in
// order: every event after the first comes at most one past the furthest so far (no gap), and
// the furthest ends at head. Repeats are what at least once allows, after a lost
// acknowledgement.
func checkAtLeastOnceInOrder(t *testing.T, seqs []int64, head int64) {
	t.Helper()
	var furthest int64
	repeats := 0
	for i, s := range seqs {
		switch {
		case s > furthest+1:
			t.Fatalf("delivery %d is event %d after the furthest so far was %d: events %d to %d were skipped", i, s, furthest, furthest+1, s-1)
		case s <= furthest:
			repeats++
		}
		furthest = max(furthest, s)
	}
	if furthest != head {
		t.Fatalf("delivered up to %d; the log's head is %d", furthest, head)
	}
	t.Logf("%d deliveries of %d events, %d repeats", len(seqs), head, repeats)
}

// waitAudit waits until cond holds, checking again after each commit to the server's audit log:
// for a change in the server that is recorded (a request made, expired, decided), this waits on
// the change rather than on a guessed time.
func (in *instance) waitAudit(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	giveUp := time.After(timeout)
	for {
		changed := in.srv.Audit.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-giveUp:
			t.Fatalf("after %s: %s", timeout, what)
		}
	}
}

// waitUntil polls cond: for what happens outside the server (a webhook receiver's deliveries,
// which the sinks retry on the wall clock).
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (in *instance) head() int64 {
	in.t.Helper()
	r := in.do("GET", "/v1/audit/events?newest=true&limit=1", map[string]string{"Authorization": "Bearer " + in.admin}, "")
	head, err := strconv.ParseInt(r.header.Get("Warden-Audit-Head"), 10, 64)
	if r.status != 200 || err != nil {
		in.t.Fatalf("head: %d %s", r.status, r.body)
	}
	return head
}

// TestAuditWebhookOutage takes a webhook sink down while events keep coming and the server
// restarts, then brings it back: it receives every event, in order, at least once.
func TestAuditWebhookOutage(t *testing.T) {
	t.Parallel()
	hook := newHookReceiver(t)
	edit := func(c *config.Config) {
		c.Audit.Sinks = []config.AuditSink{{Type: "webhook", URL: hook.srv.URL, BatchSize: 7}}
	}
	in := start(t, t.TempDir(), edit)
	n := 0
	event := func() {
		t.Helper()
		n++
		if _, err := in.cli(in.admin, "agent", "create", fmt.Sprintf("bot-%d", n), "--owner", "o@example.com", "--purpose", "outage"); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		event()
	}
	waitUntil(t, 10*time.Second, "the webhook got the first events", func() bool { return hook.maxSeq() == in.head() })

	hook.setDown(true)
	down := time.Now()
	for time.Since(down) < *webhookOutage/2 {
		event()
		time.Sleep(50 * time.Millisecond)
	}
	// A restart while the sink is down: its cursor, in the store, says where to resume.
	in = in.restart(edit)
	for time.Since(down) < *webhookOutage {
		event()
		time.Sleep(50 * time.Millisecond)
	}
	if got := hook.maxSeq(); got >= in.head() {
		t.Fatalf("the webhook received up to %d while it was down", got)
	}
	hook.setDown(false)
	head := in.head()
	waitUntil(t, 45*time.Second, "the webhook caught up after the outage", func() bool { return hook.maxSeq() >= head })
	checkAtLeastOnceInOrder(t, hook.received(), hook.maxSeq())
}

// sseClient reads an audit event stream.
type sseClient struct {
	events chan *warden.AuditEvent
	cancel context.CancelFunc
}

func openStream(t *testing.T, in *instance, token, query, lastEventID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", in.url+"/v1/audit/stream?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{events: make(chan *warden.AuditEvent, 100), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && data != "":
				var ev warden.AuditEvent
				if json.Unmarshal([]byte(data), &ev) != nil || strconv.FormatInt(ev.Seq, 10) != id {
					t.Errorf("stream event id %s data %s", id, data)
				}
				c.events <- &ev
				data = ""
			}
		}
	}()
	t.Cleanup(cancel)
	return c
}

// next returns the next n events, failing if they do not come.
func (c *sseClient) next(t *testing.T, n int) []*warden.AuditEvent {
	t.Helper()
	var evs []*warden.AuditEvent
	for range n {
		select {
		case ev := <-c.events:
			evs = append(evs, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("the stream sent %d events, want %d", len(evs), n)
		}
	}
	return evs
}

// none fails if an event comes within d.
func (c *sseClient) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-c.events:
		t.Fatalf("the stream sent an unexpected event: %s seq %d", ev.Type, ev.Seq)
	case <-time.After(d):
	}
}

// TestAuditStream follows the live stream with filters and resumes it with Last-Event-ID.
func TestAuditStream(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	in := start(t, t.TempDir(), nil)
	token, _ := setupGitHub(t, in, rec)
	var auditor httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &auditor, "admin", "token", "create", "sec-team", "--role", "auditor")

	denied := openStream(t, in, auditor.Token, "type=tool.call&decision=deny", "")
	risky := openStream(t, in, auditor.Token, "min_risk=high", "")
	allowed := func() {
		if r := in.gw("GET", "/http/github/repos/acme/web/issues", token, "", nil); r.status != 200 {
			t.Fatalf("allowed call: %d %s", r.status, r.body)
		}
	}
	deny := func() {
		if r := in.gw("GET", "/http/github/repos/acme/other/issues", token, "", nil); r.status != 403 {
			t.Fatalf("denied call: %d %s", r.status, r.body)
		}
	}
	allowed()
	deny()
	allowed()
	deny()
	evs := denied.next(t, 2)
	for _, ev := range evs {
		if ev.Type != warden.EventToolCall || ev.Decision.Effect != warden.EffectDeny || ev.Target.Resource != "repo:acme/other" {
			t.Fatalf("the deny stream sent %+v", ev)
		}
	}
	denied.none(t, 300*time.Millisecond)
	risky.none(t, 10*time.Millisecond) // the tool is of medium risk

	// Disconnected, the client misses events; reconnecting after the last it saw, it gets them
	// and nothing twice.
	denied.cancel()
	deny()
	allowed()
	deny()
	resumed := openStream(t, in, auditor.Token, "type=tool.call&decision=deny", strconv.FormatInt(evs[1].Seq, 10))
	more := resumed.next(t, 2)
	if more[0].Seq <= evs[1].Seq || more[1].Seq <= more[0].Seq || more[0].Decision.Effect != warden.EffectDeny {
		t.Fatalf("resumed after %d with %d, %d", evs[1].Seq, more[0].Seq, more[1].Seq)
	}
	resumed.none(t, 300*time.Millisecond)

	// A high-risk admin action reaches the high-risk stream.
	if _, err := in.cliStdin(in.admin, "value-of-another-secret\n", "secret", "set", "other"); err != nil {
		t.Fatal(err)
	}
	if ev := risky.next(t, 1)[0]; ev.Type != warden.EventSecretSet || ev.Target.Risk != warden.RiskHigh {
		t.Fatalf("the high-risk stream sent %+v", ev)
	}

	// The CLI follows the same stream.
	out := &lineWriter{line: make(chan struct{}, 16)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tail := make(chan error, 1)
	go func() {
		tail <- runCLIContext(ctx, in, auditor.Token, out, "audit", "tail", "-f", "-n", "1", "--decision", "deny", "--json")
	}()
	// The newest deny printed, the CLI follows the stream: only then is the next deny new to it.
	select {
	case <-out.line:
	case <-ctx.Done():
		t.Fatal("audit tail -f printed nothing")
	}
	deny()
	select {
	case <-out.line:
	case <-ctx.Done():
		t.Fatalf("audit tail -f did not print the new deny:\n%s", out.String())
	}
	cancel()
	if err := <-tail; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit tail -f -n 1 printed %d lines, want the newest deny then the new one:\n%s", len(lines), out.String())
	}

	// Roles: the approver may not read the log.
	var approver httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &approver, "admin", "token", "create", "approver-1", "--role", "approver")
	if r := in.do("GET", "/v1/audit/stream", map[string]string{"Authorization": "Bearer " + approver.Token}, ""); r.status != 403 {
		t.Fatalf("an approver opened the stream: %d", r.status)
	}
	// No API changes or deletes an event.
	for _, m := range []string{"DELETE", "PUT", "PATCH", "POST"} {
		if r := in.do(m, "/v1/audit/events", map[string]string{"Authorization": "Bearer " + in.admin}, "{}"); r.status < 400 {
			t.Fatalf("%s /v1/audit/events answered %d", m, r.status)
		}
	}
}

// runCLIContext runs a CLI command until ctx ends.
// lineWriter keeps what is written to it and tells line about each newline written.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	line chan struct{}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for range bytes.Count(p, []byte("\n")) {
		select {
		case w.line <- struct{}{}:
		default:
		}
	}
	return w.buf.Write(p)
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func runCLIContext(ctx context.Context, in *instance, token string, stdout io.Writer, args ...string) error {
	var stderr bytes.Buffer
	env := cli.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: &stderr, Getenv: func(k string) string {
		switch k {
		case "WARDEN_ADDR":
			return in.url
		case "WARDEN_TOKEN":
			return token
		}
		return ""
	}}
	return cli.Run(ctx, args, env)
}

func randomCanary(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestAuditCanary plants secrets in arguments, headers and upstream responses, then searches
// the whole data directory (the SQLite database and its WAL), every sink's output and every
// export for them.
func TestAuditCanary(t *testing.T) {
	t.Parallel()
	canaries := map[string]string{
		"brokered secret":        randomCanary("brokered-"),
		"sensitive-name arg":     randomCanary("pw-"),
		"tool's sensitive arg":   randomCanary("note-"),
		"query api_key":          randomCanary("q-"),
		"Authorization header":   "", // the agent's own token, filled in below
		"X-Api-Key header":       randomCanary("hdr-"),
		"Cookie header":          randomCanary("cookie-"),
		"upstream body":          randomCanary("resp-"),
		"upstream Set-Cookie":    randomCanary("setcookie-"),
		"JWT in an argument":     "eyJhbGciOiJFZERTQSJ9.eyJjYW5hcnkiOiIx" + randomCanary("") + "fQ.c2lnbmF0dXJl" + randomCanary(""),
		"private key in an arg":  "-----BEGIN PRIVATE KEY-----\n" + randomCanary("MIIE") + "\n-----END PRIVATE KEY-----",
		"GitHub token in an arg": "ghp_" + strings.ToUpper(randomCanary("")[:12]) + randomCanary("")[:24],
	}
	var upstreamGot bytes.Buffer
	var upMu sync.Mutex
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		upMu.Lock()
		fmt.Fprintf(&upstreamGot, "%v %s %s", r.Header, r.URL, body)
		upMu.Unlock()
		w.Header().Set("Set-Cookie", "s="+canaries["upstream Set-Cookie"])
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token":%q,"ok":true}`, canaries["upstream body"])
	}))
	defer upstream.Close()
	hook := newHookReceiver(t)
	syslogLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer syslogLn.Close()
	var syslogGot bytes.Buffer
	var syslogMu sync.Mutex
	go func() {
		for {
			conn, err := syslogLn.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := conn.Read(buf)
					syslogMu.Lock()
					syslogGot.Write(buf[:n])
					syslogMu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()

	dir := t.TempDir()
	in := start(t, dir, func(c *config.Config) {
		c.Audit.Checkpoint.Every = 5
		c.Audit.Sinks = []config.AuditSink{
			{Type: "file", Path: "audit/events.jsonl"},
			{Name: "ocsf-file", Type: "file", Format: "ocsf", Path: "audit/events.ocsf.jsonl"},
			{Type: "webhook", URL: hook.srv.URL, Format: "ocsf"},
			{Type: "syslog", Network: "tcp", Address: syslogLn.Addr().String()},
		}
	})
	must := func(stdin string, args ...string) {
		t.Helper()
		if _, err := in.cliStdin(in.admin, stdin, args...); err != nil {
			t.Fatalf("warden %s: %v", strings.Join(args, " "), err)
		}
	}
	must(canaries["brokered secret"]+"\n", "secret", "set", "vault-token")
	must("", "tool", "add", "vault", "--http", upstream.URL, "--risk", "medium", "--secret", "vault-token",
		"--inject", "Authorization: Bearer {{secret}}", "--sensitive-arg", "note",
		"--route", "POST /items -> items.create", "--route", "GET /items -> items.list")
	c := createAgent(t, in, "canary-bot")
	pdir := t.TempDir()
	writeFile(t, pdir, "vault.cedar", `@approval("waived") permit(principal == Agent::"canary-bot", action in [Action::"vault:items.create", Action::"vault:items.list"], resource);`)
	must("", "policy", "apply", pdir)
	token := in.mustToken(c.ClientID, c.ClientSecret)
	canaries["Authorization header"] = token

	body, _ := json.Marshal(map[string]any{
		"title": "hello", "password": canaries["sensitive-name arg"], "note": canaries["tool's sensitive arg"],
		"echo": canaries["brokered secret"], "memo": "see " + canaries["JWT in an argument"],
		"material": canaries["private key in an arg"], "nested": map[string]any{"gh": canaries["GitHub token in an arg"]},
	})
	headers := map[string]string{
		"Content-Type": "application/json", "X-Api-Key": canaries["X-Api-Key header"],
		"Cookie": "session=" + canaries["Cookie header"],
	}
	path := "/http/vault/items?api_key=" + url.QueryEscape(canaries["query api_key"])
	for range 3 {
		if r := in.gw("POST", path, token, string(body), headers); r.status != 200 || !strings.Contains(string(r.body), canaries["upstream body"]) {
			t.Fatalf("allowed call: %d %s", r.status, r.body)
		}
	}
	if r := in.gw("GET", path, token, "", headers); r.status != 200 {
		t.Fatalf("GET: %d %s", r.status, r.body)
	}
	if r := in.gw("DELETE", path, token, string(body), headers); r.status != 403 {
		t.Fatalf("a call with no route: %d %s", r.status, r.body)
	}
	// The canaries did flow: the upstream got the arguments and headers warden forwards.
	upMu.Lock()
	for _, name := range []string{"sensitive-name arg", "X-Api-Key header", "query api_key", "brokered secret"} {
		if !strings.Contains(upstreamGot.String(), canaries[name]) {
			t.Errorf("the upstream never got the %s canary; the test would prove nothing", name)
		}
	}
	upMu.Unlock()

	// The calls are on record, redacted, with the fields the issue lists.
	evs := in.events("type=tool.call&tool=vault&limit=100")
	if len(evs) != 5 {
		t.Fatalf("%d tool.call events, want 5", len(evs))
	}
	for _, ev := range evs[:3] {
		if ev.Decision.Effect != warden.EffectAllow || ev.Decision.ID == "" || ev.Target.ArgsSHA256 == "" || ev.TraceID == "" ||
			ev.SpanID == "" || ev.Actor.Replica == "" || ev.Actor.SessionID == "" || ev.Target.Risk != warden.RiskMedium ||
			ev.Hash == "" || ev.PrevHash == "" || !strings.Contains(string(ev.Target.Arguments), "[REDACTED]") {
			t.Fatalf("tool.call event: %+v", ev)
		}
	}
	results := in.events("type=tool.result&tool=vault")
	if len(results) != 4 || results[0].Outcome.UpstreamStatus != 200 || results[0].Outcome.BytesOut == 0 {
		t.Fatalf("tool.result events: %+v", results)
	}

	// Exports.
	exports := t.TempDir()
	for _, format := range []string{"jsonl", "ocsf"} {
		if _, err := in.cli(in.admin, "audit", "export", "--format", format, "-o", filepath.Join(exports, "export."+format)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.cli(in.admin, "audit", "checkpoint", "--export", filepath.Join(exports, "checkpoint")); err != nil {
		t.Fatal(err)
	}
	searched, err := in.cli(in.admin, "audit", "search", "--limit", "1000", "--json")
	if err != nil {
		t.Fatal(err)
	}

	// Every sink has the whole log.
	head := in.head()
	waitUntil(t, 10*time.Second, "the sinks delivered the log", func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "audit", "events.jsonl"))
		syslogMu.Lock()
		n := bytes.Count(syslogGot.Bytes(), []byte("\xef\xbb\xbf{"))
		syslogMu.Unlock()
		ok := hook.maxSeq() >= head && bytes.Count(data, []byte("\n")) >= int(head) && n >= int(head)
		if !ok {
			t.Logf("head %d: webhook %d, file %d lines, syslog %d messages", head, hook.maxSeq(), bytes.Count(data, []byte("\n")), n)
		}
		return ok
	})
	checkAtLeastOnceInOrder(t, hook.received(), hook.maxSeq())
	if out, err := in.cli(in.admin, "audit", "verify", "--checkpoint", filepath.Join(exports, "checkpoint")); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	search := func(when string) {
		t.Helper()
		found := map[string]string{}
		control := false // the search does read what the store wrote: the agent's name is there
		look := func(where string, data []byte) {
			if strings.HasPrefix(filepath.Base(where), "warden.db") && bytes.Contains(data, []byte("canary-bot")) {
				control = true
			}
			for name, canary := range canaries {
				if bytes.Contains(data, []byte(canary)) {
					found[name] = where
				}
			}
		}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			look(p, data)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = filepath.WalkDir(exports, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				data, _ := os.ReadFile(p)
				look(p, data)
			}
			return err
		})
		hook.mu.Lock()
		look("the webhook sink's deliveries", hook.bodies.Bytes())
		hook.mu.Unlock()
		syslogMu.Lock()
		look("the syslog sink's messages", syslogGot.Bytes())
		syslogMu.Unlock()
		look("audit search --json", []byte(searched))
		look("the server's log", []byte(in.log.String()))
		for name, where := range found {
			t.Errorf("%s: the %s canary is in %s", when, name, where)
		}
		if !control {
			t.Errorf("%s: the search found not even the agent's name in the database files", when)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "warden.db-wal")); err != nil {
		t.Errorf("while serving, the WAL should be there to search: %v", err)
	}
	search("while serving")
	in.stop()
	search("after stopping")
}

// TestAuditVerifyTampered verifies through the server and from the database file, then deletes
// an event directly in the database: both ways of verifying name the break.
func TestAuditVerifyTampered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, func(c *config.Config) { c.Audit.Checkpoint.Every = 3 })
	for i := range 6 {
		createAgent(t, in, fmt.Sprintf("bot-%d", i))
	}
	var auditor httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &auditor, "admin", "token", "create", "auditor-1", "--role", "auditor")
	out, err := in.cli(auditor.Token, "audit", "verify")
	if err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("verify through the server: %v\n%s", err, out)
	}
	cpFile := filepath.Join(t.TempDir(), "checkpoint")
	if _, err := in.cli(auditor.Token, "audit", "checkpoint", "--export", cpFile); err != nil {
		t.Fatal(err)
	}
	vkey, err := in.cli(auditor.Token, "audit", "key")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, t.TempDir(), "audit.vkey", vkey)
	store := "sqlite:" + filepath.Join(dir, "warden.db")
	var report struct {
		OK      bool  `json:"ok"`
		Extends int64 `json:"extends"`
	}
	in.cliJSON(auditor.Token, &report, "audit", "verify", "--store", store, "--key", keyFile, "--checkpoint", cpFile)
	if !report.OK || report.Extends == 0 {
		t.Fatalf("verify from the file: %+v", report)
	}
	in.stop()

	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.Join(dir, "warden.db"), RawQuery: "_busy_timeout=10000"}).String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM audit_events WHERE seq = 4`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, err = in.cli(auditor.Token, "audit", "verify", "--store", store, "--key", keyFile, "--checkpoint", cpFile)
	if err == nil || !strings.Contains(err.Error(), "deleted at seq 4") || !strings.Contains(out, "BROKEN") {
		t.Fatalf("verify of the tampered file: %v\n%s", err, out)
	}
	in2 := in.restart(nil)
	if _, err := in2.cli(auditor.Token, "audit", "verify"); err == nil || !strings.Contains(err.Error(), "deleted at seq 4") {
		t.Fatalf("verify through the restarted server: %v", err)
	}
}

// TestAuditSearchNewestFirst: warden audit search shows the newest events first, says on stderr
// when a page is not the whole search and how to see the rest, pages back with --cursor and
// through everything with --all; --json stays one event a line.
func TestAuditSearchNewestFirst(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	for i := range 7 {
		if _, err := in.cli(in.admin, "agent", "create", fmt.Sprintf("bot-%d", i), "--owner", "a@example.com", "--purpose", "p"); err != nil {
			t.Fatal(err)
		}
	}
	search := func(args ...string) (seqs []int64, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		env := cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
			return map[string]string{"WARDEN_ADDR": in.url, "WARDEN_TOKEN": in.admin}[k]
		}}
		if err := cli.Run(context.Background(), append([]string{"audit", "search", "--json"}, args...), env); err != nil {
			t.Fatalf("audit search %v: %v", args, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var ev warden.AuditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("audit search %v: a line that is not an event: %q", args, line)
			}
			seqs = append(seqs, ev.Seq)
		}
		return seqs, errOut.String()
	}
	descending := func(what string, seqs []int64) {
		t.Helper()
		for i := 1; i < len(seqs); i++ {
			if seqs[i] >= seqs[i-1] {
				t.Fatalf("%s: not newest first: %v", what, seqs)
			}
		}
	}

	head := in.head()
	first, notice := search("--limit", "3")
	descending("first page", first)
	if len(first) != 3 || first[0] != head {
		t.Fatalf("first page %v, want the 3 newest ending at head %d", first, head)
	}
	want := fmt.Sprintf("showing 3 of %d, newest first — use --cursor %d for the next page, or --all\n", head, first[2])
	if notice != want {
		t.Fatalf("notice %q, want %q", notice, want)
	}
	second, _ := search("--limit", "3", "--cursor", strconv.FormatInt(first[2], 10))
	descending("second page", second)
	if len(second) != 3 || second[0] != first[2]-1 {
		t.Fatalf("second page %v after %v", second, first)
	}

	all, notice := search("--all", "--limit", "3")
	descending("--all", all)
	if int64(len(all)) != head || all[0] != head || all[len(all)-1] != 1 || notice != "" {
		t.Fatalf("--all: %d events %v (head %d), stderr %q", len(all), all, head, notice)
	}

	// A filter's total is of the filter; a search shown whole says nothing more.
	creates, notice := search("--type", "agent.create", "--limit", "5")
	if len(creates) != 5 || !strings.HasPrefix(notice, "showing 5 of 7, newest first") {
		t.Fatalf("agent.create: %v, stderr %q", creates, notice)
	}
	if creates, notice = search("--type", "agent.create"); len(creates) != 7 || notice != "" {
		t.Fatalf("agent.create, one page: %v, stderr %q", creates, notice)
	}
}
