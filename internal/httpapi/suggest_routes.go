package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
)

// suggestRoutes: least privilege from what an agent did (GET /v1/agents/{name}/suggest?since=30d).
// It reads the audit log and changes nothing, so auditors and operators may ask.
func (a *API) suggestRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	mux.Handle("GET /v1/agents/{name}/suggest", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.Suggest(r.Context(), r.PathValue("name"), r.URL.Query().Get("since")))
	}))
}
