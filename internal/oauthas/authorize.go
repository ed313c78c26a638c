package oauthas

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

const (
	csrfCookie   = "warden_oauth_csrf"
	maxFormBody  = 16 << 10
	consentField = "consent"
	csrfField    = "csrf"
)

// consentState is what a consent page carries, authenticated with Config.Key: the request
// and who was asked, until when. The agents offered are read again when the answer comes.
type consentState struct {
	Req     authRequest `json:"q"`
	Person  string      `json:"p"`
	Expires int64       `json:"e"`
}

// Authorize serves GET and POST /oauth2/authorize: it validates the request, sends a person who
// is not signed in to sign in, and shows the consent page.
func (s *Server) Authorize(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w, "")
	if !s.Enabled() {
		s.page(w, http.StatusNotFound, "Sign-in is not configured", "This warden has no sign-in for people, so it cannot authorize interactive clients. Machine agents use client credentials.", nil)
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		if r.URL.RawQuery != "" {
			s.page(w, http.StatusBadRequest, "Invalid request", "send the parameters in the URL or the body, not both", nil)
			return
		}
		form, err := readForm(w, r)
		if err != nil {
			s.page(w, http.StatusBadRequest, "Invalid request", err.Error(), nil)
			return
		}
		q = form
	}
	req, client, err := parseAuthorize(q, s.lookupClient(r.Context()), s.validResource, s.defaultResource())
	var pe *pageError
	var re *redirectError
	switch {
	case errors.As(err, &pe):
		s.page(w, http.StatusBadRequest, "Invalid authorization request", pe.msg, nil)
		return
	case errors.As(err, &re):
		s.deny(w, r, req, nil, re.code, re.description)
		return
	}
	person, err := s.People.Person(r)
	if err != nil {
		s.Log.Error("sign-in check failed", "err", err)
		s.page(w, http.StatusServiceUnavailable, "Sign-in unavailable", "Try again later.", nil)
		return
	}
	if person == nil {
		// A path on warden, not a URL: sign-in comes back only to warden's own paths.
		back := AuthorizePath + "?" + q.Encode()
		http.Redirect(w, r, s.People.SignInURL(back), http.StatusFound)
		return
	}
	if person.Email == "" {
		// The token names the person by email: without one the agent would act for nobody.
		s.deny(w, r, req, person, "access_denied", "the signed-in person has no verified email")
		return
	}
	agents, err := s.agentsFor(r.Context(), person)
	if err != nil {
		s.Log.Error("listing agents failed", "err", err)
		s.page(w, http.StatusServiceUnavailable, "Unavailable", "Try again later.", nil)
		return
	}
	if len(agents) == 0 {
		s.deny(w, r, req, person, "access_denied", "the signed-in person may use no active agent")
		return
	}
	nonce := csrfNonce(w, r, strings.HasPrefix(s.cfg.Issuer, "https://"))
	state := s.seal(consentState{Req: *req, Person: person.Email, Expires: s.now().Add(s.cfg.ConsentTTL).Unix()})
	redirect, _ := url.Parse(req.RedirectURI)
	secureHeaders(w, formTarget(redirect))
	s.page(w, http.StatusOK, "Authorize "+client.Name, "", &consentView{
		Client:       client.Name,
		ClientID:     client.ID,
		RedirectHost: redirectHost(redirect),
		Resource:     req.Resource,
		Scope:        req.Scope,
		Person:       person.Email,
		Agents:       agents,
		Action:       s.cfg.Issuer + ConsentPath,
		State:        state,
		CSRF:         s.csrf(nonce, state),
	})
}

// Consent serves POST /oauth2/consent: the person's answer. A valid approval issues a code to
// the client's redirect URI; a denial sends access_denied there.
func (s *Server) Consent(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w, "")
	if !s.Enabled() {
		s.page(w, http.StatusNotFound, "Sign-in is not configured", "", nil)
		return
	}
	form, err := readForm(w, r)
	if err != nil || r.URL.RawQuery != "" {
		s.page(w, http.StatusBadRequest, "Invalid request", "malformed consent form", nil)
		return
	}
	cookie, cerr := r.Cookie(csrfCookie)
	stateText := form.Get(consentField)
	if cerr != nil || !hmac.Equal([]byte(form.Get(csrfField)), []byte(s.csrf(cookie.Value, stateText))) {
		s.page(w, http.StatusForbidden, "Expired or forged form", "Start again from your client.", nil)
		return
	}
	st, ok := s.open(stateText)
	if !ok || s.now().Unix() > st.Expires {
		s.page(w, http.StatusBadRequest, "Expired form", "Start again from your client.", nil)
		return
	}
	person, err := s.People.Person(r)
	if err != nil || person == nil || person.Email != st.Person {
		s.page(w, http.StatusForbidden, "Not signed in as the person asked", "Start again from your client.", nil)
		return
	}
	req := &st.Req
	if form.Get("decision") != "approve" {
		s.deny(w, r, req, person, "access_denied", "the person denied the request")
		return
	}
	agentID := form.Get("agent")
	a, err := s.Store.AgentByID(r.Context(), agentID)
	if err != nil || !mayUse(person, a) || !a.CanAct(s.now()) {
		if err != nil && warden.ErrorCode(err) != warden.ENotFound {
			s.Log.Error("reading agent failed", "err", err)
			s.page(w, http.StatusServiceUnavailable, "Unavailable", "Try again later.", nil)
			return
		}
		// A decision like any other: on record, with who asked for which agent.
		_ = s.appendAudit(r.Context(), s.Audit, &warden.AuditEvent{
			Type:     warden.EventOAuthDeny,
			Actor:    humanActor(r, person),
			Target:   warden.EventTarget{Resource: req.Resource, Action: "client:" + req.ClientID},
			Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: "access_denied", Message: fmt.Sprintf("the person may not have a client act as agent %.64q", agentID)},
		})
		s.page(w, http.StatusForbidden, "Agent not available", "You may not have a client act as this agent.", nil)
		return
	}
	code, hash := secret()
	ac := &warden.AuthorizationCode{
		Hash: hash, ClientID: req.ClientID, RedirectURI: req.RedirectURI, AgentID: a.ID, Person: person.Email,
		Role: person.Role, Epoch: a.Epoch, Resource: req.Resource, Scope: req.Scope, CodeChallenge: req.Challenge,
		ExpiresAt: s.now().Add(s.cfg.CodeTTL),
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventOAuthGrant,
		Actor:    humanActor(r, person),
		Target:   warden.EventTarget{Resource: req.Resource, Action: "client:" + req.ClientID, Tool: ""},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: "client " + req.ClientID + " may act as agent " + a.ID + " (" + a.Name + ") for " + person.Email},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	// Fail closed: a grant that is not on record is not given.
	if err := s.appendAudit(r.Context(), nil, ev); err != nil {
		s.page(w, http.StatusServiceUnavailable, "Unavailable", "The audit log is unavailable; try again later.", nil)
		return
	}
	if err := s.Store.CreateAuthorizationCode(r.Context(), ac); err != nil {
		s.Log.Error("storing code failed", "err", err)
		s.page(w, http.StatusServiceUnavailable, "Unavailable", "Try again later.", nil)
		return
	}
	s.redirect(w, r, req, url.Values{"code": {code}})
}

// deny sends an error to the client's validated redirect URI, and records it.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, req *authRequest, person *warden.Principal, code, description string) {
	ev := &warden.AuditEvent{
		Type:     warden.EventOAuthDeny,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Source: r.RemoteAddr},
		Target:   warden.EventTarget{Resource: req.Resource, Action: "client:" + req.ClientID},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: code, Message: description},
	}
	log := s.refusals()
	if person != nil {
		ev.Actor = humanActor(r, person)
		log = s.Audit
	}
	_ = s.appendAudit(r.Context(), log, ev)
	s.redirect(w, r, req, url.Values{"error": {code}, "error_description": {description}})
}

// redirect sends the browser to the client with params, state and iss (RFC 9207).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values) {
	u, err := url.Parse(req.RedirectURI)
	if err != nil {
		s.page(w, http.StatusBadRequest, "Invalid redirect URI", "", nil)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func (s *Server) lookupClient(ctx context.Context) func(string) *warden.OAuthClient {
	return func(id string) *warden.OAuthClient {
		if isMetadataURL(id) {
			c, err := s.metadataClient(ctx, id)
			if err != nil {
				s.Log.Info("client metadata document refused", "client_id", safe(id), "err", err)
				return nil
			}
			return c
		}
		c, err := s.Store.OAuthClient(ctx, id)
		if err != nil {
			if warden.ErrorCode(err) != warden.ENotFound {
				s.Log.Error("reading client failed", "err", err)
			}
			return nil
		}
		return c
	}
}

// agentsFor lists the active agents person may have a client act as.
func (s *Server) agentsFor(ctx context.Context, person *warden.Principal) ([]*warden.Agent, error) {
	all, err := s.Store.Agents(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return slices.DeleteFunc(all, func(a *warden.Agent) bool { return !mayUse(person, a) || !a.CanAct(now) }), nil
}

func humanActor(r *http.Request, p *warden.Principal) warden.EventActor {
	return warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Email: p.Email, Source: r.RemoteAddr}
}

func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return nil, errors.New("content type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return nil, errors.New("malformed or too large form")
	}
	return r.PostForm, nil
}

// csrfNonce returns the browser's consent nonce, setting a new one when it has none: the
// consent form's CSRF token is bound to it, so only this browser can answer the form.
func csrfNonce(w http.ResponseWriter, r *http.Request, secure bool) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	var b [32]byte
	rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: v, Path: "/oauth2/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	return v
}

func (s *Server) mac(domain string, parts ...string) []byte {
	m := hmac.New(sha256.New, s.cfg.Key)
	m.Write([]byte(domain))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func (s *Server) csrf(nonce, state string) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("warden oauth csrf v1", nonce, state))
}

func (s *Server) seal(st consentState) string {
	b, _ := json.Marshal(st)
	body := base64.RawURLEncoding.EncodeToString(b)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac("warden oauth consent v1", body))
}

func (s *Server) open(text string) (*consentState, bool) {
	body, tag, ok := strings.Cut(text, ".")
	if !ok || len(text) > maxFormBody {
		return nil, false
	}
	want := base64.RawURLEncoding.EncodeToString(s.mac("warden oauth consent v1", body))
	if !hmac.Equal([]byte(tag), []byte(want)) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	var st consentState
	if json.Unmarshal(b, &st) != nil {
		return nil, false
	}
	return &st, true
}

// secureHeaders: no script at all, no framing, forms only to warden (and, after a consent, the
// client's redirect URI, since browsers hold a form's redirects to form-action too).
func secureHeaders(w http.ResponseWriter, extraFormTarget string) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self'"+extraFormTarget+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func formTarget(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return " " + u.Scheme + "://" + u.Host
	}
	return " " + u.Scheme + ":"
}

func redirectHost(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.Host != "" {
		return u.Host
	}
	return u.Scheme + ":"
}

type consentView struct {
	Client, ClientID, RedirectHost, Resource, Scope, Person string
	Agents                                                  []*warden.Agent
	Action, State, CSRF                                     string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} — warden</title>
</head>
<body><h1>{{.Title}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Consent}}
<p>The application <strong>{{.Client}}</strong> (<code>{{.ClientID}}</code>) asks to act as one of your agents
at <code>{{.Resource}}</code>{{with .Scope}} with scope <code>{{.}}</code>{{end}}.
After you answer, your browser goes to <strong>{{.RedirectHost}}</strong>.</p>
<p>Signed in as {{.Person}}. Its calls are made by the agent you pick, for you; policy judges the agent.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="consent" value="{{.State}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset><legend>Act as agent</legend>
{{range $i, $a := .Agents}}<label><input type="radio" name="agent" value="{{$a.ID}}"{{if eq $i 0}} checked{{end}}> {{$a.Name}} <code>{{$a.ID}}</code>{{with $a.Owner}} (owner {{.}}){{end}}</label><br>
{{end}}</fieldset>
<p><button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>
{{end}}
</body></html>
`))

func (s *Server) page(w http.ResponseWriter, status int, title, msg string, consent *consentView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, struct {
		Title, Message string
		Consent        *consentView
	}{title, msg, consent}); err != nil {
		s.Log.Error("rendering page failed", "err", err)
	}
}
