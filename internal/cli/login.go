package cli

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
	"golang.org/x/oauth2"
)

var loginCommands = []command{
	{"login", "--server URL [--profile NAME] [--token-file F] [--device]", "sign in to a warden server and save it as a profile", login},
	{"logout", "[--profile NAME]", "end the profile's session and forget its token", logout},
	{"config use-profile", "NAME", "make a profile the current one", configUseProfile},
	{"config profiles", "", "list the profiles (the current one marked *)", configProfiles},
	{"config current", "", "print the current profile's name", configCurrent},
	{"token", "[--agent-id ID] [--credentials FILE]", "print a fresh access token for an agent from its client credentials", tokenCmd},
}

// loginTimeout bounds how long `warden login` waits for the person in the browser.
const loginTimeout = 10 * time.Minute

func login(ctx context.Context, inv *invocation) error {
	var server, tokenFile string
	var device bool
	inv.fs.StringVar(&server, "server", "", "the warden server's URL, e.g. https://warden.example.com (required)")
	inv.fs.StringVar(&inv.profileName, "profile", "", "the profile to save (default: the server's host name)")
	inv.fs.StringVar(&tokenFile, "token-file", "", "use the admin token in this file (break-glass, automation) instead of signing in")
	inv.fs.BoolVar(&device, "device", false, "sign in with a code in any browser (for a machine without one)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	u, err := url.Parse(server)
	if server == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return usagef("--server must be the server's http(s) URL, e.g. https://warden.example.com")
	}
	server = strings.TrimSuffix(server, "/")
	name := inv.profileName
	if name == "" {
		name = strings.ReplaceAll(u.Hostname(), ":", "-")
	}
	if err := validProfileName(name); err != nil {
		return err
	}
	ps, path, err := inv.loadProfiles()
	if err != nil {
		return err
	}
	pr := &Profile{Server: server}
	c := inv.newClient(server, "")
	c.Token = nil
	c.CredentialHint = "run warden login again"
	switch {
	case tokenFile != "":
		abs, err := filepath.Abs(tokenFile)
		if err != nil {
			return err
		}
		pr.TokenFile = abs
		token, err := pr.credential()
		if err != nil {
			return err
		}
		p, err := inv.newClient(server, token).Whoami(ctx)
		if err != nil {
			return err
		}
		pr.Name, pr.Role = p.Name, string(p.Role)
	default:
		var s *apitype.LoginSession
		if !device && !inv.hasBrowser() {
			fmt.Fprintln(inv.env.Stderr, "No browser here (no DISPLAY or WAYLAND_DISPLAY, or no xdg-open): signing in with a code instead (--device).")
			device = true
		}
		if device {
			s, err = inv.deviceLogin(ctx, c)
		} else {
			s, err = inv.browserLogin(ctx, c, server)
		}
		if err != nil {
			return err
		}
		pr.Token, pr.Name, pr.Role, pr.ExpiresAt = s.Token, s.Name, s.Role, s.ExpiresAt
	}
	ps.Profiles[name] = pr
	ps.Current = name
	if err := saveProfiles(path, ps); err != nil {
		return err
	}
	fmt.Fprintf(inv.env.Stdout, "Signed in to %s as %s (%s); profile %q is current.\n", server, pr.Name, pr.Role, name)
	return nil
}

// browserLogin is the loopback flow: warden's /login in the browser, which comes back to a
// listener on 127.0.0.1 with a one-time code, exchanged with the PKCE verifier for a session.
func (inv *invocation) browserLogin(ctx context.Context, c *apiclient.Client, server string) (*apitype.LoginSession, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the browser's answer: %w", err)
	}
	defer ln.Close()
	state, verifier := randomToken(), randomToken()
	challenge := oauth2.S256ChallengeFromVerifier(verifier)
	redirect := "http://" + ln.Addr().String() + "/callback"
	start := server + "/login?" + url.Values{"cli": {redirect}, "cli_state": {state}, "code_challenge": {challenge}}.Encode()

	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	type answer struct{ code, err string }
	answers := make(chan answer, 1)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "not the sign-in this warden login started", http.StatusBadRequest)
			return
		}
		a := answer{code: q.Get("code"), err: q.Get("error")}
		msg := "Signed in: return to the terminal."
		if a.err != "" || a.code == "" {
			msg = "The sign-in was refused: see the terminal."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>warden login</title><p>%s</p>", html.EscapeString(msg))
		select {
		case answers <- a:
		default:
		}
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()

	fmt.Fprintf(inv.env.Stderr, "Opening your browser to sign in. If it does not open, visit:\n  %s\n", start)
	opened := make(chan error, 1)
	go func() { opened <- inv.openURL(ctx, start) }()
	var a answer
	select {
	case a = <-answers:
	case <-ctx.Done():
		return nil, warden.Errorf(warden.EUnavailable, "no sign-in within %s: run warden login again (or --device)", loginTimeout)
	}
	if err := <-opened; err != nil {
		fmt.Fprintf(inv.env.Stderr, "(the browser could not be opened: %v)\n", err)
	}
	if a.err != "" || a.code == "" {
		return nil, warden.Errorf(warden.EForbidden, "the sign-in was refused (%.60s): see the browser, or ask an admin about your role", a.err)
	}
	return c.LoginWithCode(ctx, apitype.LoginCodeRequest{Code: a.code, CodeVerifier: verifier})
}

// deviceLogin is the device flow: the person confirms a code in any browser; the CLI asks
// until they did.
func (inv *invocation) deviceLogin(ctx context.Context, c *apiclient.Client) (*apitype.LoginSession, error) {
	dc, err := c.StartDeviceLogin(ctx)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(inv.env.Stdout, "To sign in, open %s in a browser and confirm the code %s\n  (or open %s)\n", dc.VerificationURI, dc.UserCode, dc.VerificationURIComplete)
	interval := time.Duration(max(dc.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(dc.ExpiresIn) * time.Second)
	for time.Now().Before(deadline) {
		t, err := c.PollDeviceLogin(ctx, dc.DeviceCode)
		if err != nil {
			return nil, err
		}
		if t.Status == "approved" && t.Session != nil {
			return t.Session, nil
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
	return nil, warden.Errorf(warden.EUnavailable, "the code was not confirmed in time: run warden login --device again")
}

// hasBrowser reports whether openURL can show a page to the person: an opener given by the
// environment, macOS, or a Linux desktop session with xdg-open. A server over SSH has none, and
// warden login then uses the device flow.
func (inv *invocation) hasBrowser() bool {
	switch {
	case inv.env.OpenURL != nil, runtime.GOOS == "darwin":
		return true
	case runtime.GOOS == "windows":
		return false
	}
	if inv.getenv("DISPLAY") == "" && inv.getenv("WAYLAND_DISPLAY") == "" {
		return false
	}
	_, err := exec.LookPath("xdg-open")
	return err == nil
}

// openURL opens u in the person's browser.
func (inv *invocation) openURL(ctx context.Context, u string) error {
	if inv.env.OpenURL != nil {
		return inv.env.OpenURL(ctx, u)
	}
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		return errors.New("open the address above yourself")
	}
	return exec.CommandContext(ctx, name, u).Run()
}

func logout(ctx context.Context, inv *invocation) error {
	inv.fs.StringVar(&inv.profileName, "profile", "", "the profile (default: the current one)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	ps, path, err := inv.loadProfiles()
	if err != nil {
		return err
	}
	name := inv.profileName
	if name == "" {
		name = ps.Current
	}
	pr := ps.Profiles[name]
	if pr == nil {
		return warden.Errorf(warden.ENotFound, "no profile to sign out of: see warden config profiles")
	}
	var ended error
	if pr.Token != "" {
		ended = inv.newClient(pr.Server, pr.Token).Logout(ctx)
	}
	pr.Token, pr.TokenFile, pr.ExpiresAt = "", "", time.Time{}
	if err := saveProfiles(path, ps); err != nil {
		return err
	}
	if ended != nil && warden.ErrorCode(ended) != warden.EUnauthenticated {
		return fmt.Errorf("the token is forgotten here, but the server could not end the session: %w", ended)
	}
	fmt.Fprintf(inv.env.Stdout, "Signed out of %s (profile %q).\n", pr.Server, name)
	return nil
}

func tokenCmd(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var agentID, credFile string
	inv.fs.StringVar(&agentID, "agent-id", "", "the agent's client id (default WARDEN_CLIENT_ID); the secret is WARDEN_CLIENT_SECRET")
	inv.fs.StringVar(&credFile, "credentials", "", "JSON file with client_id and client_secret")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if agentID != "" && credFile == "" && inv.getenv("WARDEN_CLIENT_ID") == "" {
		inv.env.Getenv = withEnv(inv.env.Getenv, "WARDEN_CLIENT_ID", agentID)
	}
	creds, err := inv.agentCredentials(credFile)
	if err != nil {
		return err
	}
	if agentID != "" && creds.ClientID != agentID {
		return usagef("--agent-id %s is not the credentials' client id", agentID)
	}
	c := inv.newClient(inv.serverAddr(), "")
	c.Token = nil
	c.CredentialHint = "check the agent's client id and secret"
	tok, err := c.ClientCredentialsToken(ctx, creds.ClientID, creds.ClientSecret, "")
	if err != nil {
		return err
	}
	return inv.print(tok, func(w io.Writer) { fmt.Fprintln(w, tok.AccessToken) })
}

// withEnv is getenv with name set to value.
func withEnv(getenv func(string) string, name, value string) func(string) string {
	return func(k string) string {
		if k == name {
			return value
		}
		if getenv == nil {
			return ""
		}
		return getenv(k)
	}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
