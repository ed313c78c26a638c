package oauthas

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
)

// RegisterError is an RFC 7591 §3.2.2 error.
type RegisterError struct {
	Status      int
	Code        string
	Description string
}

func (e *RegisterError) Error() string { return e.Code + ": " + e.Description }

func invalidMetadata(desc string) *RegisterError {
	return &RegisterError{Status: http.StatusBadRequest, Code: "invalid_client_metadata", Description: desc}
}

// Registration is a client's registration request (RFC 7591 §2), the fields warden reads.
// Other metadata is ignored, as RFC 7591 asks: clients send client_uri, logo_uri, software_id
// and more, which warden neither needs nor shows.
type Registration struct {
	RedirectURIs            []string `json:"redirect_uris"`
	ClientName              string   `json:"client_name,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// RegistrationResponse is RFC 7591 §3.2.1's answer.
type RegistrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
}

// parseRegistration decodes and validates a registration body: one JSON object, within
// maxRegisterReq, with the fields warden reads of the right types and values.
func parseRegistration(body []byte) (*Registration, *RegisterError) {
	if len(body) > maxRegisterReq {
		return nil, invalidMetadata("the registration is too large")
	}
	if !utf8.Valid(body) {
		return nil, invalidMetadata("the registration is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var reg Registration
	if err := dec.Decode(&reg); err != nil {
		return nil, invalidMetadata("the registration is not a JSON object of client metadata: " + safe(err.Error()))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidMetadata("the registration has data after its JSON object")
	}
	if len(reg.RedirectURIs) == 0 || len(reg.RedirectURIs) > maxRedirects {
		return nil, &RegisterError{Status: http.StatusBadRequest, Code: "invalid_redirect_uri", Description: "register 1 to 10 redirect_uris"}
	}
	for _, u := range reg.RedirectURIs {
		if err := validRedirect(u); err != nil {
			return nil, &RegisterError{Status: http.StatusBadRequest, Code: "invalid_redirect_uri", Description: warden.ErrorMessage(err)}
		}
	}
	switch reg.TokenEndpointAuthMethod {
	case "", "none":
	default:
		return nil, invalidMetadata("token_endpoint_auth_method must be none: registered clients are public and prove themselves with PKCE")
	}
	for _, g := range reg.GrantTypes {
		if g != GrantAuthorizationCode && g != GrantRefreshToken {
			return nil, invalidMetadata("grant_types may be authorization_code and refresh_token")
		}
	}
	for _, rt := range reg.ResponseTypes {
		if rt != "code" {
			return nil, invalidMetadata("response_types may be code only")
		}
	}
	if utf8.RuneCountInString(reg.ClientName) > maxClientName || safe(reg.ClientName) != reg.ClientName {
		return nil, invalidMetadata("client_name must be at most 100 printable characters")
	}
	if reg.Scope != "" && (len(reg.Scope) > maxScope || !identity.ValidScope(reg.Scope)) {
		return nil, invalidMetadata("scope must be space-separated printable tokens")
	}
	return &reg, nil
}

// Register serves POST /oauth2/register: open registration of public clients, bounded in
// number (Config.MaxClients), each one recorded.
func (s *Server) Register(r *http.Request) (*RegistrationResponse, *RegisterError) {
	if !s.Enabled() {
		return nil, &RegisterError{Status: http.StatusNotFound, Code: "invalid_request", Description: "client registration is not configured"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRegisterReq+1))
	if err != nil {
		return nil, invalidMetadata("the body could not be read")
	}
	reg, re := parseRegistration(body)
	if re != nil {
		return nil, re
	}
	ctx := r.Context()
	n, err := s.Store.CountOAuthClients(ctx)
	if err != nil {
		s.Log.Error("counting clients failed", "err", err)
		return nil, &RegisterError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again later"}
	}
	if n >= s.cfg.MaxClients {
		return nil, &RegisterError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "too many clients are registered; ask an admin"}
	}
	name := reg.ClientName
	if name == "" {
		name = "unnamed client"
	}
	c := &warden.OAuthClient{ID: warden.NewID("cli_"), Name: name, RedirectURIs: reg.RedirectURIs, CreatedAt: s.now().UTC()}
	ev := &warden.AuditEvent{
		Type:     warden.EventOAuthRegister,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: name, Source: r.RemoteAddr},
		Target:   warden.EventTarget{Action: "client:" + c.ID},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: "client registered"},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	// Recorded in full: MaxClients bounds how many there can be.
	if err := s.appendAudit(ctx, nil, ev); err != nil {
		return nil, &RegisterError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again later"}
	}
	if err := s.Store.CreateOAuthClient(ctx, c); err != nil {
		s.Log.Error("storing client failed", "err", err)
		return nil, &RegisterError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "try again later"}
	}
	grants := reg.GrantTypes
	if len(grants) == 0 {
		grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	if !slices.Contains(grants, GrantAuthorizationCode) {
		grants = append(grants, GrantAuthorizationCode)
	}
	return &RegistrationResponse{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), ClientName: c.Name, RedirectURIs: c.RedirectURIs,
		TokenEndpointAuthMethod: "none", GrantTypes: grants, ResponseTypes: []string{"code"}}, nil
}
