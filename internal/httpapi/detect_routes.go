package httpapi

import (
	"net/http"
	"strconv"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// detectRoutes mounts detection's findings and baselines (docs/detect.md): operators and
// auditors read them; operators acknowledge findings.
func (a *API) detectRoutes(mux *http.ServeMux) {
	if a.Detect == nil {
		return
	}
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	mux.Handle("GET /v1/alerts", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		q := r.URL.Query()
		after, err := queryInt(q.Get("after"), "after")
		if err != nil {
			return err
		}
		limit, err := queryInt(q.Get("limit"), "limit")
		if err != nil {
			return err
		}
		agent := q.Get("agent")
		if agent != "" {
			if err := warden.ValidateName("agent", agent); err != nil {
				return err
			}
		}
		return answer(w, http.StatusOK)(a.Detect.Alerts(r.Context(), agent, after, int(limit)))
	}))
	mux.Handle("GET /v1/alerts/{id}", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Detect.Alert(r.Context(), r.PathValue("id")))
	}))
	mux.Handle("POST /v1/alerts/{id}/ack", a.adminRoute(warden.RoleSet{warden.RoleOperator}, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.AckRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Detect.Ack(r.Context(), p, r.PathValue("id"), req.Reason))
	}))
	mux.Handle("GET /v1/agents/{name}/baseline", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Detect.Baseline(r.Context(), r.PathValue("name")))
	}))
}

// queryInt reads a count of 0 or more from a query parameter; "" is 0.
func queryInt(s, name string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, warden.Errorf(warden.EInvalid, "%s must be a whole number of 0 or more", name)
	}
	return n, nil
}
