// Package console is warden's web console at /ui/: server-rendered pages over the same services
// as the admin API (agents, kill switch, approvals, audit, detection, tools), behind people's
// browser sign-in, with a CSRF token on every form, a strict CSP and role checks on the server.
package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/detect"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/killswitch"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every /ui response: no inline script or style anywhere.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// DefaultIdle is how long a console session may sit unused before it is signed out.
const DefaultIdle = 30 * time.Minute

// Cookie and form names.
const (
	seenCookie = "warden_ui_seen" // the last activity of this browser's session, signed
	csrfField  = "csrf"
	maxForm    = 64 << 10
)

// People is the part of people's sign-in (people.Service) the console uses.
type People interface {
	BrowserSession(r *http.Request) (*warden.PersonSession, error)
	EndBrowserSession(w http.ResponseWriter, r *http.Request) error
	SingleSignOn() (issuer string, ok bool)
	BreakGlass() bool
}

// Store is what the console reads of the store directly: the audit log's search.
type Store interface {
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
	CountAuditEvents(ctx context.Context, f warden.AuditFilter, upTo int64) (int64, error)
}

// Options are what a Console is made of. Approvals, Detect and Audit may be nil: their pages
// then say so.
type Options struct {
	People    People
	Admin     *admin.Service
	Kill      *killswitch.Service
	Approvals *approval.Service
	Detect    *detect.Service
	Store     Store
	Audit     httpapi.AuditService
	AuditLog  warden.AuditLog // where refusals (admin.denied) are recorded
	// Verifier verifies the audit log on a person's demand (nil: the audit page cannot).
	Verifier Verifier
	// Key authenticates CSRF tokens and the activity cookie; the same on every replica.
	Key   []byte
	Clock clock.Clock
	Log   *slog.Logger
	// Idle signs a session out after this long without a page or form (DefaultIdle when 0).
	Idle time.Duration
	// Secure marks the activity cookie Secure (warden's public URL is https).
	Secure bool
}

// Console serves /ui/.
type Console struct {
	opt    Options
	pages  map[string]*template.Template
	verify *verifications
	hub    *httpapi.AuditHub // the live streams' one reader of the log; nil without Audit
}

// New returns a Console.
func New(opt Options) (*Console, error) {
	if len(opt.Key) < 32 {
		return nil, errors.New("console: a key of at least 32 bytes is required")
	}
	if opt.Idle == 0 {
		opt.Idle = DefaultIdle
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	opt.Clock = clock.Or(opt.Clock)
	c := &Console{opt: opt, pages: map[string]*template.Template{}, verify: newVerifications()}
	if opt.Audit != nil {
		c.hub = httpapi.NewAuditHub(opt.Audit, opt.Store, httpapi.HubOptions{Clock: opt.Clock, Log: opt.Log})
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(c.funcs()).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[name] = t
	}
	return c, nil
}

// Roles of the console's pages and forms: those of their API twins (internal/httpapi).
var (
	readers   = warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	operators = warden.RoleSet{warden.RoleOperator}
	deciders  = warden.RoleSet{warden.RoleApprover, warden.RoleOperator}
	admins    = warden.RoleSet{}
	everyone  = warden.RoleSet(warden.Roles)
)

// Handler returns the console's routes, all under /ui/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui/login", c.login)
	mux.Handle("POST /ui/logout", c.form(everyone, c.logout))
	mux.Handle("GET /ui/{$}", c.page(everyone, c.home))
	mux.Handle("GET /ui/overview", c.page(readers, c.overview))
	mux.Handle("GET /ui/stream", c.page(readers, c.stream))
	mux.Handle("GET /ui/agents", c.page(readers, c.agents))
	mux.Handle("GET /ui/agents/{name}", c.page(readers, c.agent))
	mux.Handle("GET /ui/agents/{name}/kill", c.page(operators, c.killConfirm))
	mux.Handle("POST /ui/agents/{name}/kill", c.form(operators, c.kill))
	mux.Handle("POST /ui/agents/{name}/suspend", c.form(operators, c.suspend))
	mux.Handle("POST /ui/agents/{name}/resume", c.form(admins, c.resume))
	mux.Handle("POST /ui/agents/{name}/renew", c.form(admins, c.renew))
	mux.Handle("POST /ui/agents/{name}/rotate-secret", c.form(admins, c.rotate))
	mux.Handle("POST /ui/agents/{name}/restore", c.form(admins, c.restore))
	mux.Handle("GET /ui/approvals", c.page(deciders, c.approvals))
	mux.Handle("POST /ui/approvals/{id}/approve", c.form(deciders, c.approve))
	mux.Handle("POST /ui/approvals/{id}/reject", c.form(deciders, c.reject))
	mux.Handle("GET /ui/audit", c.page(readers, c.auditSearch))
	mux.Handle("GET /ui/audit/{seq}", c.page(readers, c.auditEvent))
	mux.Handle("POST /ui/audit/verify", c.form(readers, c.auditVerify))
	mux.Handle("GET /ui/audit/verify/status", c.page(readers, c.auditVerifyStatus))
	mux.Handle("GET /ui/tools", c.page(readers, c.tools))
	mux.Handle("POST /ui/tools/{name}/enable", c.form(admins, c.toolEnable))
	mux.Handle("POST /ui/tools/{name}/disable", c.form(operators, c.toolDisable))
	mux.Handle("GET /ui/tools/{name}/manifests", c.page(readers, c.manifests))
	mux.Handle("POST /ui/tools/{name}/manifests/accept", c.form(operators, c.acceptManifest))
	mux.Handle("GET /ui/lockdown", c.page(operators, c.lockdownConfirm))
	mux.Handle("POST /ui/lockdown", c.form(operators, c.lockdown))
	mux.Handle("POST /ui/lockdown/lift", c.form(admins, c.lift))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, warden.Errorf(warden.ENotFound, "no page %s %s", r.Method, r.URL.Path))
	})
	return headers(mux)
}

// headers sets the security headers of every /ui response.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// visit is one request of a signed-in person.
type visit struct {
	Person  *warden.Principal
	session *warden.PersonSession
	CSRF    string
	Path    string
}

// Can reports whether the person's role is one of roles: the pages show a button only to whom
// its form would accept.
func (v *visit) Can(what string) bool {
	switch what {
	case "read":
		return readers.Allows(v.Person.Role)
	case "operate":
		return operators.Allows(v.Person.Role)
	case "decide":
		return deciders.Allows(v.Person.Role)
	case "admin":
		return admins.Allows(v.Person.Role)
	}
	return false
}

// polled are the paths a page's script reads on its own: not a person's activity, so they do
// not keep a session from its idle timeout.
var polled = map[string]bool{"/ui/stream": true, "/ui/audit/verify/status": true}

type handler func(w http.ResponseWriter, r *http.Request, v *visit) error

// page serves a GET of a signed-in person of one of roles; anyone else goes to sign in, or is
// refused (403).
func (c *Console) page(roles warden.RoleSet, h handler) http.Handler {
	return c.signedIn(roles, false, h)
}

// form serves a POST of a signed-in person of one of roles that carries the session's CSRF
// token; without it, or with another, it is refused (403) before anything is read or changed.
func (c *Console) form(roles warden.RoleSet, h handler) http.Handler {
	return c.signedIn(roles, true, h)
}

func (c *Console) signedIn(roles warden.RoleSet, post bool, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(admin.WithSource(r.Context(), r.RemoteAddr))
		ps, err := c.opt.People.BrowserSession(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		now := c.opt.Clock.Now()
		if ps != nil && now.Sub(c.lastSeen(r, ps)) > c.opt.Idle {
			// Idle too long: the session ends here, on the server, not just in this browser.
			if err := c.opt.People.EndBrowserSession(w, r); err != nil {
				c.fail(w, r, nil, err)
				return
			}
			ps = nil
			if !post {
				http.Redirect(w, r, "/ui/login?idle=1", http.StatusSeeOther)
				return
			}
		}
		if ps == nil {
			if post {
				c.fail(w, r, nil, warden.Errorf(warden.EForbidden, "you are not signed in: sign in at /ui/login"))
				return
			}
			http.Redirect(w, r, "/ui/login?return_to="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
			return
		}
		v := &visit{Person: ps.Principal(), session: ps, CSRF: c.csrfToken(ps), Path: r.URL.Path}
		if post {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, v, warden.Errorf(warden.EInvalid, "the form cannot be read"))
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get(csrfField)), []byte(v.CSRF)) != 1 {
				c.fail(w, r, v, warden.Errorf(warden.EForbidden, "the form's CSRF token is missing or not this session's: reload the page and try again"))
				return
			}
			// The session cookie is people's, SameSite=Lax (the sign-in and OAuth consent
			// redirects from other sites need it); every change also needs the console's own
			// SameSite=Strict cookie of this session, set by the page the form is on.
			if _, ok := c.seen(r, ps); !ok {
				c.fail(w, r, v, warden.Errorf(warden.EForbidden, "this form was not sent from a console page of this browser's session: reload the page and try again"))
				return
			}
		}
		if !roles.Allows(v.Person.Role) {
			err := warden.Errorf(warden.EForbidden, "%s %s needs role %s; you are %s (%s)", r.Method, r.URL.Path, roles, v.Person.Name, v.Person.Role)
			c.recordDenied(r, v.Person, err)
			c.fail(w, r, v, err)
			return
		}
		if !polled[r.URL.Path] {
			c.touch(w, ps, now)
		}
		if err := h(w, r, v); err != nil {
			c.fail(w, r, v, err)
		}
	})
}

// csrfToken is the session's CSRF token: a MAC of the session's hash, so it is the same on
// every page and replica of the session and worthless with any other.
func (c *Console) csrfToken(ps *warden.PersonSession) string {
	return hex.EncodeToString(c.mac("csrf", ps.Hash))
}

func (c *Console) mac(purpose string, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, c.opt.Key)
	m.Write([]byte("warden console " + purpose))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write(p)
	}
	return m.Sum(nil)
}

// lastSeen is when the session was last used in this browser: the time in the activity cookie
// when its MAC is this session's, else when the session began.
func (c *Console) lastSeen(r *http.Request, ps *warden.PersonSession) time.Time {
	t, _ := c.seen(r, ps)
	return t
}

// seen is lastSeen, and whether the request carries this session's activity cookie: the console's
// own SameSite=Strict cookie, which a request started by another site never carries.
func (c *Console) seen(r *http.Request, ps *warden.PersonSession) (time.Time, bool) {
	seen := ps.CreatedAt
	ck, err := r.Cookie(seenCookie)
	if err != nil {
		return seen, false
	}
	ts, sig, ok := strings.Cut(ck.Value, ".")
	unix, perr := strconv.ParseInt(ts, 10, 64)
	got, derr := base64.RawURLEncoding.DecodeString(sig)
	if !ok || perr != nil || derr != nil || !hmac.Equal(got, c.mac("seen", ps.Hash, []byte(ts))) {
		return seen, false
	}
	if t := time.Unix(unix, 0); t.After(seen) {
		return t, true
	}
	return seen, true
}

// touch records activity: a new activity cookie for the session at now.
func (c *Console) touch(w http.ResponseWriter, ps *warden.PersonSession, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	v := ts + "." + base64.RawURLEncoding.EncodeToString(c.mac("seen", ps.Hash, []byte(ts)))
	http.SetCookie(w, &http.Cookie{Name: seenCookie, Value: v, Path: "/ui/", HttpOnly: true, Secure: c.opt.Secure, SameSite: http.SameSiteStrictMode})
}

// recordDenied records a refusal for the person's role, as the admin API does.
func (c *Console) recordDenied(r *http.Request, p *warden.Principal, err error) {
	ev := &warden.AuditEvent{
		Type:     warden.EventAdminDenied,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Email: p.Email, Source: r.RemoteAddr},
		Target:   warden.EventTarget{Action: r.Method + " " + r.URL.Path},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonRoleRequired, Message: warden.ErrorMessage(err)},
	}
	if err := c.opt.AuditLog.Append(r.Context(), ev); err != nil {
		c.opt.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// view is what every page template gets.
type view struct {
	Title string
	Me    *visit // nil: nobody is signed in
	Flash string
	Error string
	Data  any
}

// render writes a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, d view) {
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	// Rendered whole first: a template that fails is a 500, never half a page.
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil {
		c.opt.Log.Error("console page failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the browser may be gone
}

// fail shows an error page: the safe message, and the cause in the log for a server's fault.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	status := warden.HTTPStatus(err)
	if status >= 500 {
		c.opt.Log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	c.render(w, status, "error", view{Title: http.StatusText(status), Me: v, Error: warden.ErrorMessage(err)})
}

// login is the console's sign-in page: the provider's link when people.oidc is set, and the
// break-glass form, which posts to people's /login/admin-token and comes back to the console.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	returnTo := r.URL.Query().Get("return_to")
	if !strings.HasPrefix(returnTo, "/ui/") || strings.ContainsAny(returnTo, "\\\r\n") || strings.HasPrefix(returnTo, "//") {
		returnTo = "/ui/"
	}
	d := struct {
		Issuer, OIDCURL, Query string
		BreakGlass, Idle       bool
	}{Query: url.Values{"return_to": {returnTo}}.Encode(), BreakGlass: c.opt.People.BreakGlass(), Idle: r.URL.Query().Get("idle") == "1"}
	if issuer, ok := c.opt.People.SingleSignOn(); ok {
		d.Issuer, d.OIDCURL = issuer, "/login/oidc?"+d.Query
	}
	var v *visit
	if ps, err := c.opt.People.BrowserSession(r); err == nil && ps != nil {
		v = &visit{Person: ps.Principal(), session: ps, CSRF: c.csrfToken(ps), Path: r.URL.Path}
	}
	c.render(w, http.StatusOK, "login", view{Title: "Sign in", Me: v, Data: d})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, v *visit) error {
	if err := c.opt.People.EndBrowserSession(w, r); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: seenCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: c.opt.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}

// home sends each person to where their role works: approvers to the queue, others to the
// overview.
func (c *Console) home(w http.ResponseWriter, r *http.Request, v *visit) error {
	to := "/ui/overview"
	if !v.Can("read") {
		to = "/ui/approvals"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.UTC().Format("2006-01-02 15:04:05 UTC")
		},
		"left": func(t time.Time) string {
			d := t.Sub(c.opt.Clock.Now()).Round(time.Second)
			if d <= 0 {
				return "expired"
			}
			return d.String()
		},
	}
}

// flashVerbs are what a "done" message after a form may say.
var flashVerbs = map[string]bool{"suspended": true, "resumed": true, "approved": true, "rejected": true, "enabled": true, "disabled": true, "renewed": true}

var flashName = regexp.MustCompile(`^[a-z0-9_-]{1,80}$`)

// done is the query of the page a form sends the browser back to: what was done to what, and
// how many calls in flight it cancelled (-1: not told).
func done(verb, what string, cancelled int) string {
	q := url.Values{"done": {verb}, "what": {what}}
	if cancelled >= 0 {
		q.Set("cancelled", strconv.Itoa(cancelled))
	}
	return q.Encode()
}

// flash is the message of done's query, built from a fixed verb and a name, so that a link
// cannot make the console say what it never did; "" when the query is not one of done's.
func flash(q url.Values) string {
	verb, what := q.Get("done"), q.Get("what")
	if !flashVerbs[verb] || !flashName.MatchString(what) {
		return ""
	}
	msg := what + " " + verb
	if n, err := strconv.Atoi(q.Get("cancelled")); err == nil && n >= 0 {
		msg += fmt.Sprintf(" (%d calls in flight cancelled)", n)
	}
	return msg + "."
}
