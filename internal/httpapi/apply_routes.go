package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// ApplyRequest is the wire type apitype.ApplyRequest; see there.
type ApplyRequest = apitype.ApplyRequest

func (a *API) applyRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("POST /v1/apply", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ApplyRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.ApplyPinned(r.Context(), p, req.Document, req.DryRun))
	}))
	mux.Handle("GET /v1/agents/{name}/budgets", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ShowBudgets(r.Context(), r.PathValue("name")))
	}))
	mux.Handle("POST /v1/budgets", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req admin.BudgetSpec
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.SetBudget(r.Context(), p, req))
	}))
	mux.Handle("DELETE /v1/budgets/{id}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return noContent(w, a.Admin.DeleteBudget(r.Context(), p, r.PathValue("id")))
	}))
}
