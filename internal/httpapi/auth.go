package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/people"
)

// bearer returns the token of an "Authorization: Bearer" header, or "".
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

type adminHandler func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error

// adminRoute authenticates a person's admin token and checks that its role is one of roles.
// A refusal for the wrong role is itself an audit event.
func (a *API) adminRoute(roles warden.RoleSet, h adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := admin.WithSource(r.Context(), r.RemoteAddr)
		r = r.WithContext(ctx)
		token := bearer(r)
		if token == "" {
			writeError(w, warden.Errorf(warden.EUnauthenticated, "an admin token is required: send Authorization: Bearer <token>"))
			return
		}
		p, err := a.authenticatePerson(ctx, token)
		if err != nil {
			writeError(w, err)
			return
		}
		if !roles.Allows(p.Role) {
			err := warden.Errorf(warden.EForbidden, "%s %s needs role %s; token %q has role %s", r.Method, r.URL.Path, roles, p.Name, p.Role)
			a.recordDenied(ctx, r, p, err)
			writeError(w, err)
			return
		}
		if err := h(w, r, p); err != nil {
			a.logError(r, err)
			writeError(w, err)
		}
	})
}

// authenticatePerson checks an admin token (wat_…) or, with people's sign-in on, a CLI session
// of a signed-in person (wps_…).
func (a *API) authenticatePerson(ctx context.Context, token string) (*warden.Principal, error) {
	if a.People != nil && strings.HasPrefix(token, people.SessionPrefix) {
		return a.People.Authenticate(ctx, token)
	}
	return a.Admin.Authenticate(ctx, token)
}

func (a *API) recordDenied(ctx context.Context, r *http.Request, p *warden.Principal, err error) {
	ev := &warden.AuditEvent{
		Type:     warden.EventAdminDenied,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Source: r.RemoteAddr},
		Target:   warden.EventTarget{Action: r.Method + " " + r.URL.Path},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonRoleRequired, Message: warden.ErrorMessage(err)},
	}
	if err := a.Audit.Append(ctx, ev); err != nil {
		a.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// logError logs server-side failures with their cause; a client's mistake is not logged as an error.
func (a *API) logError(r *http.Request, err error) {
	if StatusOf(warden.ErrorCode(err)) >= 500 {
		a.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

type agentHandler func(w http.ResponseWriter, r *http.Request, c *warden.Claims) error

// agentRoute authenticates an agent's access token. A refused token is an audit event.
func (a *API) agentRoute(h agentHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := a.Tokens.VerifyToken(r.Context(), bearer(r))
		if err == nil && len(c.Audience) == 1 && identity.MCPResource(c.Issuer, c.Audience[0]) {
			// A token issued for one MCP endpoint (RFC 8707) is good there only: not for
			// registering sandboxes, fetching skills or anything else an agent route does.
			err = warden.Errorf(warden.EUnauthenticated, "the token is for another resource")
		}
		if err != nil {
			a.recordRefusedToken(r, err)
			writeError(w, err)
			return
		}
		if err := h(w, r, c); err != nil {
			a.logError(r, err)
			writeError(w, err)
		}
	})
}

func (a *API) recordRefusedToken(r *http.Request, err error) {
	ev := &warden.AuditEvent{
		Type:     warden.EventTokenRefuse,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, Source: r.RemoteAddr},
		Target:   warden.EventTarget{Action: r.Method + " " + r.URL.Path},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: "invalid_token", Message: warden.ErrorMessage(err)},
	}
	if err := a.refusals().Append(r.Context(), ev); err != nil {
		a.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// refusals is where unauthenticated refusals are recorded.
func (a *API) refusals() warden.AuditLog {
	if a.Refusals != nil {
		return a.Refusals
	}
	return a.Audit
}
