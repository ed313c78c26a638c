package oauthas

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/identity"
	"golang.org/x/oauth2"
)

// GrantError is an RFC 6749 §5.2 error of the token endpoint.
type GrantError struct {
	Status      int
	Code        string
	Description string
}

func (e *GrantError) Error() string { return e.Code + ": " + e.Description }

func invalidGrant(desc string) *GrantError {
	return &GrantError{Status: http.StatusBadRequest, Code: "invalid_grant", Description: desc}
}

func unavailable() *GrantError {
	return &GrantError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again later"}
}

// Grant serves the authorization_code and refresh_token grants at the token endpoint for
// public clients (token_endpoint_auth_method none), form already parsed by the caller.
func (s *Server) Grant(r *http.Request, form url.Values) (*apitype.TokenResponse, *GrantError) {
	if !s.Enabled() {
		return nil, &GrantError{Status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: "the authorization code flow is not configured"}
	}
	publicOnly := &GrantError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "registered clients are public: send client_id only"}
	clientID := form.Get("client_id")
	if form.Get("client_secret") != "" {
		return nil, publicOnly
	}
	// A client may name itself by HTTP Basic with an empty secret (golang.org/x/oauth2 tries
	// that first when it does not know the method); any secret is refused.
	if id, sec, ok := r.BasicAuth(); ok {
		uid, err := url.QueryUnescape(id)
		if sec != "" || err != nil || clientID != "" && clientID != uid {
			return nil, publicOnly
		}
		clientID = uid
	} else if r.Header.Get("Authorization") != "" {
		return nil, publicOnly
	}
	if clientID == "" {
		return nil, &GrantError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "client_id is required"}
	}
	switch form.Get("grant_type") {
	case GrantAuthorizationCode:
		return s.redeemCode(r, clientID, form)
	case GrantRefreshToken:
		return s.refresh(r, clientID, form)
	}
	return nil, &GrantError{Status: http.StatusBadRequest, Code: "unsupported_grant_type", Description: "not a grant of this server"}
}

// redeemCode exchanges a code for tokens. The code is taken from the store first, so it is
// spent whatever happens next: a wrong verifier cannot be retried.
func (s *Server) redeemCode(r *http.Request, clientID string, form url.Values) (*apitype.TokenResponse, *GrantError) {
	ctx := r.Context()
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" || len(code) > maxParam {
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, nil, clientID, invalidGrant("code is required"))
	}
	ac, err := s.Store.TakeAuthorizationCode(ctx, hashOf(code), s.now())
	if err != nil {
		if warden.ErrorCode(err) != warden.ENotFound {
			s.Log.Error("taking code failed", "err", err)
			return nil, unavailable()
		}
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, nil, clientID, invalidGrant("the code is unknown, used or expired"))
	}
	switch {
	case ac.ClientID != clientID:
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, grantOf(ac), clientID, invalidGrant("the code was issued to another client"))
	case form.Get("redirect_uri") != ac.RedirectURI:
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, grantOf(ac), clientID, invalidGrant("redirect_uri does not match the authorization request"))
	case !verifierRE.MatchString(verifier) || !pkceMatches(verifier, ac.CodeChallenge):
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, grantOf(ac), clientID, invalidGrant("code_verifier does not match the code_challenge"))
	case form.Get("resource") != "" && form.Get("resource") != ac.Resource:
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, grantOf(ac), clientID, &GrantError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "resource differs from the one authorized"})
	}
	now := s.now()
	a, ge := s.usableAgent(ctx, grantOf(ac))
	if ge != nil {
		return nil, s.refuse(r, warden.EventOAuthCodeRedeem, grantOf(ac), clientID, ge)
	}
	rt := grantOf(ac)
	rt.Family = warden.NewID("rtf_")
	rt.AuthAt = now
	rt.ExpiresAt = now.Add(s.cfg.RefreshTTL)
	return s.issue(r, warden.EventOAuthCodeRedeem, a, rt, "code redeemed")
}

// refresh rotates a refresh token: the presented one is spent and a new one of the same family
// issued. A spent one presented again revokes the family: one of two holders is a thief.
func (s *Server) refresh(r *http.Request, clientID string, form url.Values) (*apitype.TokenResponse, *GrantError) {
	ctx := r.Context()
	token := form.Get("refresh_token")
	if token == "" || len(token) > maxParam {
		return nil, s.refuse(r, warden.EventOAuthRefresh, nil, clientID, invalidGrant("refresh_token is required"))
	}
	now := s.now()
	old, reused, err := s.Store.UseRefreshToken(ctx, hashOf(token), now)
	if err != nil {
		if warden.ErrorCode(err) != warden.ENotFound {
			s.Log.Error("using refresh token failed", "err", err)
			return nil, unavailable()
		}
		return nil, s.refuse(r, warden.EventOAuthRefresh, nil, clientID, invalidGrant("unknown refresh token"))
	}
	// A used token presented again, or a token presented by another client, was stolen: the
	// whole family is revoked, so neither the thief nor the victim refreshes again.
	if reused || old.ClientID != clientID {
		n, err := s.Store.RevokeRefreshFamily(ctx, old.Family, now)
		if err != nil {
			s.Log.Error("revoking refresh family failed", "err", err)
			return nil, unavailable()
		}
		what := "a used refresh token was presented again"
		if old.ClientID != clientID {
			what = "client " + safe(clientID) + " presented another client's refresh token"
		}
		ev := s.event(r, warden.EventOAuthRefreshReused, old)
		ev.Decision = warden.EventDecision{Effect: warden.EffectDeny, Reason: "invalid_grant",
			Message: what + ": its family is revoked (" + strconv.Itoa(n) + " live token(s))"}
		_ = s.appendAudit(ctx, nil, ev)
		return nil, invalidGrant("the refresh token was already used or is another client's; the grant is revoked")
	}
	switch {
	case !now.Before(old.ExpiresAt):
		return nil, s.refuse(r, warden.EventOAuthRefresh, old, clientID, invalidGrant("the grant expired; sign in again"))
	case now.Sub(old.CreatedAt) >= s.cfg.RefreshIdle:
		return nil, s.refuse(r, warden.EventOAuthRefresh, old, clientID, invalidGrant("the grant was idle too long; sign in again"))
	case form.Get("scope") != "" && form.Get("scope") != old.Scope:
		return nil, s.refuse(r, warden.EventOAuthRefresh, old, clientID, &GrantError{Status: http.StatusBadRequest, Code: "invalid_scope", Description: "a refresh keeps the scope granted"})
	case form.Get("resource") != "" && form.Get("resource") != old.Resource:
		return nil, s.refuse(r, warden.EventOAuthRefresh, old, clientID, &GrantError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "a refresh keeps the resource granted"})
	}
	a, ge := s.usableAgent(ctx, old)
	if ge != nil {
		return nil, s.refuse(r, warden.EventOAuthRefresh, old, clientID, ge)
	}
	next := *old
	next.UsedAt, next.RevokedAt = time.Time{}, time.Time{}
	return s.issue(r, warden.EventOAuthRefresh, a, &next, "refresh token rotated")
}

// usableAgent reads the grant's agent fresh from the store: it must be able to act (not
// killed, suspended or expired), and the person must still be allowed to use it.
func (s *Server) usableAgent(ctx context.Context, g *warden.RefreshToken) (*warden.Agent, *GrantError) {
	a, err := s.Store.AgentByID(ctx, g.AgentID)
	if warden.ErrorCode(err) == warden.ENotFound {
		return nil, invalidGrant("the agent no longer exists")
	}
	if err != nil {
		s.Log.Error("reading agent failed", "err", err)
		return nil, unavailable()
	}
	if msg := warden.ActRefusal(a.Status, a.ExpiresAt, s.now()); msg != "" {
		return nil, invalidGrant("the agent may not act: " + msg)
	}
	if a.Epoch != g.Epoch {
		// Killed, suspended or its secret rotated since the consent: what stopped the agent's
		// tokens ends its grants too, even once it may act again (kill is final).
		return nil, invalidGrant("the agent was stopped since this grant was given: the person must consent again")
	}
	if strings.EqualFold(a.Owner, g.Person) {
		return a, nil
	}
	// The grant relied on the person's admin role: it must still hold.
	if g.Role != warden.RoleAdmin || s.Roles == nil {
		return nil, invalidGrant("the person may no longer use this agent")
	}
	role, err := s.Roles.Role(ctx, g.Person)
	if err != nil || role != warden.RoleAdmin {
		return nil, invalidGrant("the person may no longer use this agent")
	}
	return a, nil
}

// issue signs an access token for the grant, stores its next refresh token and records both
// before handing them out.
func (s *Server) issue(r *http.Request, typ string, a *warden.Agent, g *warden.RefreshToken, what string) (*apitype.TokenResponse, *GrantError) {
	ctx := r.Context()
	issued, err := s.Tokens.Issue(ctx, a, identity.IssueRequest{Scope: g.Scope, Person: g.Person, Resource: g.Resource})
	if err != nil {
		if warden.ErrorCode(err) == warden.EUnauthenticated || warden.ErrorCode(err) == warden.EInvalid {
			return nil, s.refuse(r, typ, g, g.ClientID, invalidGrant(warden.ErrorMessage(err)))
		}
		s.Log.Error("issuing token failed", "err", err)
		return nil, unavailable()
	}
	value, hash := secret()
	g.Hash = hash
	g.CreatedAt = s.now()
	ev := s.event(r, typ, g)
	ev.Actor.SessionID = issued.Claims.SessionID
	ev.Target.Resource = "token:" + issued.Claims.ID
	ev.Decision = warden.EventDecision{Effect: warden.EffectAllow, Message: what + " for client " + g.ClientID + ", resource " + g.Resource +
		", token expires " + issued.Claims.ExpiresAt.UTC().Format(time.RFC3339)}
	ev.Outcome = warden.EventOutcome{Status: warden.StatusOK}
	// Fail closed: tokens whose issue is not on record are not handed out.
	if err := s.appendAudit(ctx, nil, ev); err != nil {
		return nil, unavailable()
	}
	if err := s.Store.CreateRefreshToken(ctx, g); err != nil {
		s.Log.Error("storing refresh token failed", "err", err)
		return nil, unavailable()
	}
	return &apitype.TokenResponse{AccessToken: issued.Token, TokenType: "Bearer", ExpiresIn: issued.ExpiresIn,
		Scope: g.Scope, RefreshToken: value}, nil
}

// event is an audit event about grant g, the agent as actor and the person it acts for.
func (s *Server) event(r *http.Request, typ string, g *warden.RefreshToken) *warden.AuditEvent {
	return &warden.AuditEvent{
		Type:   typ,
		Actor:  warden.EventActor{Kind: warden.ActorAgent, ID: g.AgentID, OnBehalfOf: g.Person, Source: r.RemoteAddr},
		Target: warden.EventTarget{Action: "client:" + g.ClientID},
	}
}

// refuse records a refused grant and returns ge. A caller that showed no valid code or token
// proved nothing: its refusal is recorded within limits.
func (s *Server) refuse(r *http.Request, typ string, g *warden.RefreshToken, clientID string, ge *GrantError) *GrantError {
	log := s.Audit
	if g == nil {
		g = &warden.RefreshToken{ClientID: safe(clientID)}
		log = s.refusals()
	}
	ev := s.event(r, typ, g)
	ev.Decision = warden.EventDecision{Effect: warden.EffectDeny, Reason: ge.Code, Message: ge.Description}
	if ev.Actor.ID == "" {
		ev.Actor.Kind = warden.ActorSystem
	}
	_ = s.appendAudit(r.Context(), log, ev)
	return ge
}

// grantOf is the grant an authorization code stands for.
func grantOf(ac *warden.AuthorizationCode) *warden.RefreshToken {
	return &warden.RefreshToken{ClientID: ac.ClientID, AgentID: ac.AgentID, Person: ac.Person, Role: ac.Role, Epoch: ac.Epoch,
		Resource: ac.Resource, Scope: ac.Scope}
}

func pkceMatches(verifier, challenge string) bool {
	return subtle.ConstantTimeCompare([]byte(oauth2.S256ChallengeFromVerifier(verifier)), []byte(challenge)) == 1
}
