package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// CreatedAgent is the wire type apitype.CreatedAgent; see there.
type CreatedAgent = apitype.CreatedAgent

// CreatedAdminToken is the wire type apitype.CreatedAdminToken; see there.
type CreatedAdminToken = apitype.CreatedAdminToken

// ReasonRequest is the wire type apitype.ReasonRequest; see there.
type ReasonRequest = apitype.ReasonRequest

// RenewRequest is the wire type apitype.RenewRequest; see there.
type RenewRequest = apitype.RenewRequest

func (a *API) whoami(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (a *API) listAgents(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	agents, err := a.Admin.Agents(r.Context())
	if err != nil {
		return err
	}
	if agents == nil {
		agents = []*warden.Agent{}
	}
	writeJSON(w, http.StatusOK, agents)
	return nil
}

func (a *API) getAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	ag, err := a.Admin.Agent(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

func (a *API) createAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	var spec admin.AgentSpec
	if err := decodeJSON(w, r, &spec); err != nil {
		return err
	}
	ag, secret, err := a.Admin.CreateAgent(r.Context(), p, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, CreatedAgent{Agent: ag, ClientID: ag.ID, ClientSecret: secret})
	return nil
}

func (a *API) deleteAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	if err := a.Admin.DeleteAgent(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) suspendAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	var req ReasonRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ag, err := a.Admin.Suspend(r.Context(), p, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

func (a *API) resumeAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	var req ReasonRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ag, err := a.Admin.Resume(r.Context(), p, r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

func (a *API) renewAgent(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	var req RenewRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	ag, err := a.Admin.Renew(r.Context(), p, r.PathValue("name"), req.TTL)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ag)
	return nil
}

func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	ag, secret, err := a.Admin.RotateSecret(r.Context(), p, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CreatedAgent{Agent: ag, ClientID: ag.ID, ClientSecret: secret})
	return nil
}

func (a *API) listAdminTokens(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	tokens, err := a.Admin.AdminTokens(r.Context())
	if err != nil {
		return err
	}
	if tokens == nil {
		tokens = []*warden.AdminToken{}
	}
	writeJSON(w, http.StatusOK, tokens)
	return nil
}

func (a *API) createAdminToken(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	var spec admin.AdminTokenSpec
	if err := decodeJSON(w, r, &spec); err != nil {
		return err
	}
	t, token, err := a.Admin.CreateAdminToken(r.Context(), p, spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, CreatedAdminToken{AdminToken: t, Token: token})
	return nil
}

func (a *API) revokeAdminToken(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	if err := a.Admin.RevokeAdminToken(r.Context(), p, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	keys, err := a.Store.SigningKeys(r.Context())
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []*warden.SigningKey{}
	}
	writeJSON(w, http.StatusOK, keys)
	return nil
}

func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	k, err := a.Tokens.RotateKeys(r.Context())
	if err != nil {
		return err
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventKeysRotate,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Source: r.RemoteAddr},
		Target:   warden.EventTarget{Resource: "signing-key:" + k.ID},
		Decision: warden.EventDecision{Effect: warden.EffectAllow},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	if err := a.Audit.Append(r.Context(), ev); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, k)
	return nil
}
