package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// setRoutes mounts /v1/sets: named value sets, part of the policy set (admin.ApplySet).
func (a *API) setRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("GET /v1/sets", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.Sets(r.Context()))
	}))
	mux.Handle("GET /v1/sets/{name}", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.Set(r.Context(), r.PathValue("name")))
	}))
	mux.Handle("PUT /v1/sets/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.SetApply
		if err := decodeJSONLimit(w, r, &req, maxSetBody); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.ApplySet(r.Context(), p, r.PathValue("name"), req))
	}))
	mux.Handle("DELETE /v1/sets/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.DeleteSet(r.Context(), p, r.PathValue("name")))
	}))
}

// maxSetBody bounds PUT /v1/sets/{name}: a set's text (cedar.MaxSetBytes) with JSON's escapes.
const maxSetBody = 8 << 20
