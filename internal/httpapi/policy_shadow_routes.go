package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// policyShadowRoutes: shadow mode, a candidate policy set decided beside the live one
// (docs/cli.md, "Shadow mode"). Changing it is an admin's, as applying policies is; reading it
// and its report is for whoever may read the policies.
func (a *API) policyShadowRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("GET /v1/policies/shadow", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ShadowPolicies(r.Context()))
	}))
	apply := a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req admin.PolicyApply
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(a.Admin.ApplyShadow(r.Context(), p, req))
	})
	mux.Handle("PUT /v1/policies/shadow", apply)
	mux.Handle("POST /v1/policies/shadow", apply)
	mux.Handle("DELETE /v1/policies/shadow", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.ReasonRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.DropShadow(r.Context(), p, req.Reason))
	}))
	mux.Handle("POST /v1/policies/shadow/promote", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.ReasonRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(a.Admin.PromoteShadow(r.Context(), p, req.Reason))
	}))
	mux.Handle("GET /v1/policies/shadow/report", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ShadowReport(r.Context(), r.URL.Query().Get("since")))
	}))
}
