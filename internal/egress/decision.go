package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/wardenhq/warden"
)

// DecisionAPI asks a warden server through its decision API (POST /v1/authorize and
// POST /v1/decisions/{id}/outcome), as the agent whose token Token returns. Every connection is
// thereby an audit event and counts against the agent's budgets, like any tool call.
type DecisionAPI struct {
	Server *url.URL
	Token  func(ctx context.Context) (string, error)
	HTTP   *http.Client
}

var _ Decider = (*DecisionAPI)(nil)

type authorizeBody struct {
	Tool      string         `json:"tool"`
	Action    string         `json:"action"`
	Resource  string         `json:"resource"`
	Arguments map[string]any `json:"arguments"`
}

// Arguments are what policy sees as context.args for a connection: host and port always, ip
// for an IP literal (a name is decided before it is resolved, so it has none), allow_host when
// the target matched the run's --allow-host list, probe on the proxy's IP-literal check.
func Arguments(r Request) map[string]any {
	args := map[string]any{"host": r.Target.Host, "port": r.Target.Port}
	if r.Target.Literal() {
		args["ip"] = r.Target.IP.String()
	}
	if r.AllowHost {
		args["allow_host"] = true
	}
	if r.Probe {
		args["probe"] = true
	}
	return args
}

// Decide asks whether the connection may be made. Any failure is an error, which the proxy
// treats as a denial.
func (d *DecisionAPI) Decide(ctx context.Context, r Request) (Decision, error) {
	body := authorizeBody{Tool: warden.EgressTool.Name, Action: warden.EgressConnect, Resource: r.Target.Resource(), Arguments: Arguments(r)}
	var resp struct {
		warden.Decision
	}
	if err := d.post(ctx, "/v1/authorize", body, &resp, http.StatusOK); err != nil {
		return Decision{}, err
	}
	allowed := warden.EffectAllows(resp.Effect)
	return Decision{ID: resp.ID, Allowed: allowed && resp.ID != "", Reason: resp.Reason, Message: resp.Message}, nil
}

// Outcome records what came of an allowed connection: status, duration and bytes each way.
func (d *DecisionAPI) Outcome(ctx context.Context, id string, o Outcome) error {
	body := map[string]any{
		"status":     o.Status,
		"latency_ms": float64(o.Duration.Microseconds()) / 1000,
		"bytes_in":   o.BytesIn,
		"bytes_out":  o.BytesOut,
	}
	if o.Addr != "" {
		body["remote_addr"] = o.Addr
	}
	return d.post(ctx, "/v1/decisions/"+url.PathEscape(id)+"/outcome", body, nil, http.StatusNoContent)
}

func (d *DecisionAPI) post(ctx context.Context, path string, in, out any, want int) error {
	token, err := d.Token(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Server.JoinPath(path).String(), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	hc := d.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return warden.WrapError(warden.EUnavailable, "cannot reach warden's decision API", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return warden.Errorf(warden.EUnavailable, "warden's decision API answered %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decision API answer: %w", err)
		}
	}
	return nil
}
