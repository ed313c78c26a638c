package httpapi

import (
	"net/http"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// ApproveRequest is the wire type apitype.ApproveRequest; see there.
type ApproveRequest = apitype.ApproveRequest

// RejectRequest is the wire type apitype.RejectRequest; see there.
type RejectRequest = apitype.RejectRequest

// approvalRoutes mounts /v1/approvals: people with role approver, operator or admin list and
// decide the calls held for approval.
func (a *API) approvalRoutes(mux *http.ServeMux) {
	if a.Approvals == nil {
		return
	}
	deciders := warden.RoleSet{warden.RoleApprover, warden.RoleOperator}
	mux.Handle("GET /v1/approvals", a.adminRoute(deciders, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Approvals.List(r.Context(), r.URL.Query().Get("status")))
	}))
	mux.Handle("GET /v1/approvals/{id}", a.adminRoute(deciders, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Approvals.Get(r.Context(), r.PathValue("id")))
	}))
	mux.Handle("POST /v1/approvals/{id}/approve", a.adminRoute(deciders, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ApproveRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Approvals.Approve(r.Context(), p, r.PathValue("id"), req.Note))
	}))
	mux.Handle("POST /v1/approvals/{id}/reject", a.adminRoute(deciders, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req RejectRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Approvals.Reject(r.Context(), p, r.PathValue("id"), req.Reason))
	}))
}
