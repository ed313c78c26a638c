package httpapi

import (
	"net/http"
	"net/url"

	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/oauthas"
)

// oauthASRoutes mounts the authorization code flow of interactive MCP clients (internal/oauthas).
// The routes exist whether or not it is enabled; oauthas answers that it is not configured.
func (a *API) oauthASRoutes(mux *http.ServeMux) {
	if a.OAuth == nil {
		return
	}
	mux.HandleFunc("GET "+oauthas.AuthorizePath, a.OAuth.Authorize)
	mux.HandleFunc("POST "+oauthas.AuthorizePath, a.OAuth.Authorize)
	mux.HandleFunc("POST "+oauthas.ConsentPath, a.OAuth.Consent)
	mux.HandleFunc("POST "+oauthas.RegisterPath, a.register)
	// Browser-based clients (the MCP Inspector) call these from another origin. No cookie is
	// involved, so any origin may.
	for _, p := range []string{oauthas.RegisterPath, "/oauth2/token", "/.well-known/oauth-authorization-server"} {
		mux.HandleFunc("OPTIONS "+p, preflight)
	}
}

func preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, MCP-Protocol-Version")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) register(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	resp, re := a.OAuth.Register(r)
	if re != nil {
		writeJSON(w, re.Status, apitype.OAuthError{Error: re.Code, Description: re.Description})
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// oauthGrant serves the grants of the authorization code flow at the token endpoint.
func (a *API) oauthGrant(w http.ResponseWriter, r *http.Request, form url.Values) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if a.OAuth == nil {
		writeOAuthError(w, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "the authorization code flow is not configured"})
		return
	}
	resp, ge := a.OAuth.Grant(r, form)
	if ge != nil {
		writeOAuthError(w, &oauthError{status: ge.Status, code: ge.Code, description: ge.Description})
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}
