package people

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// loginFlow is what an OIDC sign-in in progress keeps between /login/oidc and the callback.
type loginFlow struct {
	Nonce    string   `json:"nonce"`
	Verifier string   `json:"verifier"`
	ReturnTo string   `json:"return_to"`
	CLI      *cliFlow `json:"cli,omitempty"`
}

// cliFlow is the loopback flow of `warden login`: where the CLI listens, its state, and the
// PKCE challenge its verifier must meet to exchange the code.
type cliFlow struct {
	Redirect  string `json:"redirect"`
	State     string `json:"state"`
	Challenge string `json:"challenge"`
}

// signedIn is a person the provider (or an admin token) vouched for, kept in a step until the CLI
// collects the session.
type signedIn struct {
	Person    warden.Principal `json:"person"`
	Via       string           `json:"via"`
	Challenge string           `json:"challenge,omitempty"`
}

// Where people sign in from.
const (
	viaOIDC       = "oidc"
	viaAdminToken = "admin_token"
	viaDevice     = "device"
)

// LocalPath returns p when it is a path on warden (no scheme, host or "//"), else "/login": a
// sign-in never sends the browser elsewhere.
func LocalPath(p string) string {
	if p == "" || len(p) > 1024 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return "/login"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "/login"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "/login"
		}
	}
	return p
}

// parseCLI reads the loopback flow's parameters of a /login request; nil when there are none.
func parseCLI(q url.Values) (*cliFlow, error) {
	redirect, state, challenge := q.Get("cli"), q.Get("cli_state"), q.Get("code_challenge")
	if redirect == "" && state == "" && challenge == "" {
		return nil, nil
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() == "" ||
		(u.Hostname() != "127.0.0.1" && u.Hostname() != "::1") {
		return nil, warden.Errorf(warden.EInvalid, "cli must be a loopback address such as http://127.0.0.1:PORT/callback")
	}
	if !token64(state, 16, 128) {
		return nil, warden.Errorf(warden.EInvalid, "cli_state must be 16 to 128 characters of base64url")
	}
	if !token64(challenge, 43, 43) {
		return nil, warden.Errorf(warden.EInvalid, "code_challenge must be a PKCE S256 challenge (43 characters of base64url)")
	}
	return &cliFlow{Redirect: redirect, State: state, Challenge: challenge}, nil
}

// token64 reports whether s is min to max characters of the base64url alphabet.
func token64(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>warden: {{.Title}}</title></head>
<body><h1>{{.Title}}</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
{{if .Person}}<p>Signed in as {{.Person.Name}} ({{.Person.Role}}).</p>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>{{end}}
{{if .OIDCURL}}<p><a href="{{.OIDCURL}}">Sign in with {{.Issuer}}</a></p>{{end}}
{{if .BreakGlass}}<form method="post" action="/login/admin-token">
<p>Break-glass: sign in with an admin token</p>
<input type="password" name="token" autocomplete="off" aria-label="admin token">
<input type="hidden" name="query" value="{{.Query}}">
<button type="submit">Sign in</button></form>{{end}}
{{if .UserCode}}<form method="post" action="/login/device">
<p>Confirm that the code shown by <code>warden login</code> is:</p>
<input name="user_code" value="{{.UserCode}}" aria-label="code">
<button type="submit" name="decision" value="approve">Sign in the CLI</button>
<button type="submit" name="decision" value="deny">Refuse</button></form>{{end}}
{{if .Message}}<p>{{.Message}}</p>{{end}}
</body></html>
`))

type pageData struct {
	Title, Error, Message string
	Person                *warden.Principal
	OIDCURL, Issuer       string
	BreakGlass            bool
	Query                 string
	UserCode              string
}

func (s *Service) render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = page.Execute(w, d) // the browser may be gone
}

func (s *Service) renderError(w http.ResponseWriter, err error) {
	status := warden.HTTPStatus(err)
	if status >= 500 {
		s.opt.Log.Error("sign-in failed", "err", err)
	}
	s.render(w, status, pageData{Title: "Sign-in failed", Error: warden.ErrorMessage(err), Message: "Start again at /login."})
}

// LoginPage is GET /login: who is signed in, the provider's sign-in link and the break-glass
// form. return_to, and the CLI's cli, cli_state and code_challenge, pass through.
func (s *Service) LoginPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, err := parseCLI(q); err != nil {
		s.renderError(w, err)
		return
	}
	person, err := s.Person(r)
	if err != nil {
		s.renderError(w, err)
		return
	}
	pass := url.Values{}
	for _, k := range []string{"return_to", "cli", "cli_state", "code_challenge"} {
		if v := q.Get(k); v != "" {
			pass.Set(k, v)
		}
	}
	d := pageData{Title: "Sign in to warden", Person: person, BreakGlass: s.opt.Admin != nil, Query: pass.Encode()}
	if s.opt.OIDC != nil {
		d.OIDCURL, d.Issuer = "/login/oidc?"+pass.Encode(), s.opt.OIDC.Issuer
	}
	s.render(w, http.StatusOK, d)
}

// StartOIDC is GET /login/oidc: a new sign-in at the provider, with PKCE, state (also in a
// cookie of this browser) and nonce.
func (s *Service) StartOIDC(w http.ResponseWriter, r *http.Request) {
	if s.opt.OIDC == nil {
		s.renderError(w, warden.Errorf(warden.ENotFound, "single sign-on is not configured (people.oidc): use an admin token"))
		return
	}
	q := r.URL.Query()
	cli, err := parseCLI(q)
	if err != nil {
		s.renderError(w, err)
		return
	}
	p, err := s.provider(r.Context())
	if err != nil {
		s.renderError(w, err)
		return
	}
	state, nonce, verifier := randomString(32), randomString(32), oauth2.GenerateVerifier()
	f := loginFlow{Nonce: nonce, Verifier: verifier, ReturnTo: LocalPath(q.Get("return_to")), CLI: cli}
	if err := s.createFlow(r.Context(), flowOIDC, state, loginTTL, f); err != nil {
		s.renderError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: state, Path: "/login", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	to := s.oauth2Config(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, to, http.StatusFound)
}

// Callback is GET /login/callback: the provider's answer. The state must be this browser's,
// the code is exchanged with the PKCE verifier, the ID token verified (signature, issuer,
// audience, expiry, nonce) and mapped to a person and role.
func (s *Service) Callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	c, err := r.Cookie(loginCookie)
	if s.opt.OIDC == nil || state == "" || len(state) > 128 || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		s.refuse(w, r, nil, "the sign-in's state does not match this browser's: start again")
		return
	}
	var f loginFlow
	if err := s.takeFlow(ctx, flowOIDC, state, &f); err != nil {
		if warden.ErrorCode(err) == warden.ENotFound {
			s.refuse(w, r, nil, "the sign-in expired or was already used: start again")
			return
		}
		s.renderError(w, err)
		return
	}
	person, err := s.exchange(ctx, q, &f)
	if err != nil {
		if warden.ErrorCode(err) == warden.EUnavailable {
			s.renderError(w, err)
			return
		}
		s.refuse(w, r, f.CLI, warden.ErrorMessage(err))
		return
	}
	if f.CLI != nil {
		// The CLI collects the session with the code and its PKCE verifier; the session token
		// never travels in a URL.
		code := randomString(32)
		if err := s.createFlow(ctx, flowCLICode, code, codeTTL, signedIn{Person: *person, Via: viaOIDC, Challenge: f.CLI.Challenge}); err != nil {
			s.renderError(w, err)
			return
		}
		http.Redirect(w, r, f.CLI.Redirect+"?"+url.Values{"code": {code}, "state": {f.CLI.State}}.Encode(), http.StatusFound)
		return
	}
	s.startBrowserSession(w, r, person, viaOIDC, f.ReturnTo)
}

// exchange turns the provider's answer into a person, or says why not.
func (s *Service) exchange(ctx context.Context, q url.Values, f *loginFlow) (*warden.Principal, error) {
	if e := q.Get("error"); e != "" {
		return nil, warden.Errorf(warden.EForbidden, "the provider refused the sign-in: %.100s", e)
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		return nil, warden.Errorf(warden.EInvalid, "the provider's answer has no code")
	}
	p, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, s.opt.HTTPClient)
	tok, err := s.oauth2Config(p).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.opt.Log.Warn("OIDC code exchange failed", "err", err)
		return nil, warden.Errorf(warden.EForbidden, "the provider did not accept the sign-in's code")
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, warden.Errorf(warden.EForbidden, "the provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: s.opt.OIDC.ClientID, Now: s.opt.Clock.Now}).Verify(ctx, raw)
	if err != nil {
		s.opt.Log.Warn("ID token refused", "err", err)
		return nil, warden.Errorf(warden.EForbidden, "the provider's ID token is not valid for warden")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, warden.Errorf(warden.EForbidden, "the ID token's nonce is not this sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, warden.Errorf(warden.EForbidden, "the ID token's claims cannot be read")
	}
	return s.opt.OIDC.personFromClaims(claims)
}

// refuse records a refused sign-in and tells the browser, or the waiting CLI, why.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, cli *cliFlow, why string) {
	if err := s.record(r.Context(), r, warden.EventPersonSignInRefused, nil, viaOIDC, "", why); err != nil {
		s.renderError(w, err)
		return
	}
	if cli != nil {
		http.Redirect(w, r, cli.Redirect+"?"+url.Values{"error": {"access_denied"}, "state": {cli.State}}.Encode(), http.StatusFound)
		return
	}
	s.render(w, http.StatusForbidden, pageData{Title: "Sign-in refused", Error: why, Message: "Start again at /login."})
}

// startBrowserSession records the sign-in, then sets the session cookie and goes to returnTo.
func (s *Service) startBrowserSession(w http.ResponseWriter, r *http.Request, p *warden.Principal, via, returnTo string) {
	token, ps, err := s.newSession(r.Context(), p, warden.SessionBrowser, via)
	if err != nil {
		s.renderError(w, err)
		return
	}
	if err := s.record(r.Context(), r, warden.EventPersonSignIn, p, via, warden.SessionBrowser, ""); err != nil {
		_ = s.opt.Store.RevokePersonSession(r.Context(), ps.Hash, s.opt.Clock.Now())
		s.renderError(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", Expires: ps.ExpiresAt,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, LocalPath(returnTo), http.StatusSeeOther)
}

// AdminTokenSignIn is POST /login/admin-token: break-glass sign-in with an admin token, into
// this browser, or for the CLI of the loopback flow.
func (s *Service) AdminTokenSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, warden.Errorf(warden.EInvalid, "the form cannot be read"))
		return
	}
	q, err := url.ParseQuery(r.PostForm.Get("query"))
	if err != nil {
		s.renderError(w, warden.Errorf(warden.EInvalid, "the form cannot be read"))
		return
	}
	cli, err := parseCLI(q)
	if err != nil || s.opt.Admin == nil {
		s.renderError(w, warden.Errorf(warden.EInvalid, "the form cannot be read"))
		return
	}
	p, err := s.opt.Admin.Authenticate(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	if err != nil {
		if rerr := s.record(r.Context(), r, warden.EventPersonSignInRefused, nil, viaAdminToken, "", warden.ErrorMessage(err)); rerr != nil {
			s.renderError(w, rerr)
			return
		}
		s.render(w, http.StatusUnauthorized, pageData{Title: "Sign-in refused", Error: warden.ErrorMessage(err), Message: "Start again at /login."})
		return
	}
	if cli != nil {
		code := randomString(32)
		if err := s.createFlow(r.Context(), flowCLICode, code, codeTTL, signedIn{Person: *p, Via: viaAdminToken, Challenge: cli.Challenge}); err != nil {
			s.renderError(w, err)
			return
		}
		http.Redirect(w, r, cli.Redirect+"?"+url.Values{"code": {code}, "state": {cli.State}}.Encode(), http.StatusSeeOther)
		return
	}
	s.startBrowserSession(w, r, p, viaAdminToken, q.Get("return_to"))
}

// Logout is POST /logout: ends the session of the cookie (a browser) or of the bearer token
// (the CLI).
func (s *Service) Logout(w http.ResponseWriter, r *http.Request) {
	if token := bearer(r); token != "" {
		if err := s.logout(r.Context(), r, token); err != nil {
			var body apitype.ErrorBody
			body.Error.Code, body.Error.Message = warden.ErrorCode(err), warden.ErrorMessage(err)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(warden.HTTPStatus(err))
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := s.EndBrowserSession(w, r); err != nil {
		s.renderError(w, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}
