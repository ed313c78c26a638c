package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/oauthas"
)

// OAuth 2.0 grant and token type identifiers.
const (
	grantClientCredentials = "client_credentials"
	grantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	tokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// TokenResponse is the wire type apitype.TokenResponse; see there.
type TokenResponse = apitype.TokenResponse

// oauthError is an RFC 6749 §5.2 error.
type oauthError struct {
	status      int
	code        string
	description string
	basic       bool // the client tried HTTP Basic: answer with a Basic challenge
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		if e.basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="warden"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
		}
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, e.status, apitype.OAuthError{Error: e.code, Description: e.description})
}

func invalidRequest(format string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: format}
}

// parseForm reads an application/x-www-form-urlencoded body within the size limit. Parameters
// may appear once each (RFC 6749 §3.1); query parameters are not accepted, so a credential never
// sits in a URL.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauthError) {
	if r.URL.RawQuery != "" {
		return nil, invalidRequest("parameters must be sent in the request body, not the URL")
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, invalidRequest("content type must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxOAuthBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &oauthError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", description: "request body too large"}
		}
		return nil, invalidRequest("malformed form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, invalidRequest("parameter " + k + " is repeated")
		}
	}
	return r.PostForm, nil
}

// clientCredentials returns the client id and secret from HTTP Basic (client_secret_basic) or
// the form (client_secret_post). Using both is an error (RFC 6749 §2.3).
func clientCredentials(r *http.Request, form url.Values) (id, secret string, basic bool, e *oauthError) {
	bid, bsecret, hasBasic := r.BasicAuth()
	fid, fsecret := form.Get("client_id"), form.Get("client_secret")
	switch {
	case hasBasic && fsecret != "":
		return "", "", true, invalidRequest("use one client authentication method, not both")
	case hasBasic:
		// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
		uid, err1 := url.QueryUnescape(bid)
		usecret, err2 := url.QueryUnescape(bsecret)
		if err1 != nil || err2 != nil {
			return "", "", true, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: "malformed client credentials", basic: true}
		}
		return uid, usecret, true, nil
	case fid != "" && fsecret != "":
		return fid, fsecret, false, nil
	}
	return "", "", false, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: "client authentication required (HTTP Basic or client_id and client_secret)"}
}

var sessionIDRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

func (a *API) token(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	if gt := form.Get("grant_type"); gt == oauthas.GrantAuthorizationCode || gt == oauthas.GrantRefreshToken {
		a.oauthGrant(w, r, form)
		return
	}
	clientID, secret, basic, oe := clientCredentials(r, form)
	if oe != nil {
		a.recordTokenRefusal(r, clientID, nil, oe)
		writeOAuthError(w, oe)
		return
	}
	ag, err := a.Tokens.AuthenticateClient(r.Context(), clientID, secret)
	if err != nil {
		oe := &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: warden.ErrorMessage(err), basic: basic}
		if code := warden.ErrorCode(err); code != warden.EUnauthenticated {
			a.logError(r, err)
			oe = &oauthError{status: StatusOf(code), code: "server_error", description: warden.ErrorMessage(err)}
		}
		a.recordTokenRefusal(r, clientID, nil, oe)
		writeOAuthError(w, oe)
		return
	}
	req, issuedType, oe := a.tokenRequest(r.Context(), form)
	if oe != nil {
		a.recordTokenRefusal(r, clientID, ag, oe)
		writeOAuthError(w, oe)
		return
	}
	issued, err := a.Tokens.Issue(r.Context(), ag, req)
	if err != nil {
		a.logError(r, err)
		oe := &oauthError{status: http.StatusBadRequest, code: "invalid_request", description: warden.ErrorMessage(err)}
		if code := warden.ErrorCode(err); code != warden.EInvalid {
			oe = &oauthError{status: StatusOf(code), code: "server_error", description: warden.ErrorMessage(err)}
		}
		a.recordTokenRefusal(r, clientID, ag, oe)
		writeOAuthError(w, oe)
		return
	}
	c := issued.Claims
	msg := "token issued, expires " + c.ExpiresAt.UTC().Format(time.RFC3339)
	if c.Scope != "" {
		msg += ", scope " + c.Scope
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventTokenIssue,
		Actor:    agentActor(r, ag, c),
		Target:   warden.EventTarget{Action: form.Get("grant_type"), Resource: "token:" + c.ID},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: msg},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	// Fail closed: a token whose issue is not on record is not handed out.
	if err := a.Audit.Append(r.Context(), ev); err != nil {
		a.logError(r, err)
		writeOAuthError(w, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", description: "audit log unavailable"})
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, TokenResponse{
		AccessToken: issued.Token, TokenType: "Bearer", ExpiresIn: issued.ExpiresIn,
		Scope: c.Scope, IssuedTokenType: issuedType,
	})
}

// tokenRequest validates the grant-specific parameters.
func (a *API) tokenRequest(ctx context.Context, form url.Values) (identity.IssueRequest, string, *oauthError) {
	req := identity.IssueRequest{Scope: form.Get("scope"), SessionID: form.Get("session_id")}
	if req.Scope != "" && (len(req.Scope) > 1024 || !identity.ValidScope(req.Scope)) {
		return req, "", &oauthError{status: http.StatusBadRequest, code: "invalid_scope", description: "scope must be space-separated printable tokens"}
	}
	if req.SessionID != "" && !sessionIDRE.MatchString(req.SessionID) {
		return req, "", invalidRequest("session_id must be 1-128 characters of letters, digits and _ . : -")
	}
	switch gt := form.Get("grant_type"); gt {
	case grantClientCredentials:
		return req, "", nil
	case grantTokenExchange:
		switch form.Get("subject_token_type") {
		case tokenTypeJWT, tokenTypeIDToken, tokenTypeAccessToken:
		default:
			return req, "", invalidRequest("subject_token_type must be a JWT, ID token or access token type")
		}
		if rt := form.Get("requested_token_type"); rt != "" && rt != tokenTypeAccessToken {
			return req, "", invalidRequest("only access tokens can be requested")
		}
		if form.Get("actor_token") != "" {
			return req, "", invalidRequest("the agent authenticates as the client; actor_token is not used")
		}
		subject, _, err := a.Tokens.VerifySubjectToken(ctx, form.Get("subject_token"))
		if err != nil {
			return req, "", &oauthError{status: http.StatusBadRequest, code: "invalid_grant", description: "subject_token: " + warden.ErrorMessage(err)}
		}
		req.OnBehalfOf = subject
		return req, tokenTypeAccessToken, nil
	case "":
		return req, "", invalidRequest("grant_type is required")
	default:
		supported := "client_credentials, " + grantTokenExchange
		if a.OAuth.Enabled() {
			supported += ", authorization_code, refresh_token"
		}
		return req, "", &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "supported grant types: " + supported}
	}
}

func agentActor(r *http.Request, ag *warden.Agent, c *warden.Claims) warden.EventActor {
	act := warden.EventActor{Kind: warden.ActorAgent, Source: r.RemoteAddr}
	if ag != nil {
		act.ID, act.Name, act.Owner = ag.ID, ag.Name, ag.Owner
	}
	if c != nil {
		act.ID = c.AgentID()
		act.SessionID = c.SessionID
		act.OnBehalfOf = c.OnBehalfOf()
	}
	return act
}

func (a *API) recordTokenRefusal(r *http.Request, clientID string, ag *warden.Agent, oe *oauthError) {
	act := agentActor(r, ag, nil)
	if act.ID == "" && len(clientID) <= 64 {
		act.ID = clientID // unverified: what the caller claimed to be
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventTokenRefuse,
		Actor:    act,
		Target:   warden.EventTarget{Action: "/oauth2/token"},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: oe.code, Message: oe.description},
	}
	// A caller that proved no identity is recorded within the per-source limits: anyone can
	// send junk credentials. An authenticated agent's refusal is recorded in full.
	audit := a.Audit
	if ag == nil {
		audit = a.refusals()
	}
	if err := audit.Append(r.Context(), ev); err != nil {
		a.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// Introspection is the wire type apitype.Introspection; see there.
type Introspection = apitype.Introspection

// introspectCaller authenticates the caller of introspection or revocation: an admin token
// (any of roles), or an agent's client credentials. It returns the person for an admin token,
// or the agent's ID for an agent caller.
func (a *API) introspectCaller(r *http.Request, form url.Values, roles warden.RoleSet) (p *warden.Principal, agentID string, oe *oauthError) {
	if token := bearer(r); token != "" {
		p, err := a.authenticatePerson(r.Context(), token)
		if err != nil {
			return nil, "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: warden.ErrorMessage(err)}
		}
		if !roles.Allows(p.Role) {
			return nil, "", &oauthError{status: http.StatusForbidden, code: "access_denied", description: "needs role " + roles.String()}
		}
		return p, "", nil
	}
	id, secret, basic, oe := clientCredentials(r, form)
	if oe != nil {
		return nil, "", oe
	}
	ag, err := a.Tokens.AuthenticateClient(r.Context(), id, secret)
	if err != nil {
		return nil, "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", description: warden.ErrorMessage(err), basic: basic}
	}
	return nil, ag.ID, nil
}

func (a *API) introspect(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	var callerAgent string
	if oe == nil {
		_, callerAgent, oe = a.introspectCaller(r, form, warden.RoleSet{warden.RoleOperator, warden.RoleAuditor})
	}
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return
	}
	writeJSON(w, http.StatusOK, a.introspection(r.Context(), token, callerAgent))
}

// introspection answers active only for a token that verifies now and whose agent, read fresh
// from the store, is active in the token's epoch: introspection is where another replica's
// suspension must show even before this replica's snapshot refreshes.
func (a *API) introspection(ctx context.Context, token, callerAgent string) Introspection {
	c, err := a.Tokens.VerifyToken(ctx, token)
	if err != nil {
		return Introspection{}
	}
	if callerAgent != "" && c.AgentID() != callerAgent {
		return Introspection{} // an agent may introspect only its own tokens
	}
	ag, err := a.Store.AgentByID(ctx, c.AgentID())
	if err != nil || !ag.CanAct(time.Now()) || ag.Epoch != c.Epoch {
		return Introspection{}
	}
	return Introspection{
		Active: true, Scope: c.Scope, ClientID: c.ClientID, Username: ag.Name, TokenType: "Bearer",
		Exp: c.ExpiresAt.Unix(), Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(),
		Sub: c.Subject, Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, Sid: c.SessionID, Epoch: c.Epoch,
		Act: c.Actor, OnBehalfOf: c.OnBehalfOf(),
	}
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	form, oe := parseForm(w, r)
	var person *warden.Principal
	var callerAgent string
	if oe == nil {
		person, callerAgent, oe = a.introspectCaller(r, form, warden.RoleSet{warden.RoleOperator})
	}
	if oe != nil {
		writeOAuthError(w, oe)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return
	}
	c, err := a.Tokens.Revoke(r.Context(), token, callerAgent)
	if err != nil {
		a.logError(r, err)
		writeOAuthError(w, &oauthError{status: StatusOf(warden.ErrorCode(err)), code: "server_error", description: warden.ErrorMessage(err)})
		return
	}
	if c != nil {
		ev := &warden.AuditEvent{
			Type:     warden.EventTokenRevoke,
			Actor:    agentActor(r, nil, c),
			Target:   warden.EventTarget{Resource: "token:" + c.ID},
			Decision: warden.EventDecision{Effect: warden.EffectAllow},
			Outcome:  warden.EventOutcome{Status: warden.StatusOK},
		}
		if person != nil {
			// Who revoked it: a revocation by a person names the admin token, as every other
			// admin action does.
			ev.Actor = warden.EventActor{Kind: warden.ActorHuman, Name: person.Name, Role: string(person.Role), Email: person.Email, Source: r.RemoteAddr}
		}
		if err := a.Audit.Append(r.Context(), ev); err != nil {
			a.Log.Error("audit append failed", "type", ev.Type, "err", err)
		}
	}
	// RFC 7009 §2.2: 200 whether or not the token was valid.
	w.WriteHeader(http.StatusOK)
}

func (a *API) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(a.Tokens.JWKS())
}

func (a *API) metadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	m := a.Tokens.Metadata(a.BaseURL)
	if sm, ok := m.(*identity.ServerMetadata); ok && a.OAuth != nil {
		base := a.BaseURL
		if base == "" {
			base = sm.Issuer
		}
		a.OAuth.Extend(sm, base)
	}
	_ = json.NewEncoder(w).Encode(m)
}

func (a *API) agentSelf(w http.ResponseWriter, r *http.Request, c *warden.Claims) error {
	ag, err := a.Store.AgentByID(r.Context(), c.AgentID())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"agent": ag, "claims": c})
	return nil
}
