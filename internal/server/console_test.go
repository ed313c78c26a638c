package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/people"
	"github.com/wardenhq/warden/internal/people/oidctest"
)

// consoleBrowser is a cookie-jar client signed in to the console of in with an admin token.
type consoleBrowser struct {
	t  testing.TB
	in *instance
	c  *http.Client
}

func consoleSignIn(t testing.TB, in *instance, token string) *consoleBrowser {
	t.Helper()
	b := &consoleBrowser{t: t, in: in, c: oidctest.Browser(t)}
	status, body, _ := b.post("/login/admin-token", url.Values{"token": {token}, "query": {"return_to=/ui/"}})
	if status != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("sign-in: %d %s", status, body)
	}
	return b
}

func (b *consoleBrowser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.in.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *consoleBrowser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.in.url+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the session's CSRF token from a page.
func (b *consoleBrowser) csrf(page string) string {
	b.t.Helper()
	_, body, _ := b.get(page)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s: %s", page, body)
	}
	return m[1]
}

func agentStatus(t *testing.T, in *instance, name string) string {
	t.Helper()
	r := in.do("GET", "/v1/agents/"+name, map[string]string{"Authorization": "Bearer " + in.admin}, "")
	if r.status != 200 {
		t.Fatalf("agent %s: %d %s", name, r.status, r.body)
	}
	return r.json(t)["status"].(string)
}

// inlineCode finds what a strict CSP would block or a page should never carry: inline scripts,
// inline style attributes or elements, and event handler attributes.
var inlineCode = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<script>|\sstyle\s*=|<style|\son[a-z]+\s*=|javascript:`)

// TestConsoleHeadersAndCSRF: every /ui page carries the strict CSP and the other security
// headers and no inline script or style; a form posted without the session's CSRF token, or
// with another session's, is refused (403) and changes nothing; with it, the change is made
// and audited as its API twin's.
func TestConsoleHeadersAndCSRF(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	createAgent(t, in, "csrf-bot")
	createAgent(t, in, "other-bot")
	b := consoleSignIn(t, in, in.admin)

	for _, page := range []string{"/ui/overview", "/ui/agents", "/ui/agents/csrf-bot", "/ui/agents/csrf-bot/kill", "/ui/approvals",
		"/ui/audit", "/ui/audit/1", "/ui/tools", "/ui/lockdown", "/ui/login", "/ui/no-such-page"} {
		status, body, h := b.get(page)
		if status != http.StatusOK && page != "/ui/no-such-page" {
			t.Errorf("%s: %d %s", page, status, body)
		}
		if got := h.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("%s: CSP %q", page, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", page, h)
		}
		if m := inlineCode.FindString(body); m != "" {
			t.Errorf("%s: inline code %q", page, m)
		}
	}
	if _, _, h := b.get("/ui/static/console.js"); h.Get("Content-Security-Policy") != console.CSP || !strings.Contains(h.Get("Content-Type"), "javascript") {
		t.Errorf("console.js: %v", h)
	}

	token := b.csrf("/ui/agents/csrf-bot")
	other := consoleSignIn(t, in, in.admin).csrf("/ui/agents/csrf-bot")
	if other == token {
		t.Fatal("two sessions share a CSRF token")
	}
	for name, form := range map[string]url.Values{
		"no token":               {"reason": {"test"}},
		"another session's":      {"reason": {"test"}, "csrf": {other}},
		"a token one digit off":  {"reason": {"test"}, "csrf": {token[:len(token)-1] + "x"}},
		"the token in the query": {"reason": {"test"}},
	} {
		path := "/ui/agents/csrf-bot/suspend"
		if name == "the token in the query" {
			path += "?csrf=" + token
		}
		if status, body, _ := b.post(path, form); status != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: %d %s", name, status, body)
		}
		if s := agentStatus(t, in, "csrf-bot"); s != "active" {
			t.Fatalf("%s: a refused form changed the agent: %s", name, s)
		}
	}
	// A form from another site carries the Lax session cookie but never the console's Strict
	// one: even with the right token it changes nothing.
	u, _ := url.Parse(in.url)
	var session *http.Cookie
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == people.CookieName {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie in the browser")
	}
	req, _ := http.NewRequest("POST", in.url+"/ui/agents/csrf-bot/suspend", strings.NewReader(url.Values{"reason": {"cross-site"}, "csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(session)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form without the console's SameSite=Strict cookie: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	if s := agentStatus(t, in, "csrf-bot"); s != "active" {
		t.Fatalf("a form without the console's cookie changed the agent: %s", s)
	}

	status, body, _ := b.post("/ui/agents/csrf-bot/suspend", url.Values{"reason": {"console test"}, "csrf": {token}})
	if status != http.StatusOK || !strings.Contains(body, "csrf-bot suspended.") {
		t.Fatalf("suspend: %d %s", status, body)
	}
	if s := agentStatus(t, in, "csrf-bot"); s != "suspended" {
		t.Fatalf("after the form: %s", s)
	}
	if _, body, _ := b.get("/ui/agents?status=suspended"); !strings.Contains(body, `href="/ui/agents/csrf-bot"`) || strings.Contains(body, "other-bot") || !strings.Contains(body, "1 of 2 agents") {
		t.Fatalf("the list of suspended agents: %s", body)
	}
	if !hasEvent(in.events("type=agent.suspend"), warden.EventAgentSuspend, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "admin" && ev.Decision.Message == "console test"
	}) {
		t.Error("the console's suspension is not audited as the API's")
	}

	// A "done" message is made of a fixed verb and a name: a link cannot make the console say
	// anything else.
	for _, q := range []string{"done=Your+session+expired%3A+paste+your+admin+token+at+evil.example", "done=suspended&what=%3Cb%3Eevil%3C%2Fb%3E", "done=hacked&what=csrf-bot"} {
		if _, body, _ := b.get("/ui/agents/csrf-bot?" + q); strings.Contains(body, "Done:") {
			t.Errorf("?%s made a message: %s", q, body)
		}
	}
	if _, body, _ := b.get("/ui/agents/csrf-bot?done=suspended&what=csrf-bot"); !strings.Contains(body, "<strong>Done:</strong> csrf-bot suspended.") {
		t.Errorf("the message after a suspension: %s", body)
	}

	// Signing out ends the session on the server: its cookie no longer opens a page.
	cookies := b.cookies()
	if status, body, _ := b.post("/ui/logout", url.Values{"csrf": {token}}); status != http.StatusOK || !strings.Contains(body, "admin token") {
		t.Fatalf("sign out: %d %s", status, body)
	}
	if _, body, _ := b.get("/ui/agents"); !strings.Contains(body, "Break-glass") {
		t.Fatalf("after signing out: %s", body)
	}
	consoleSignedOut(t, in, cookies)

	// So does people's own sign-out, POST /logout, with the same session cookie.
	b = consoleSignIn(t, in, in.admin)
	cookies = b.cookies()
	if status, body, _ := b.post("/logout", nil); status != http.StatusOK {
		t.Fatalf("POST /logout: %d %s", status, body)
	}
	consoleSignedOut(t, in, cookies)
}

// cookies are the browser's cookies for the console.
func (b *consoleBrowser) cookies() []*http.Cookie {
	u, err := url.Parse(b.in.url + "/ui/")
	if err != nil {
		b.t.Fatal(err)
	}
	return b.c.Jar.Cookies(u)
}

// consoleSignedOut fails t unless a request with cookies, a signed-out browser's, is sent to
// sign in: its session ended on the server, not just in the browser.
func consoleSignedOut(t *testing.T, in *instance, cookies []*http.Cookie) {
	t.Helper()
	req, err := http.NewRequest("GET", in.url+"/ui/agents", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/login") {
		t.Fatalf("the signed-out session's cookies still open a page: %s %s", resp.Status, resp.Header.Get("Location"))
	}
}

// TestConsoleRoles: the server decides what each role may do. An auditor's agent page has no
// kill button, and its forged kill (with its own valid CSRF token) is refused 403, recorded, and
// changes nothing; an approver sees the queue but not agents.
func TestConsoleRoles(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	createAgent(t, in, "role-bot")
	var aud, appr httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &aud, "admin", "token", "create", "audrey", "--role", "auditor")
	in.cliJSON(in.admin, &appr, "admin", "token", "create", "april", "--role", "approver")

	op := consoleSignIn(t, in, in.admin)
	if _, body, _ := op.get("/ui/agents/role-bot"); !strings.Contains(body, `id="kill"`) {
		t.Fatalf("the admin has no kill button: %s", body)
	}

	b := consoleSignIn(t, in, aud.Token)
	status, body, _ := b.get("/ui/agents/role-bot")
	if status != http.StatusOK || strings.Contains(body, `id="kill"`) || strings.Contains(body, "/kill") || strings.Contains(body, "suspend") {
		t.Fatalf("the auditor's agent page: %d %s", status, body)
	}
	token := b.csrf("/ui/agents/role-bot")
	if status, body, _ := b.get("/ui/agents/role-bot/kill"); status != http.StatusForbidden {
		t.Errorf("the auditor's kill confirmation: %d %s", status, body)
	}
	status, body, _ = b.post("/ui/agents/role-bot/kill", url.Values{"reason": {"forged"}, "csrf": {token}})
	if status != http.StatusForbidden || !strings.Contains(body, "needs role") {
		t.Fatalf("the auditor's forged kill: %d %s", status, body)
	}
	if s := agentStatus(t, in, "role-bot"); s != "active" {
		t.Fatalf("the auditor's forged kill changed the agent: %s", s)
	}
	if !hasEvent(in.events("type=admin.denied"), warden.EventAdminDenied, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "audrey" && ev.Target.Action == "POST /ui/agents/role-bot/kill"
	}) {
		t.Error("the refused kill is not on record")
	}

	// The admin's kill: a reason is required, then the report.
	token = op.csrf("/ui/agents/role-bot/kill")
	if status, body, _ := op.post("/ui/agents/role-bot/kill", url.Values{"reason": {" "}, "csrf": {token}}); status != http.StatusBadRequest || !strings.Contains(body, "A reason is required") {
		t.Fatalf("a kill without a reason: %d %s", status, body)
	}
	if s := agentStatus(t, in, "role-bot"); s != "active" {
		t.Fatalf("a kill without a reason changed the agent: %s", s)
	}
	if status, body, _ := op.post("/ui/agents/role-bot/kill", url.Values{"reason": {"test kill"}, "csrf": {token}}); status != http.StatusOK || !strings.Contains(body, "Calls cancelled") {
		t.Fatalf("the admin's kill: %d %s", status, body)
	}
	if s := agentStatus(t, in, "role-bot"); s != "killed" {
		t.Fatalf("after the admin's kill: %s", s)
	}

	a := consoleSignIn(t, in, appr.Token)
	if status, _, _ := a.get("/ui/approvals"); status != http.StatusOK {
		t.Errorf("the approver's queue: %d", status)
	}
	if status, _, _ := a.get("/ui/agents"); status != http.StatusForbidden {
		t.Errorf("the approver's agents page: %d", status)
	}
	// The live audit stream is the readers', as GET /v1/audit/stream is; deciding is not the
	// auditor's.
	resp, err := a.c.Get(in.url + "/ui/stream") // the headers only: a stream does not end
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the approver's live stream: %s", resp.Status)
	}
	if status, body, _ := b.post("/ui/approvals/apr_forged/approve", url.Values{"csrf": {b.csrf("/ui/agents")}}); status != http.StatusForbidden || !strings.Contains(body, "needs role") {
		t.Errorf("the auditor's approval: %d %s", status, body)
	}
}

// TestConsoleIdle: a session unused for longer than the idle timeout is signed out on the
// server at its next request, and the person is told why.
func TestConsoleIdle(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	in := startClock(t, "127.0.0.1:0", t.TempDir(), clk, nil)
	b := consoleSignIn(t, in, in.admin)
	clk.Advance(console.DefaultIdle - time.Minute)
	if status, body, _ := b.get("/ui/agents"); status != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("within the idle timeout: %d %s", status, body)
	}
	clk.Advance(console.DefaultIdle - time.Minute) // active a moment ago: still in
	if status, body, _ := b.get("/ui/agents"); status != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("the activity did not count: %d %s", status, body)
	}
	clk.Advance(console.DefaultIdle + time.Second)
	_, body, _ := b.get("/ui/agents")
	if !strings.Contains(body, "signed out after a period without activity") {
		t.Fatalf("after the idle timeout: %s", body)
	}
	if !hasEvent(in.events("type=person.sign_out"), warden.EventPersonSignOut, nil) {
		t.Error("the idle session was not ended on the server")
	}
}

// TestConsoleSeparationOfDuties: the approval service's refusal reaches the person in its own
// words — the owner of an agent may not approve its call — and the request stays pending;
// another approver's approval from the console lets the held call through.
func TestConsoleSeparationOfDuties(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, func(a *config.Approvals) {
		a.Hold = config.Duration(20 * time.Second)
		a.SeparationOfDuties = true
	})
	in := env.in
	alice := consoleSignIn(t, in, env.personToken(t, "alice", "approver", "alice@example.com"))
	carol := consoleSignIn(t, in, env.personToken(t, "carol", "approver", "carol@example.com"))

	// The agent's page lists its grants.
	if _, body, _ := consoleSignIn(t, in, in.admin).get("/ui/agents/pay-bot"); !strings.Contains(body, "<code>grant:pay-bot:bank:0</code>") {
		t.Fatalf("pay-bot's grants: %s", body)
	}

	held := env.call(t.Context(), "bank.transfer", map[string]any{"amount": 250, "to": "acct-sod"})
	req := env.pendingRequest(t, in.admin, "bank")
	status, body, _ := alice.post("/ui/approvals/"+req.ID+"/approve", url.Values{"csrf": {alice.csrf("/ui/approvals")}, "note": {"mine"}})
	if status != http.StatusForbidden || !strings.Contains(body, "owns agent") || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("the owner's approval: %d %s", status, body)
	}
	if got := env.request(t, req.ID); got.Status != warden.ApprovalPending {
		t.Fatalf("after the refused approval the request is %s", got.Status)
	}
	status, body, _ = carol.post("/ui/approvals/"+req.ID+"/approve", url.Values{"csrf": {carol.csrf("/ui/approvals")}, "note": {"checked"}})
	if status != http.StatusOK || !strings.Contains(body, req.ID+" approved.") {
		t.Fatalf("another approver: %d %s", status, body)
	}
	if r := wait(t, held, 10*time.Second); r.err != nil || r.res.IsError || env.bank.transfers("acct-sod") != 1 {
		t.Fatalf("after the approval: %v %+v", r.err, r.res)
	}
}

// TestConsoleToolsLockdownAudit: the tools page disables and enables a tool through the admin
// service (the API sees it), the lockdown needs a reason and the confirmation box and then holds
// for every agent, and the audit page searches, pages, shows an event and verifies the log; a
// filter the search refuses is the person's mistake (400), not the server's.
func TestConsoleToolsLockdownAudit(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	if _, err := in.cli(in.admin, "tool", "add", "ledger", "--http", "http://127.0.0.1:9/", "--risk", "low", "--route", "GET /x -> read"); err != nil {
		t.Fatal(err)
	}
	for i := range 60 { // enough events for two pages of the audit log
		if _, _, err := in.srv.Admin.CreateAgent(t.Context(), &warden.Principal{Name: "admin", Role: warden.RoleAdmin},
			admin.AgentSpec{Name: fmt.Sprintf("page-bot-%d", i), Owner: "ops@example.com", Purpose: "audit pages"}); err != nil {
			t.Fatal(err)
		}
	}
	b := consoleSignIn(t, in, in.admin)
	token := b.csrf("/ui/tools")
	toolDisabled := func() bool {
		r := in.do("GET", "/v1/tools/ledger", map[string]string{"Authorization": "Bearer " + in.admin}, "")
		return r.json(t)["disabled"].(bool)
	}
	if status, body, _ := b.post("/ui/tools/ledger/disable", url.Values{"csrf": {token}, "reason": {"suspicious"}}); status != 200 || !strings.Contains(body, "ledger disabled") || !toolDisabled() {
		t.Fatalf("disable: %d %s", status, body)
	}
	// An operator may disable a tool but not enable one: the form is refused, the tool stays off.
	var opTok httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &opTok, "admin", "token", "create", "otto", "--role", "operator")
	op := consoleSignIn(t, in, opTok.Token)
	if status, body, _ := op.post("/ui/tools/ledger/enable", url.Values{"csrf": {op.csrf("/ui/tools")}, "reason": {"forged"}}); status != http.StatusForbidden || !strings.Contains(body, "needs role") || !toolDisabled() {
		t.Fatalf("the operator's enable: %d %s", status, body)
	}
	if status, body, _ := b.post("/ui/tools/ledger/enable", url.Values{"csrf": {token}, "reason": {"fine"}}); status != 200 || !strings.Contains(body, "ledger enabled") || toolDisabled() {
		t.Fatalf("enable: %d %s", status, body)
	}

	lockdown := func() bool {
		r := in.do("GET", "/v1/lockdown", map[string]string{"Authorization": "Bearer " + in.admin}, "")
		return r.json(t)["active"].(bool)
	}
	if status, _, _ := b.post("/ui/lockdown", url.Values{"csrf": {token}, "reason": {"incident"}}); status != http.StatusBadRequest || lockdown() {
		t.Fatalf("a lockdown without the confirmation: %d, active %v", status, lockdown())
	}
	if status, body, _ := b.post("/ui/lockdown", url.Values{"csrf": {token}, "reason": {"incident 12"}, "confirm": {"lockdown"}}); status != 200 || !strings.Contains(body, "Lockdown is ACTIVE") || !lockdown() {
		t.Fatalf("lockdown: %d %s", status, body)
	}
	if _, body, _ := b.get("/ui/overview"); !strings.Contains(body, `id="lockdown">ACTIVE`) {
		t.Fatalf("the overview does not show the lockdown: %s", body)
	}

	if status, body, _ := b.get("/ui/audit?type=lockdown.start"); status != 200 || !strings.Contains(body, "lockdown.start") || strings.Contains(body, "admin.tool.disable") {
		t.Fatalf("audit search: %d %s", status, body)
	}
	if status, body, _ := b.get("/ui/audit?since=yesterday-ish"); status != http.StatusBadRequest || !strings.Contains(body, `role="alert"`) {
		t.Fatalf("a bad filter: %d %s", status, body)
	}
	if status, body, _ := b.get("/ui/audit/1"); status != 200 || !strings.Contains(body, "&#34;seq&#34;: 1,") {
		t.Fatalf("event 1: %d %s", status, body)
	}
	if status, _, _ := b.get("/ui/audit/999999"); status != http.StatusNotFound {
		t.Fatalf("a missing event: %d", status)
	}
	if body := consoleVerify(t, b, token); !strings.Contains(body, "<strong>Verified:</strong>") {
		t.Fatalf("verify: %s", body)
	}
	// Pages of 50, newest first, going back: every event once.
	seen := map[string]bool{}
	for path, pages := "/ui/audit", 0; path != ""; pages++ {
		_, body, _ := b.get(path)
		for _, m := range regexp.MustCompile(`href="/ui/audit/(\d+)"`).FindAllStringSubmatch(body, -1) {
			if seen[m[1]] {
				t.Fatalf("event %s on two pages", m[1])
			}
			seen[m[1]] = true
		}
		path = ""
		if m := regexp.MustCompile(`href="(/ui/audit\?[^"]+)" id="older"`).FindStringSubmatch(body); m != nil {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		if pages > 20 {
			t.Fatal("the pages do not end")
		}
	}
	head := len(in.events("limit=1000"))
	if len(seen) < head || head < 60 {
		t.Fatalf("the pages show %d events; the log has about %d", len(seen), head)
	}
}
