package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
)

// chromium returns the path of a Chromium (Debian's /usr/bin/chromium; .ci/run installs it),
// or skips the test saying so.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (apt-get install chromium): the console's browser tests need one")
	return ""
}

// newBrowser starts a headless Chromium of its own (temporary profile, nothing reaching out to
// the network) and returns a tab's context; it ends with the test.
func chromeTab(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// run runs browser steps within d.
func run(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action within d and returns its value.
func value[T any](t *testing.T, ctx context.Context, d time.Duration, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot writes the page to docs/console/NAME.png when WARDEN_UPDATE_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("WARDEN_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png := value(t, ctx, 10*time.Second, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "console", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fetchStatus posts a form from the page with fetch (as a forged request would) and returns
// the status; withCSRF adds the page's own CSRF token.
func fetchStatus(t *testing.T, ctx context.Context, path, reason string, withCSRF bool) int {
	t.Helper()
	csrf := "''"
	if withCSRF {
		csrf = "document.querySelector('input[name=csrf]').value"
	}
	js := `(async () => { const b = new URLSearchParams({reason: '` + reason + `'}); const c = ` + csrf + `; if (c) b.set('csrf', c);
		const r = await fetch('` + path + `', {method: 'POST', body: b, redirect: 'manual'}); return r.status; })()`
	return value(t, ctx, 10*time.Second, "fetch "+path, chromedp.Evaluate[int](js, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
}

// TestConsoleBrowser drives the console in a real Chromium against a real server: sign in with
// an admin token, see the agents, approve a held call (it completes) and reject another, see a
// new denial on the live stream within a second, kill an agent from its page (the API says
// killed and its next call is denied), a POST without the CSRF token is 403; an auditor sees no
// kill button and its forged kill is 403.
func TestConsoleBrowser(t *testing.T) {
	ctx := chromeTab(t)
	env := newApprovalEnv(t, func(a *config.Approvals) { a.Hold = config.Duration(30 * time.Second) })
	in := env.in
	var aud httpapi.CreatedAdminToken
	in.cliJSON(in.admin, &aud, "admin", "token", "create", "audrey", "--role", "auditor")
	id := func(s string) chromedp.ID { return chromedp.ID(s) }
	text := func(what string, sel chromedp.ID) string {
		t.Helper()
		return value(t, ctx, 10*time.Second, what, chromedp.Text(sel))
	}

	signIn := func(token string) {
		t.Helper()
		run(t, ctx, 15*time.Second, "sign in",
			chromedp.Navigate(in.url+"/ui/"),
			chromedp.WaitVisible(id("token")),
			chromedp.SendKeys(id("token"), token),
			chromedp.Click(id("signin")),
			chromedp.WaitVisible(id("who")),
		)
	}

	run(t, ctx, 10*time.Second, "login page", chromedp.Navigate(in.url+"/ui/login"), chromedp.WaitVisible(id("token")))
	screenshot(t, ctx, "login")
	signIn(in.admin)
	if who := text("who", id("who")); !strings.Contains(who, "admin") {
		t.Fatalf("signed in as %q", who)
	}

	// The agents.
	run(t, ctx, 10*time.Second, "agents", chromedp.Navigate(in.url+"/ui/agents"), chromedp.WaitVisible(chromedp.CSS(`a[href="/ui/agents/pay-bot"]`)))
	if count := text("count", id("count")); !strings.Contains(count, "2 of 2 agents") {
		t.Fatalf("agents: %q", count)
	}
	screenshot(t, ctx, "agents")

	// Approve a held call from the queue: the call completes.
	held := env.call(t.Context(), "bank.transfer", map[string]any{"amount": 100, "to": "acct-ui", "api_token": "tok-canary-ui"})
	req := env.pendingRequest(t, in.admin, "bank")
	run(t, ctx, 10*time.Second, "approvals", chromedp.Navigate(in.url+"/ui/approvals"), chromedp.WaitVisible(id("approve-"+req.ID)))
	args := value(t, ctx, 10*time.Second, "arguments", chromedp.Text(chromedp.CSS("#req-"+req.ID+" .args")))
	if strings.Contains(args, "tok-canary") || !strings.Contains(args, "acct-ui") {
		t.Fatalf("the arguments shown: %s", args)
	}
	screenshot(t, ctx, "approvals")
	run(t, ctx, 10*time.Second, "approve",
		chromedp.SendKeys(id("note-"+req.ID), "invoice 7"),
		chromedp.Click(id("approve-"+req.ID)),
		chromedp.WaitVisible(id("empty")),
	)
	if r := wait(t, held, 10*time.Second); r.err != nil || r.res.IsError || resultText(r.res) != "sent acct-ui" {
		t.Fatalf("the approved call: %v %+v", r.err, r.res)
	}

	// Reject another: the call ends refused and the upstream never sees it.
	held = env.call(t.Context(), "bank.transfer", map[string]any{"amount": 5000, "to": "acct-evil"})
	req = env.pendingRequest(t, in.admin, "bank")
	run(t, ctx, 10*time.Second, "reject",
		chromedp.Navigate(in.url+"/ui/approvals"),
		chromedp.WaitVisible(id("reject-"+req.ID)),
		chromedp.SendKeys(id("reason-"+req.ID), "not our supplier"),
		chromedp.Click(id("reject-"+req.ID)),
		chromedp.WaitVisible(id("empty")),
	)
	if r := wait(t, held, 10*time.Second); r.err == nil && !r.res.IsError {
		t.Fatalf("the rejected call went ahead: %+v", r.res)
	}
	if env.bank.transfers("acct-evil") != 0 {
		t.Fatal("the upstream got the rejected transfer")
	}

	// The live stream shows a new denial within a second.
	run(t, ctx, 10*time.Second, "overview",
		chromedp.Navigate(in.url+"/ui/overview"),
		chromedp.WaitVisible(id("stream-state")),
		chromedp.Poll[chromedp.Void](`document.getElementById("stream-state").textContent.startsWith("Live")`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	denied := time.Now()
	if res := env.callNow(t, "vault.balance", nil); !res.IsError {
		t.Fatalf("an ungranted call was allowed: %+v", res)
	}
	run(t, ctx, 5*time.Second, "the denial on the stream", chromedp.WaitVisible(chromedp.CSS(`#stream li[data-effect="deny"]`)))
	if took := time.Since(denied); took > time.Second {
		t.Errorf("the denial took %v to show", took)
	}
	screenshot(t, ctx, "overview")

	// A POST without the CSRF token is refused, and changes nothing.
	run(t, ctx, 10*time.Second, "agent page", chromedp.Navigate(in.url+"/ui/agents/ops-bot"), chromedp.WaitVisible(id("kill")))
	if status := fetchStatus(t, ctx, "/ui/agents/ops-bot/suspend", "no token", false); status != 403 {
		t.Fatalf("a POST without the CSRF token: %d", status)
	}
	if s := agentStatus(t, in, "ops-bot"); s != "active" {
		t.Fatalf("a refused POST changed ops-bot: %s", s)
	}

	// Kill pay-bot from its page: confirmation naming it, the report, and then the API and the
	// gateway agree.
	run(t, ctx, 15*time.Second, "agent page", chromedp.Navigate(in.url+"/ui/agents/pay-bot"), chromedp.WaitVisible(id("kill")))
	// Its recent calls, newest first: the denied vault call, then the rejected transfer.
	if recent := text("recent calls", id("recent")); !regexp.MustCompile(`(?s)vault\s+balance.*deny.*bank\s+transfer`).MatchString(recent) || strings.Contains(recent, "token.issue") {
		t.Fatalf("recent calls: %s", recent)
	}
	screenshot(t, ctx, "agent")
	run(t, ctx, 15*time.Second, "kill confirmation",
		chromedp.Click(id("kill")),
		chromedp.WaitVisible(id("confirm-kill")),
		chromedp.SendKeys(id("reason"), "drained an account"),
	)
	if name := text("kill name", id("kill-name")); name != "pay-bot" {
		t.Fatalf("the confirmation names %q", name)
	}
	screenshot(t, ctx, "kill")
	run(t, ctx, 15*time.Second, "kill report", chromedp.Click(id("confirm-kill")), chromedp.WaitVisible(id("kill-report")))
	if report := text("kill report", id("kill-report")); !strings.Contains(report, "Sessions invalidated") || !strings.Contains(report, "Sandboxes stopped") {
		t.Fatalf("kill report: %s", report)
	}
	screenshot(t, ctx, "killed")
	if s := agentStatus(t, in, "pay-bot"); s != "killed" {
		t.Fatalf("after the console's kill the API says %s", s)
	}
	if r := wait(t, env.call(t.Context(), "bank.balance", nil), 10*time.Second); r.err == nil && !r.res.IsError {
		t.Fatalf("the killed agent's call went ahead: %+v", r.res)
	}
	if r := in.tokenFor(env.cred.ClientID, env.cred.ClientSecret); r.status == 200 {
		t.Fatal("the killed agent got a token")
	}
	if !hasEvent(in.events("type=kill.agent"), warden.EventKillAgent, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "admin" && strings.Contains(ev.Decision.Message, "drained an account")
	}) {
		t.Error("the console's kill is not on record")
	}

	// Verify the log from the audit page: its script follows the progress until the result.
	run(t, ctx, 20*time.Second, "audit verify",
		chromedp.Navigate(in.url+"/ui/audit"),
		chromedp.WaitVisible(id("events")),
		chromedp.Click(id("verify")),
		chromedp.WaitVisible(id("verify-result")),
	)
	if result := text("verify result", id("verify-result")); !strings.HasPrefix(result, "Verified:") {
		t.Fatalf("the verification: %s", result)
	}
	screenshot(t, ctx, "audit")
	run(t, ctx, 10*time.Second, "tools", chromedp.Navigate(in.url+"/ui/tools"), chromedp.WaitVisible(chromedp.CSS("table")))
	screenshot(t, ctx, "tools")

	// An auditor: no kill button, and its forged kill is refused.
	run(t, ctx, 10*time.Second, "sign out", chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(id("token")))
	signIn(aud.Token)
	run(t, ctx, 10*time.Second, "auditor's agent page", chromedp.Navigate(in.url+"/ui/agents/ops-bot"), chromedp.WaitVisible(id("agent-status")))
	controls := value(t, ctx, 10*time.Second, "controls", chromedp.Evaluate[int](`document.querySelectorAll('#kill, form[action$="/kill"], form[action$="/suspend"]').length`))
	if controls != 0 {
		t.Fatalf("the auditor sees %d kill or suspend controls", controls)
	}
	if status := fetchStatus(t, ctx, "/ui/agents/ops-bot/kill", "forged", true); status != 403 {
		t.Fatalf("the auditor's forged kill: %d", status)
	}
	if s := agentStatus(t, in, "ops-bot"); s != "active" {
		t.Fatalf("the auditor's forged kill changed ops-bot: %s", s)
	}
}
