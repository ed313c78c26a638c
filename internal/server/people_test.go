package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/people/oidctest"
)

// peopleEnv is a server whose people sign in at a real OIDC provider on 127.0.0.1.
type peopleEnv struct {
	in *instance
	op *oidctest.Provider
}

func peopleConfig(op *oidctest.Provider) func(*config.Config) {
	return func(c *config.Config) {
		c.People.OIDC = &config.PeopleOIDC{
			Issuer: op.URL, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			Scopes: []string{"openid", "email", "profile"},
			Roles:  map[string]warden.Role{"warden-approvers": warden.RoleApprover, "warden-admins": warden.RoleAdmin},
		}
	}
}

func newPeopleEnv(t *testing.T, edit func(*config.Config)) *peopleEnv {
	t.Helper()
	op := oidctest.Start(t)
	for _, u := range []oidctest.User{
		{Username: "carol", Email: "carol@example.com", EmailVerified: true, Groups: []string{"staff", "warden-approvers"}},
		{Username: "dave", Email: "dave@example.com", EmailVerified: true, Groups: []string{"warden-approvers", "warden-admins"}},
		{Username: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"warden-approvers"}},
		{Username: "eve", Email: "eve@example.com", EmailVerified: false, Groups: []string{"warden-admins"}},
		{Username: "nobody", Email: "nobody@example.com", EmailVerified: true, Groups: []string{"staff"}},
	} {
		op.AddUser(u)
	}
	in := start(t, t.TempDir(), func(c *config.Config) {
		peopleConfig(op)(c)
		if edit != nil {
			edit(c)
		}
	})
	op.AllowRedirect(in.url + "/login/callback")
	return &peopleEnv{in: in, op: op}
}

// browserSignIn signs username in through warden's /login in a new browser.
func (env *peopleEnv) browserSignIn(t *testing.T, username string) (*http.Client, *http.Response, string) {
	t.Helper()
	b := oidctest.Browser(t)
	resp, body, err := env.op.SignIn(t.Context(), b, env.in.url+"/login/oidc?return_to=%2Flogin", username)
	if err != nil {
		t.Fatal(err)
	}
	return b, resp, body
}

// cliEnv runs the CLI with a profile file of its own, no WARDEN_ADDR or WARDEN_TOKEN unless
// set in extra, and a browser that signs username in.
func (env *peopleEnv) cliEnv(t *testing.T, cfgPath, username string, stdout io.Writer, extra map[string]string) cli.Env {
	b := oidctest.Browser(t)
	return cli.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: io.Discard,
		Getenv: func(k string) string {
			if k == "WARDEN_CONFIG" {
				return cfgPath
			}
			return extra[k]
		},
		OpenURL: func(ctx context.Context, u string) error {
			// The person clicks "Sign in with <issuer>" on warden's /login page.
			resp, err := b.Get(u)
			if err != nil {
				return err
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			link := regexp.MustCompile(`href="(/login/oidc[^"]*)"`).FindStringSubmatch(string(page))
			if link == nil {
				t.Errorf("no sign-in link on %s: %s", u, page)
				return errors.New("no sign-in link")
			}
			resp, body, err := env.op.SignIn(ctx, b, env.in.url+html.UnescapeString(link[1]), username)
			if err != nil {
				t.Errorf("the browser: %v", err)
			} else if resp.StatusCode != http.StatusOK {
				t.Logf("the browser ended at %s: %d %.200s", resp.Request.URL, resp.StatusCode, body)
			}
			return err
		},
	}
}

// cliLogin signs username in with `warden login` and returns the session token it saved.
func (env *peopleEnv) cliLogin(t *testing.T, username string) string {
	t.Helper()
	cfgPath := filepath.Join(t.TempDir(), "warden", "config.yaml")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cli.Run(ctx, []string{"login", "--server", env.in.url}, env.cliEnv(t, cfgPath, username, io.Discard, nil)); err != nil {
		t.Fatalf("warden login as %s: %v", username, err)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	token := regexp.MustCompile(`wps_[A-Za-z0-9_-]+`).FindString(string(b))
	if token == "" {
		t.Fatalf("no session token in the profile file:\n%s", b)
	}
	return token
}

// TestPeopleSignIn: a person signs in at the OIDC provider; the role comes from the groups
// (the strongest of several); an unverified email, a forged state and an ID token with
// another sign-in's nonce are refused, each on record.
func TestPeopleSignIn(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	in := env.in

	page := in.do("GET", "/login", nil, "")
	if page.status != 200 || !strings.Contains(string(page.body), "Sign in with "+env.op.URL) || !strings.Contains(string(page.body), "admin token") {
		t.Fatalf("/login: %d %s", page.status, page.body)
	}
	for user, want := range map[string]string{"carol": "Signed in as carol@example.com (approver)", "dave": "Signed in as dave@example.com (admin)"} {
		b, resp, body := env.browserSignIn(t, user)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %s", user, resp.StatusCode, body)
		}
		u, _ := url.Parse(in.url)
		var session *http.Cookie
		for _, c := range b.Jar.Cookies(u) {
			if c.Name == "warden_session" {
				session = c
			}
		}
		if session == nil || !strings.HasPrefix(session.Value, "wps_") {
			t.Fatalf("%s: no session cookie", user)
		}
	}
	if !hasEvent(in.events("type=person.sign_in"), warden.EventPersonSignIn, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Kind == warden.ActorHuman && ev.Actor.Name == "carol@example.com" && ev.Actor.Role == "approver" && ev.Actor.Email == "carol@example.com"
	}) {
		t.Error("carol's sign-in is not on record")
	}

	refused := func(user, want string) {
		t.Helper()
		_, resp, body := env.browserSignIn(t, user)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
			t.Fatalf("%s: %d %s; want 403 %q", user, resp.StatusCode, body, want)
		}
		if !hasEvent(in.events("type=person.sign_in_refused"), warden.EventPersonSignInRefused, func(ev *warden.AuditEvent) bool {
			return strings.Contains(ev.Decision.Message, want)
		}) {
			t.Errorf("the refusal %q is not on record", want)
		}
	}
	refused("eve", "is not verified")
	refused("nobody", "has no warden role")

	env.op.ForceNonce("a-nonce-of-another-sign-in")
	refused("carol", "nonce is not this sign-in")
	env.op.ForceNonce("")

	// The provider's answer to a sign-in that one browser started, brought to another browser
	// (login CSRF), is refused; in the browser that started it, it signs in.
	a := oidctest.Browser(t)
	a.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/login/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, _, err := env.op.SignIn(t.Context(), a, in.url+"/login/oidc", "carol")
	if err != nil {
		t.Fatal(err)
	}
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, in.url+"/login/callback?") {
		t.Fatalf("the provider answered %d, Location %q", resp.StatusCode, callback)
	}
	for _, tt := range []struct {
		browser *http.Client
		status  int
		want    string
	}{
		{oidctest.Browser(t), http.StatusForbidden, "state does not match"},
		{a, http.StatusOK, "Signed in as carol@example.com"},
	} {
		tt.browser.CheckRedirect = nil
		resp, err := tt.browser.Get(callback)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.want) {
			t.Fatalf("the callback: %d %s; want %d %q", resp.StatusCode, body, tt.status, tt.want)
		}
	}

	// A page elsewhere cannot post the break-glass form or sign a person out.
	r := in.do("POST", "/logout", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, "")
	if r.status != http.StatusForbidden {
		t.Fatalf("cross-site POST /logout: %d", r.status)
	}
}

// TestPeopleBreakGlass: an admin token signs a browser in; a wrong one is refused and recorded.
func TestPeopleBreakGlass(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	b := oidctest.Browser(t)
	post := func(token string) (int, string) {
		resp, err := b.PostForm(env.in.url+"/login/admin-token", url.Values{"token": {token}, "query": {"return_to=/login"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := post("wat_not-a-real-token"); status != http.StatusUnauthorized {
		t.Fatalf("a wrong admin token: %d %s", status, body)
	}
	if status, body := post(env.in.admin); status != 200 || !strings.Contains(body, "Signed in as admin (admin)") {
		t.Fatalf("the admin token: %d %s", status, body)
	}
	if !hasEvent(env.in.events("type=person.sign_in"), warden.EventPersonSignIn, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "admin" && ev.Target.Action == "admin_token"
	}) {
		t.Error("the break-glass sign-in is not on record")
	}

	// A session signed in with an admin token ends when that token is revoked (fails when the
	// session outlives its token).
	var bg httpapi.CreatedAdminToken
	env.in.cliJSON(env.in.admin, &bg, "admin", "token", "create", "glass", "--role", "operator")
	b = oidctest.Browser(t)
	if status, body := post(bg.Token); status != 200 || !strings.Contains(body, "Signed in as glass (operator)") {
		t.Fatalf("the operator's admin token: %d %s", status, body)
	}
	if _, err := env.in.cli(env.in.admin, "admin", "token", "revoke", "glass"); err != nil {
		t.Fatal(err)
	}
	resp, err := b.Get(env.in.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(page), "Signed in as glass") {
		t.Fatal("a session signed in with a revoked admin token still holds")
	}
}

// TestPeopleCLI: `warden login` through the browser (loopback, PKCE) and the device flow; a
// signed-in approver lists approvals but may not create agents (403, recorded); the profile
// file is private; WARDEN_TOKEN and --data win over the profile, and the profile's token never
// goes to another server; logout ends the session on the server.
func TestPeopleCLI(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	in := env.in
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "warden", "config.yaml")
	run := func(extra map[string]string, user string, args ...string) (string, error) {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		err := cli.Run(ctx, args, env.cliEnv(t, cfgPath, user, &out, extra))
		return out.String(), err
	}
	if out, err := run(nil, "carol", "login", "--server", in.url, "--profile", "prod"); err != nil || !strings.Contains(out, "carol@example.com (approver)") {
		t.Fatalf("warden login: %v %s", err, out)
	}
	for path, want := range map[string]os.FileMode{cfgPath: 0o600, filepath.Dir(cfgPath): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Fatalf("%s: %v, mode %o; want %o", path, err, st.Mode().Perm(), want)
		}
	}
	out, err := run(nil, "", "whoami")
	if err != nil || !strings.Contains(out, "profile:  prod") || !strings.Contains(out, "carol@example.com") || !strings.Contains(out, "approver") {
		t.Fatalf("whoami: %v\n%s", err, out)
	}
	if _, err := run(nil, "", "approvals", "list"); err != nil {
		t.Fatalf("an approver lists approvals: %v", err)
	}
	_, err = run(nil, "", "agent", "create", "x-bot", "--owner", "carol@example.com", "--purpose", "test")
	if cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(cli.ErrorLine(err), "needs role admin") {
		t.Fatalf("an approver creates an agent: %v", err)
	}
	if !hasEvent(in.events("type=admin.denied"), warden.EventAdminDenied, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "carol@example.com" && ev.Actor.Role == "approver"
	}) {
		t.Error("the refused agent create is not on record")
	}

	// Precedence: WARDEN_TOKEN > the profile; --data's admin.token > the profile; a profile's
	// credential goes only to its own server.
	if out, err := run(map[string]string{"WARDEN_TOKEN": in.admin}, "", "whoami"); err != nil || !strings.Contains(out, "name:     admin") {
		t.Fatalf("WARDEN_TOKEN does not win: %v\n%s", err, out)
	}
	if out, err := run(nil, "", "whoami", "--data", in.dir); err != nil || !strings.Contains(out, "name:     admin") {
		t.Fatalf("--data does not win: %v\n%s", err, out)
	}
	var hits atomic.Int32
	other := newCountingServer(t, &hits)
	if _, err := run(map[string]string{"WARDEN_ADDR": other}, "", "whoami"); cli.ExitCode(err) != cli.ExitUnauthorized || hits.Load() != 0 {
		t.Fatalf("another server: %v, %d requests (the profile's token must not go there)", err, hits.Load())
	}

	// Device flow, confirmed in a browser where dave is signed in.
	browser, _, _ := env.browserSignIn(t, "dave")
	lw := &lineWriter{line: make(chan struct{}, 16)}
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(t.Context(), []string{"login", "--server", in.url, "--profile", "dev", "--device"}, env.cliEnv(t, cfgPath, "", lw, nil))
	}()
	var complete string
	for complete == "" {
		select {
		case <-lw.line:
			if m := regexp.MustCompile(`\(or open (\S+)\)`).FindStringSubmatch(lw.String()); m != nil {
				complete = m[1]
			}
		case err := <-done:
			t.Fatalf("login --device ended early: %v\n%s", err, lw.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("login --device printed no code:\n%s", lw.String())
		}
	}
	resp, err := browser.Get(complete)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	code := regexp.MustCompile(`name="user_code" value="([A-Z-]+)"`).FindStringSubmatch(string(page))
	if code == nil {
		t.Fatalf("the device page: %d %s", resp.StatusCode, page)
	}
	resp, err = browser.PostForm(in.url+"/login/device", url.Values{"user_code": {code[1]}, "decision": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "signed in as dave@example.com") {
		t.Fatalf("confirming the code: %d %s", resp.StatusCode, page)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login --device: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("login --device did not finish after the code was confirmed")
	}
	if out, err := run(nil, "", "whoami"); err != nil || !strings.Contains(out, "profile:  dev") || !strings.Contains(out, "dave@example.com") {
		t.Fatalf("whoami after --device: %v\n%s", err, out)
	}
	out, err = run(nil, "", "config", "profiles")
	if err != nil || !regexp.MustCompile(`\*\s+dev`).MatchString(out) || !strings.Contains(out, "prod") {
		t.Fatalf("config profiles: %v\n%s", err, out)
	}
	if _, err := run(nil, "", "config", "use-profile", "prod"); err != nil {
		t.Fatal(err)
	}
	if out, err := run(nil, "", "config", "current"); err != nil || strings.TrimSpace(out) != "prod" {
		t.Fatalf("config current: %v %q", err, out)
	}

	// Logout ends the session on the server, not only here.
	b, _ := os.ReadFile(cfgPath)
	prodToken := regexp.MustCompile(`wps_[A-Za-z0-9_-]+`).FindAllString(string(b), -1)
	if _, err := run(nil, "", "logout"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range prodToken {
		r := in.do("GET", "/v1/whoami", map[string]string{"Authorization": "Bearer " + tok}, "")
		if strings.Contains(string(r.body), "carol@example.com") {
			t.Fatalf("carol's session still works after logout: %d %s", r.status, r.body)
		}
	}
	if !hasEvent(in.events("type=person.sign_out"), warden.EventPersonSignOut, func(ev *warden.AuditEvent) bool { return ev.Actor.Name == "carol@example.com" }) {
		t.Error("the sign-out is not on record")
	}
	if _, err := run(nil, "", "whoami"); cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Fatalf("whoami after logout: %v", err)
	}

	// A person without a mapped role cannot sign the CLI in.
	if _, err := run(nil, "nobody", "login", "--server", in.url, "--profile", "nobody"); cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Fatalf("login of a person with no role: %v", err)
	}
	// A profile file others may read is refused.
	if err := os.Chmod(cfgPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(nil, "", "config", "profiles"); err == nil || !strings.Contains(cli.ErrorLine(err), "chmod 600") {
		t.Fatalf("a group-readable profile file: %v", err)
	}
}

// newCountingServer is a server that counts the requests it gets and answers 401.
func newCountingServer(t *testing.T, hits *atomic.Int32) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestPeopleSeparationOfDuties: a person signed in through OIDC is told apart by the verified
// email: the agent's owner may not approve its call; another approver may.
func TestPeopleSeparationOfDuties(t *testing.T) {
	t.Parallel()
	env := newApprovalEnv(t, nil)
	op := oidctest.Start(t)
	op.AddUser(oidctest.User{Username: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"warden-approvers"}})
	op.AddUser(oidctest.User{Username: "carol", Email: "carol@example.com", EmailVerified: true, Groups: []string{"warden-approvers"}})
	env.in = env.in.restart(func(c *config.Config) {
		c.Approvals.Hold = config.Duration(20 * time.Second)
		c.Approvals.SeparationOfDuties = true
		peopleConfig(op)(c)
	})
	op.AllowRedirect(env.in.url + "/login/callback")
	env.cs = mcpConnect(t, env.in.url+"/mcp", env.token)
	penv := &peopleEnv{in: env.in, op: op}
	alice, carol := penv.cliLogin(t, "alice"), penv.cliLogin(t, "carol")

	held := env.call(t.Context(), "bank.transfer", map[string]any{"amount": 250, "to": "acct-sod"})
	req := env.pendingRequest(t, carol, "bank")
	if _, err := env.in.cli(alice, "approve", req.ID); cli.ExitCode(err) != cli.ExitUnauthorized || !strings.Contains(cli.ErrorLine(err), "owns agent") {
		t.Fatalf("the owner approves through SSO: %v", err)
	}
	if _, err := env.in.cli(carol, "approve", req.ID); err != nil {
		t.Fatalf("another approver: %v", err)
	}
	if r := wait(t, held, 5*time.Second); r.err != nil || r.res.IsError || env.bank.transfers("acct-sod") != 1 {
		t.Fatalf("after the approval: %v %+v", r.err, r.res)
	}
}

// TestPeopleCLICodeNeedsVerifier: the loopback flow's one-time code gives a session only with
// the PKCE verifier of its challenge, and only once.
func TestPeopleCLICodeNeedsVerifier(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	codes := make(chan string, 4)
	loop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		codes <- r.URL.Query().Get("code")
	}))
	t.Cleanup(loop.Close)
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	start := env.in.url + "/login/oidc?" + url.Values{"cli": {loop.URL + "/callback"}, "cli_state": {strings.Repeat("s", 20)}, "code_challenge": {challenge}}.Encode()
	if _, _, err := env.op.SignIn(t.Context(), oidctest.Browser(t), start, "carol"); err != nil {
		t.Fatal(err)
	}
	code := <-codes
	exchange := func(verifier string) response {
		return env.in.do("POST", "/login/cli/token", map[string]string{"Content-Type": "application/json"},
			`{"code":"`+code+`","code_verifier":"`+verifier+`"}`)
	}
	if r := exchange(strings.Repeat("w", 43)); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong verifier: %d %s", r.status, r.body)
	}
	if r := exchange(verifier); r.status != http.StatusUnauthorized {
		t.Fatalf("the code again, after a wrong verifier used it: %d %s", r.status, r.body)
	}
	if _, _, err := env.op.SignIn(t.Context(), oidctest.Browser(t), start, "carol"); err != nil {
		t.Fatal(err)
	}
	code = <-codes
	if r := exchange(verifier); r.status != http.StatusOK || !strings.Contains(string(r.body), `"token": "wps_`) {
		t.Fatalf("the right verifier: %d %s", r.status, r.body)
	}
	if r := exchange(verifier); r.status != http.StatusUnauthorized {
		t.Fatalf("the code twice: %d %s", r.status, r.body)
	}
}

// TestTokenCommand: `warden token` prints an access token for the agent's client credentials
// (the agent's own, which /v1/agent/self accepts), or the whole response with --json; wrong
// credentials are refused.
func TestTokenCommand(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	created := createAgent(t, in, "tok-bot")
	run := func(env map[string]string, args ...string) (string, error) {
		var out bytes.Buffer
		err := cli.Run(t.Context(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard,
			Getenv: func(k string) string {
				if k == "WARDEN_ADDR" {
					return in.url
				}
				return env[k]
			}})
		return out.String(), err
	}
	out, err := run(map[string]string{"WARDEN_CLIENT_SECRET": created.ClientSecret}, "token", "--agent-id", created.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	r := in.do("GET", "/v1/agent/self", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(out)}, "")
	if r.status != 200 || !strings.Contains(string(r.body), "tok-bot") {
		t.Fatalf("the printed token: %d %s", r.status, r.body)
	}
	creds := writeFile(t, t.TempDir(), "creds.json", `{"client_id":"`+created.ClientID+`","client_secret":"`+created.ClientSecret+`"}`)
	out, err = run(nil, "token", "--credentials", creds, "--json")
	if err != nil || !strings.Contains(out, `"access_token"`) || !strings.Contains(out, `"expires_in"`) {
		t.Fatalf("token --json: %v %s", err, out)
	}
	_, err = run(map[string]string{"WARDEN_CLIENT_ID": created.ClientID, "WARDEN_CLIENT_SECRET": "wrong"}, "token")
	if cli.ExitCode(err) != cli.ExitUnauthorized {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestPeopleCLIBreakGlass: without single sign-on, `warden login` signs the CLI in through the
// break-glass form of /login with an admin token; the session has the token's role.
func TestPeopleCLIBreakGlass(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), nil)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	b := oidctest.Browser(t)
	env := cli.Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard,
		Getenv: func(k string) string {
			if k == "WARDEN_CONFIG" {
				return cfgPath
			}
			return ""
		},
		OpenURL: func(ctx context.Context, u string) error {
			resp, err := b.Get(u)
			if err != nil {
				return err
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			query := regexp.MustCompile(`name="query" value="([^"]*)"`).FindStringSubmatch(string(page))
			if query == nil || strings.Contains(string(page), "Sign in with") {
				t.Errorf("the sign-in page without single sign-on: %s", page)
				return errors.New("no break-glass form")
			}
			resp, err = b.PostForm(in.url+"/login/admin-token", url.Values{"token": {in.admin}, "query": {html.UnescapeString(query[1])}})
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cli.Run(ctx, []string{"login", "--server", in.url, "--profile", "glass"}, env); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	env.Stdout = &out
	if err := cli.Run(ctx, []string{"whoami"}, env); err != nil || !strings.Contains(out.String(), "profile:  glass") || !strings.Contains(out.String(), "role:     admin") {
		t.Fatalf("whoami: %v\n%s", err, out.String())
	}
	if !hasEvent(in.events("type=person.sign_in"), warden.EventPersonSignIn, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "admin" && ev.Target.Action == "admin_token" && ev.Target.Resource == "cli"
	}) {
		t.Error("the break-glass CLI sign-in is not on record")
	}
}

// TestPeopleDeviceRefused: a device code refused in the browser gives the CLI no session, the
// refusal is on record, and a user code is used once.
func TestPeopleDeviceRefused(t *testing.T) {
	t.Parallel()
	env := newPeopleEnv(t, nil)
	in := env.in
	r := in.do("POST", "/login/device/code", map[string]string{"Content-Type": "application/json"}, `{}`)
	dc := r.json(t)
	deviceCode, userCode := dc["device_code"].(string), dc["user_code"].(string)
	poll := func() response {
		return in.do("POST", "/login/device/token", map[string]string{"Content-Type": "application/json"}, `{"device_code":"`+deviceCode+`"}`)
	}
	if r := poll(); r.status != 200 || r.json(t)["status"] != "pending" {
		t.Fatalf("poll before the person acted: %d %s", r.status, r.body)
	}
	browser, _, _ := env.browserSignIn(t, "dave")
	confirm := func(decision string) int {
		resp, err := browser.PostForm(in.url+"/login/device", url.Values{"user_code": {strings.ToLower(userCode)}, "decision": {decision}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := confirm("deny"); status != 200 {
		t.Fatalf("refusing: %d", status)
	}
	if status := confirm("approve"); status != http.StatusNotFound {
		t.Fatalf("the user code a second time: %d", status)
	}
	if r := poll(); r.status != http.StatusForbidden {
		t.Fatalf("poll after the refusal: %d %s", r.status, r.body)
	}
	if r := poll(); r.status != http.StatusNotFound {
		t.Fatalf("poll after the refusal was told: %d %s", r.status, r.body)
	}
	if !hasEvent(in.events("type=person.sign_in_refused"), warden.EventPersonSignInRefused, func(ev *warden.AuditEvent) bool {
		return ev.Actor.Name == "dave@example.com" && ev.Target.Action == "device"
	}) {
		t.Error("the refused device code is not on record")
	}
}

// TestPeopleLoginWithoutBrowser: on a machine with no browser to open (no DISPLAY, no
// WAYLAND_DISPLAY, as over SSH) warden login signs in with the device flow by itself, rather
// than waiting for a browser that never comes (fails when the loopback flow is tried anyway).
func TestPeopleLoginWithoutBrowser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the no-browser rule under test is Linux's (DISPLAY, WAYLAND_DISPLAY)")
	}
	t.Parallel()
	env := newPeopleEnv(t, nil)
	cfgPath := filepath.Join(t.TempDir(), "warden", "config.yaml")
	out := &lineWriter{line: make(chan struct{}, 16)}
	var errs bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"login", "--server", env.in.url}, cli.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: &errs,
			Getenv: func(k string) string {
				if k == "WARDEN_CONFIG" {
					return cfgPath
				}
				return ""
			}})
	}()
	defer func() { cancel(); <-done }()
	for !strings.Contains(out.String(), "confirm the code") {
		select {
		case <-out.line:
		case err := <-done:
			t.Fatalf("login ended without offering a code: %v\n%s", err, out.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("login offered no code without a browser:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), env.in.url+"/login/device") {
		t.Fatalf("the code's page is not warden's: %s", out.String())
	}
}
