package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Control is the runner's side of the server's runner API:
//
//	POST   /v1/runners               register  → 201 {"id", "lease_seconds", "secret"}; 401/403 when the agent may not act
//	GET    /v1/runners/{id}/control  server-sent events: "lease" (data {"lease_seconds"}), "terminate" (data {"reason"})
//	POST   /v1/runners/{id}/report   {"event": "terminated"|"exited", "reason", "processes_killed", "exit_code"} → 204
//	DELETE /v1/runners/{id}          on normal exit → 204
//
// Registration and the control stream carry the agent's bearer token; the report and the
// deregistration carry the runner's own secret from its registration, so that they still work
// after a kill has killed the agent's tokens and client secret.
type Control struct {
	Server *url.URL
	Token  func(ctx context.Context) (string, error)
	HTTP   *http.Client // without a timeout: the control stream lasts as long as the run
}

// Registration is the server's answer to a runner's registration.
type Registration struct {
	ID           string `json:"id"`
	LeaseSeconds int    `json:"lease_seconds"`
	Secret       string `json:"secret"` // authenticates SendReport and Deregister
}

// Lease is how long the runner may go without hearing from the server.
func (r Registration) Lease() time.Duration {
	if r.LeaseSeconds <= 0 {
		return 30 * time.Second
	}
	return time.Duration(r.LeaseSeconds) * time.Second
}

// Report is what the runner tells the server when its sandbox ends.
type Report struct {
	Event           string `json:"event"` // terminated or exited
	Reason          string `json:"reason,omitempty"`
	ProcessesKilled int    `json:"processes_killed"`
	ExitCode        int    `json:"exit_code"`
}

// refusedError is an answer that says the agent may not run (401, 403), or that the server
// no longer knows the runner (404).
type refusedError struct {
	status int
	msg    string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("warden refused the runner (%d): %s", e.status, e.msg)
}

// Register registers a sandbox about to start.
func (c *Control) Register(ctx context.Context, hostname string, pid int, command string) (Registration, error) {
	var reg Registration
	body := map[string]any{"hostname": hostname, "pid": pid, "command": command}
	if err := c.call(ctx, http.MethodPost, "/v1/runners", "", body, &reg, http.StatusCreated); err != nil {
		return reg, err
	}
	if reg.ID == "" || reg.Secret == "" {
		return reg, warden.Errorf(warden.EUnavailable, "warden registered the runner without an id or secret")
	}
	return reg, nil
}

// SendReport reports how the sandbox ended.
func (c *Control) SendReport(ctx context.Context, reg Registration, r Report) error {
	return c.call(ctx, http.MethodPost, "/v1/runners/"+url.PathEscape(reg.ID)+"/report", reg.Secret, r, nil, http.StatusNoContent)
}

// Deregister says the runner is done.
func (c *Control) Deregister(ctx context.Context, reg Registration) error {
	return c.call(ctx, http.MethodDelete, "/v1/runners/"+url.PathEscape(reg.ID), reg.Secret, nil, nil, http.StatusNoContent)
}

// Event is one event of the control stream.
type Event struct {
	Name         string
	Reason       string // terminate
	LeaseSeconds int    // lease
}

// Stream opens the control stream and calls on for each event until the stream ends, ctx
// ends, or on returns false. It returns nil when the server closed the stream, and a
// *refusedError when the server will not open it.
func (c *Control) Stream(ctx context.Context, id string, opened func(), on func(Event) bool) error {
	token, err := c.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Server.JoinPath("/v1/runners", id, "control").String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http().Do(req)
	if err != nil {
		return warden.WrapError(warden.EUnavailable, "cannot reach warden's control channel", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	opened()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), 64<<10)
	var name string
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name != "" || data.Len() > 0 {
				ev := Event{Name: name}
				if ev.Name == "" {
					ev.Name = "message"
				}
				var d struct {
					Reason       string `json:"reason"`
					LeaseSeconds int    `json:"lease_seconds"`
				}
				_ = json.Unmarshal(data.Bytes(), &d)
				ev.Reason, ev.LeaseSeconds = d.Reason, d.LeaseSeconds
				if !on(ev) {
					return nil
				}
			}
			name = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// a comment: a keep-alive
			on(Event{Name: "comment"})
		case strings.HasPrefix(line, "event:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func (c *Control) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// call makes one request, authenticated by secret, or by the agent's token when secret is "".
func (c *Control) call(ctx context.Context, method, path, secret string, in, out any, want int) error {
	token := secret
	if token == "" {
		var err error
		if token, err = c.Token(ctx); err != nil {
			return err
		}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server.JoinPath(path).String(), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http().Do(req)
	if err != nil {
		return warden.WrapError(warden.EUnavailable, "cannot reach warden at "+c.Server.String(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return statusError(resp)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			return warden.WrapError(warden.EUnavailable, "warden's answer is not the JSON expected", err)
		}
	}
	return nil
}

// statusError turns an unexpected answer into an error: a refusal for 401, 403 and 404, which
// mean the agent may not run (or the server forgot the runner), unavailable otherwise.
func statusError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &body) == nil && body.Error.Message != "" {
		msg = body.Error.Message
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return &refusedError{status: resp.StatusCode, msg: msg}
	}
	return warden.Errorf(warden.EUnavailable, "warden answered %d: %s", resp.StatusCode, msg)
}
