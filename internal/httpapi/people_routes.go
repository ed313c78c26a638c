package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden/internal/apitype"
)

// peopleRoutes mounts people's sign-in (internal/people, docs/people.md): the browser's pages,
// whose POSTs refuse cross-origin requests (http.CrossOriginProtection, on top of SameSite=Lax
// cookies), and the CLI's JSON endpoints of `warden login`.
func (a *API) peopleRoutes(mux *http.ServeMux) {
	p := a.People
	if p == nil {
		return
	}
	csrf := http.NewCrossOriginProtection()
	mux.HandleFunc("GET /login", p.LoginPage)
	mux.HandleFunc("GET /login/oidc", p.StartOIDC)
	mux.HandleFunc("GET /login/callback", p.Callback)
	mux.Handle("POST /login/admin-token", csrf.Handler(http.HandlerFunc(p.AdminTokenSignIn)))
	mux.Handle("POST /logout", csrf.Handler(http.HandlerFunc(p.Logout)))
	mux.HandleFunc("GET /login/device", p.DevicePage)
	mux.Handle("POST /login/device", csrf.Handler(http.HandlerFunc(p.ConfirmDevice)))

	mux.Handle("POST /login/cli/token", a.publicRoute(func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.LoginCodeRequest
		if err := decodeJSONLimit(w, r, &req, maxOAuthBody); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(p.ExchangeCode(r.Context(), r, req))
	}))
	mux.Handle("POST /login/device/code", a.publicRoute(func(w http.ResponseWriter, r *http.Request) error {
		return answer(w, http.StatusOK)(p.StartDevice(r.Context()))
	}))
	mux.Handle("POST /login/device/token", a.publicRoute(func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.DeviceTokenRequest
		if err := decodeJSONLimit(w, r, &req, maxOAuthBody); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(p.PollDevice(r.Context(), r, req))
	}))
}

// publicRoute serves a route that needs no credential; its error becomes the response.
func (a *API) publicRoute(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.logError(r, err)
			writeError(w, err)
		}
	})
}
