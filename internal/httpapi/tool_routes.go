package httpapi

import (
	"net/http"
	"reflect"
	"strconv"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
)

// ToolStateRequest is the wire type apitype.ToolStateRequest; see there.
type ToolStateRequest = apitype.ToolStateRequest

// ToolDisabled is the wire type apitype.ToolDisabled; see there.
type ToolDisabled = apitype.ToolDisabled

// SecretRequest is the wire type apitype.SecretRequest; see there.
type SecretRequest = apitype.SecretRequest

// RollbackRequest is the wire type apitype.RollbackRequest; see there.
type RollbackRequest = apitype.RollbackRequest

func (a *API) toolRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("GET /v1/tools", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.Tools(r.Context()))
	}))
	mux.Handle("GET /v1/tools/{name}", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ToolView(r.Context(), r.PathValue("name")))
	}))
	mux.Handle("POST /v1/tools", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var spec admin.ToolSpec
		if err := decodeJSON(w, r, &spec); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(a.Admin.AddToolPinned(r.Context(), p, spec))
	}))
	mux.Handle("DELETE /v1/tools/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return noContent(w, a.Admin.RemoveTool(r.Context(), p, r.PathValue("name")))
	}))
	mux.Handle("POST /v1/tools/{name}/enable", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ToolStateRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		t, _, err := a.Admin.SetToolEnabled(r.Context(), p, r.PathValue("name"), true, req.Reason)
		return answer(w, http.StatusOK)(t, err)
	}))
	mux.Handle("POST /v1/tools/{name}/disable", a.adminRoute(warden.RoleSet{warden.RoleOperator}, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ToolStateRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		t, rep, err := a.Admin.SetToolEnabled(r.Context(), p, r.PathValue("name"), false, req.Reason)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK)(ToolDisabled{Tool: t, CallsCancelled: rep.CallsCancelled, Replicas: rep.Replicas}, nil)
	}))
	// Only admins label tools: a label decides what policy sees (an output marked trusted is
	// never followed), so it is a policy change, not containment.
	mux.Handle("PATCH /v1/tools/{name}/labels", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.ToolLabelsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.SetToolLabels(r.Context(), p, r.PathValue("name"), req))
	}))
	mux.Handle("GET /v1/tools/{name}/manifests", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ToolManifests(r.Context(), r.PathValue("name")))
	}))
	mux.Handle("GET /v1/tools/{name}/scan", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.ScanToolManifests(r.Context(), r.PathValue("name")))
	}))
	mux.Handle("POST /v1/tools/{name}/manifests/accept", a.adminRoute(warden.RoleSet{warden.RoleOperator}, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.ManifestAcceptRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.AcceptManifests(r.Context(), p, r.PathValue("name"), req.Tool, req.Digest, req.Reason))
	}))

	mux.Handle("GET /v1/secrets", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.Secrets(r.Context()))
	}))
	mux.Handle("PUT /v1/secrets/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req SecretRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.SetSecret(r.Context(), p, r.PathValue("name"), req.Value))
	}))
	mux.Handle("DELETE /v1/secrets/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return noContent(w, a.Admin.DeleteSecret(r.Context(), p, r.PathValue("name")))
	}))

	mux.Handle("GET /v1/policies", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.PolicyHistory(r.Context()))
	}))
	mux.Handle("GET /v1/policies/{version}", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		v, err := strconv.ParseInt(r.PathValue("version"), 10, 64)
		if r.PathValue("version") == "latest" {
			v, err = 0, nil
		}
		if err != nil || v < 0 {
			return warden.Errorf(warden.EInvalid, "version must be a number or latest")
		}
		return answer(w, http.StatusOK)(a.Admin.PolicySet(r.Context(), v))
	}))
	mux.Handle("POST /v1/policies", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req admin.PolicyApply
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(a.Admin.ApplyPolicies(r.Context(), p, req))
	}))
	mux.Handle("POST /v1/policies/rollback", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req RollbackRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusCreated)(a.Admin.RollbackPolicies(r.Context(), p, req.Version, req.Reason))
	}))
	mux.Handle("POST /v1/policies/test", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req admin.PolicyTest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.TestPolicies(r.Context(), req))
	}))
	mux.Handle("POST /v1/replay", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.ReplayRequest
		if err := decodeJSONLimit(w, r, &req, maxReplayBody); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.Replay(r.Context(), req))
	}))
	mux.Handle("GET /v1/policies/schema", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Admin.PolicySchema(r.Context()))
	}))
	mux.Handle("POST /v1/policies/explain", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req admin.PolicyCase
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Admin.ExplainPolicy(r.Context(), req))
	}))
}

// answer returns a function writing a service call's result as JSON with status, or its error.
func answer(w http.ResponseWriter, status int) func(v any, err error) error {
	return func(v any, err error) error {
		if err != nil {
			return err
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice && rv.IsNil() {
			v = []struct{}{} // an empty list is [], not null
		}
		writeJSON(w, status, v)
		return nil
	}
}

func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
