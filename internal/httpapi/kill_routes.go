package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
)

// KillRequest is the wire type apitype.KillRequest; see there.
type KillRequest = apitype.KillRequest

// LockdownRequest is the wire type apitype.LockdownRequest; see there.
type LockdownRequest = apitype.LockdownRequest

// QuarantineRequest is the wire type apitype.QuarantineRequest; see there.
type QuarantineRequest = apitype.QuarantineRequest

// RunnerRequest is the wire type apitype.RunnerRequest; see there.
type RunnerRequest = apitype.RunnerRequest

// RunnerRegistered is the wire type apitype.RunnerRegistered; see there.
type RunnerRegistered = apitype.RunnerRegistered

// RunnerReport is the wire type apitype.RunnerReport; see there.
type RunnerReport = apitype.RunnerReport

func (a *API) killRoutes(mux *http.ServeMux) {
	if a.Kill == nil {
		return
	}
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	operator := warden.RoleSet{warden.RoleOperator}
	adminOnly := warden.RoleSet{}
	mux.Handle("POST /v1/agents/{name}/kill", a.adminRoute(operator, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req KillRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Kill.Kill(r.Context(), p, r.PathValue("name"), req.Reason, req.DisableTools))
	}))
	mux.Handle("POST /v1/agents/{name}/restore", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ReasonRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		ag, secret, err := a.Admin.RestoreAgent(r.Context(), p, a.Kill, r.PathValue("name"), req.Reason)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, CreatedAgent{Agent: ag, ClientID: ag.ID, ClientSecret: secret})
		return nil
	}))
	mux.Handle("GET /v1/lockdown", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		writeJSON(w, http.StatusOK, a.Kill.State.Load().Lockdown())
		return nil
	}))
	mux.Handle("POST /v1/lockdown", a.adminRoute(operator, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req LockdownRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Kill.Lockdown(r.Context(), p, req.Reason, req.MinRisk))
	}))
	mux.Handle("POST /v1/lockdown/lift", a.adminRoute(adminOnly, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req ReasonRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Kill.Lift(r.Context(), p, req.Reason))
	}))
	mux.Handle("POST /v1/quarantine", a.adminRoute(operator, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		var req QuarantineRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
		return answer(w, http.StatusOK)(a.Kill.Quarantine(r.Context(), p, req.Digest, req.Reason))
	}))
	mux.Handle("GET /v1/runners", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
		return answer(w, http.StatusOK)(a.Kill.Runners.List(), nil)
	}))

	mux.Handle("POST /v1/runners", a.agentRoute(a.registerRunner))
	mux.Handle("GET /v1/runners/{id}/control", a.agentRoute(a.runnerControl))
	mux.Handle("POST /v1/runners/{id}/report", a.runnerRoute(a.runnerReport))
	mux.Handle("DELETE /v1/runners/{id}", a.runnerRoute(func(w http.ResponseWriter, r *http.Request, run *killswitch.Runner) error {
		a.Kill.Runners.Remove(run.ID)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}

// runnerRoute authenticates a runner by the secret it was given at registration. Only the
// report and the deregistration take it: they are how a runner says what became of its sandbox,
// which matters most after a kill, when the agent's credentials no longer work.
func (a *API) runnerRoute(h func(http.ResponseWriter, *http.Request, *killswitch.Runner) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := bearer(r)
		run, ok := a.Kill.Runners.ByRunnerSecret(r.PathValue("id"), secret)
		if !strings.HasPrefix(secret, runnerSecretPrefix) || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
			writeError(w, warden.Errorf(warden.EUnauthenticated, "the runner's secret from its registration is required"))
			return
		}
		if err := h(w, r, run); err != nil {
			a.logError(r, err)
			writeError(w, err)
		}
	})
}

const runnerSecretPrefix = "wrun_"

func (a *API) registerRunner(w http.ResponseWriter, r *http.Request, c *warden.Claims) error {
	var req RunnerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := killswitch.CheckRunnerSkills(req.Skills); err != nil {
		return err
	}
	if msg := killswitch.RunnerRefusal(a.Kill.State.Load(), c.AgentID(), c.Epoch, time.Now()); msg != "" {
		return warden.Errorf(warden.EForbidden, "this agent may not start a sandbox: %s", msg)
	}
	st, _ := a.Kill.State.Load().Agent(c.AgentID())
	secret, hash := identity.NewSecret(runnerSecretPrefix)
	run := a.Kill.Runners.Register(&killswitch.Runner{
		RunnerInfo: apitype.RunnerInfo{
			ID: warden.NewID("run_"), AgentID: c.AgentID(), Agent: st.Agent.Name, Hostname: truncate(req.Hostname, 255),
			PID: req.PID, Command: truncate(req.Command, 1024), Started: time.Now().UTC(), Skills: req.Skills,
		},
		SecretHash: [32]byte(hash),
	})
	// The quarantine is checked once the runner is in the registry: a quarantine whose reconcile
	// went through the registry before it was there published its snapshot first, so it is seen
	// here; one that comes later finds the runner there.
	if msg := killswitch.SkillRefusal(a.Kill.State.Load(), req.Skills); msg != "" {
		a.Kill.Runners.Remove(run.ID)
		a.appendRunnerEvent(r, run, c.SessionID, c.OnBehalfOf(), "sandbox.refused", msg, warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonQuarantined}, warden.EventOutcome{})
		return warden.Errorf(warden.EConflict, "this sandbox may not start: %s", msg)
	}
	a.recordRunner(r, run, c.SessionID, c.OnBehalfOf(), "sandbox.start", "pid "+fmt.Sprint(req.PID)+": "+run.Command+skillsNote(req.Skills))
	writeJSON(w, http.StatusCreated, RunnerRegistered{ID: run.ID, LeaseSeconds: killswitch.LeaseSeconds, Secret: secret})
	return nil
}

// runnerControl is the control channel: Server-Sent Events with a lease every LeaseSeconds/3,
// and terminate when the agent is killed, suspended or locked down, or a skill the sandbox
// mounted is quarantined. The reconciler sends the terminate (Runners.Terminate,
// TerminateDigest) whichever replica heard the change; the kill state is also checked every
// second, as a safety net.
func (a *API) runnerControl(w http.ResponseWriter, r *http.Request, c *warden.Claims) error {
	run, ok := a.Kill.Runners.Get(r.PathValue("id"), c.AgentID())
	if !ok {
		return warden.Errorf(warden.ENotFound, "no runner %q of this agent", r.PathValue("id"))
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return warden.Errorf(warden.EInternal, "streaming unsupported")
	}
	terminate, disconnect := a.Kill.Runners.Connect(run)
	defer disconnect()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(event string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		flusher.Flush()
	}
	lease := apitype.RunnerControl{LeaseSeconds: killswitch.LeaseSeconds}
	send("lease", lease)
	leaseEvery := time.NewTicker(killswitch.LeaseSeconds * time.Second / 3)
	defer leaseEvery.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case reason := <-terminate:
			send("terminate", apitype.RunnerControl{Reason: reason})
			return nil
		case <-check.C:
			snap := a.Kill.State.Load()
			msg := killswitch.RunnerRefusal(snap, c.AgentID(), c.Epoch, time.Now())
			if msg == "" {
				msg = killswitch.SkillRefusal(snap, run.Skills)
			}
			if msg != "" {
				send("terminate", apitype.RunnerControl{Reason: msg})
				return nil
			}
		case <-leaseEvery.C:
			send("lease", lease)
		}
	}
}

func (a *API) runnerReport(w http.ResponseWriter, r *http.Request, run *killswitch.Runner) error {
	var req RunnerReport
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Event != "terminated" && req.Event != "exited" {
		return warden.Errorf(warden.EInvalid, "event must be terminated or exited")
	}
	a.recordRunner(r, run, "", "", "sandbox."+req.Event, fmt.Sprintf("%s (processes killed %d, exit code %d)", truncate(req.Reason, 512), req.ProcessesKilled, req.ExitCode))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) recordRunner(r *http.Request, run *killswitch.Runner, session, onBehalfOf, event, msg string) {
	a.appendRunnerEvent(r, run, session, onBehalfOf, event, msg, warden.EventDecision{Effect: warden.EffectAllow}, warden.EventOutcome{Status: warden.StatusOK})
}

func (a *API) appendRunnerEvent(r *http.Request, run *killswitch.Runner, session, onBehalfOf, event, msg string, d warden.EventDecision, o warden.EventOutcome) {
	d.Message = msg
	ev := &warden.AuditEvent{
		Type:     event,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: run.AgentID, Name: run.Agent, SessionID: session, OnBehalfOf: onBehalfOf, Source: r.RemoteAddr},
		Target:   warden.EventTarget{Resource: "sandbox:" + run.ID},
		Decision: d,
		Outcome:  o,
	}
	if err := a.Audit.Append(r.Context(), ev); err != nil {
		a.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
}

// skillsNote names a sandbox's skills in its sandbox.start event.
func skillsNote(skills []apitype.RunnerSkill) string {
	if len(skills) == 0 {
		return ""
	}
	names := make([]string, len(skills))
	for i, s := range skills {
		names[i] = s.Name + "@" + s.Digest
	}
	return " (skills " + strings.Join(names, ", ") + ")"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
