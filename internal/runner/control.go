package runner

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

// Control is the runner's side of the server's runner API, through apiclient:
//
//	POST   /v1/runners               register {"hostname", "pid", "command", "skills"} → 201 {"id", "lease_seconds", "secret"};
//	                                 401/403 when the agent may not act, 409 when a skill's digest is quarantined
//	GET    /v1/runners/{id}/control  server-sent events: "lease" (data {"lease_seconds"}), "terminate" (data {"reason"})
//	POST   /v1/runners/{id}/report   {"event": "terminated"|"exited", "reason", "processes_killed", "exit_code"} → 204
//	DELETE /v1/runners/{id}          on normal exit → 204
//
// Registration and the control stream carry the agent's bearer token (the client's token
// source); the report and the deregistration carry the runner's own secret from its
// registration, so that they still work after a kill has killed the agent's tokens and client
// secret. The client has no timeout: the control stream lasts as long as the run.
type Control struct {
	API *apiclient.Client
}

// Registration is the server's answer to a runner's registration.
type Registration = apitype.RunnerRegistered

// Report is what the runner tells the server when its sandbox ends.
type Report = apitype.RunnerReport

// leaseOf is how long the runner may go without hearing from the server.
func leaseOf(r Registration) time.Duration {
	if r.LeaseSeconds <= 0 {
		return 30 * time.Second
	}
	return time.Duration(r.LeaseSeconds) * time.Second
}

// refusal says whether err is an answer that says the agent may not run (401, 403), that the
// sandbox may not (409: a skill it mounts is quarantined), or that the server no longer knows
// the runner (404), and returns the server's message and status.
func refusal(err error) (msg string, status int, refused bool) {
	switch status = apiclient.Status(err); status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict, http.StatusNotFound:
		return warden.ErrorMessage(err), status, true
	}
	return "", status, false
}

// Register registers a sandbox about to start, with the skills it mounts.
func (c *Control) Register(ctx context.Context, req apitype.RunnerRequest) (Registration, error) {
	reg, err := c.API.RegisterRunner(ctx, req)
	if err != nil {
		return Registration{}, err
	}
	return *reg, nil
}

// SendReport reports how the sandbox ended.
func (c *Control) SendReport(ctx context.Context, reg Registration, r Report) error {
	return c.API.ReportRunner(ctx, reg.ID, reg.Secret, r)
}

// Deregister says the runner is done.
func (c *Control) Deregister(ctx context.Context, reg Registration) error {
	return c.API.DeregisterRunner(ctx, reg.ID, reg.Secret)
}

// Stream opens the control stream and calls on for each event until the stream ends, ctx
// ends, or on returns false. It returns nil when the server closed the stream, and an error
// refusal recognises when the server will not open it.
func (c *Control) Stream(ctx context.Context, id string, opened func(), on func(apiclient.ControlEvent) bool) error {
	err := c.API.RunnerControl(ctx, id, opened, func(ev apiclient.ControlEvent) error {
		if !on(ev) {
			return apiclient.ErrStop
		}
		return nil
	})
	if err != nil && apiclient.Status(err) == 0 && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return warden.WrapError(warden.EUnavailable, "warden's control channel", err)
	}
	return err
}
