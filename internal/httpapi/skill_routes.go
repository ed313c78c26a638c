package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// maxSkillBody bounds POST /v1/admin/skills: an archive up to the skill limits' 64 MiB, in
// base64, with room for the rest of the request.
const maxSkillBody = 96 << 20

// skillRoutes mounts the skills API when a.Skills is set: the admin's under /v1/admin/skills
// (admin changes, operator and auditor read), the agent's under /v1/skills (agent token), and
// the quarantine's list and lift.
func (a *API) skillRoutes(mux *http.ServeMux) {
	if a.Skills == nil {
		return
	}
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("GET /v1/admin/skills", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Skills.List(r.Context(), r.URL.Query().Get("name")))
	}))
	mux.Handle("POST /v1/admin/skills", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.SkillAddRequest
		if err := decodeLarge(w, r, &req, maxSkillBody); err != nil {
			return err
		}
		added, err := a.Skills.Add(r.Context(), p, req)
		status := http.StatusCreated
		if err == nil && !added.Added {
			status = http.StatusOK
		}
		return answer(w, status)(added, err)
	}))
	mux.Handle("GET /v1/admin/skills/{name}", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Skills.Show(r.Context(), r.PathValue("name"), r.URL.Query().Get("digest")))
	}))
	mux.Handle("DELETE /v1/admin/skills/{name}", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Skills.Remove(r.Context(), p, r.PathValue("name"), r.URL.Query().Get("digest")))
	}))
	mux.Handle("POST /v1/admin/skills/{name}/grants", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.SkillGrantRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return noContent(w, a.Skills.Grant(r.Context(), p, req.Agent, r.PathValue("name")))
	}))
	mux.Handle("POST /v1/admin/skills/{name}/revoke", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req apitype.SkillGrantRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return noContent(w, a.Skills.Revoke(r.Context(), p, req.Agent, r.PathValue("name")))
	}))

	mux.Handle("GET /v1/skills", a.agentRoute(func(w http.ResponseWriter, r *http.Request, c *warden.Claims) error {
		return answer(w, http.StatusOK)(a.Skills.ForAgent(r.Context(), c))
	}))
	mux.Handle("GET /v1/skills/{name}/archive", a.agentRoute(func(w http.ResponseWriter, r *http.Request, c *warden.Claims) error {
		archive, sk, err := a.Skills.Archive(r.Context(), c, r.PathValue("name"), r.URL.Query().Get("digest"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(archive)))
		w.Header().Set("Warden-Skill-Digest", sk.Digest)
		_, _ = w.Write(archive)
		return nil
	}))

	if a.Kill != nil {
		mux.Handle("GET /v1/quarantine", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
			return answer(w, http.StatusOK)(a.Kill.Quarantines(r.Context()))
		}))
		mux.Handle("POST /v1/quarantine/{digest}/lift", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
			var req apitype.QuarantineLiftRequest
			if err := decodeJSON(w, r, &req); err != nil {
				return err
			}
			return answer(w, http.StatusOK)(a.Kill.LiftQuarantine(r.Context(), p, r.PathValue("digest"), req.Reason))
		}))
	}
}

// decodeLarge is decodeJSON with a limit of its own.
func decodeLarge(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return warden.Errorf(warden.EInvalid, "content type must be application/json")
	}
	if err := DecodeStrict(http.MaxBytesReader(w, r.Body, limit), v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return warden.Errorf(warden.ETooLarge, "request body is over %d bytes", limit)
		}
		return err
	}
	return nil
}
