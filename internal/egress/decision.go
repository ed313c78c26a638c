package egress

import (
	"context"
	"encoding/json"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
)

// DecisionAPI asks a warden server through its decision API (POST /v1/authorize and
// POST /v1/decisions/{id}/outcome), as the agent whose token API's token source returns. Every
// connection is thereby an audit event and counts against the agent's budgets, like any tool
// call.
type DecisionAPI struct {
	API *apiclient.Client
}

var _ Decider = (*DecisionAPI)(nil)

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
	args, err := json.Marshal(Arguments(r))
	if err != nil {
		return Decision{}, err
	}
	resp, err := d.API.Authorize(ctx, apitype.AuthorizeRequest{Tool: warden.EgressTool.Name, Action: warden.EgressConnect, Resource: r.Target.Resource(), Arguments: args})
	if err != nil {
		return Decision{}, err
	}
	allowed := warden.EffectAllows(resp.Effect)
	return Decision{ID: resp.ID, Allowed: allowed && resp.ID != "", Reason: resp.Reason, Message: resp.Message}, nil
}

// Outcome records what came of an allowed connection: status, duration and bytes each way.
func (d *DecisionAPI) Outcome(ctx context.Context, id string, o Outcome) error {
	return d.API.Outcome(ctx, id, apitype.OutcomeRequest{
		Status:     o.Status,
		LatencyMS:  float64(o.Duration.Microseconds()) / 1000,
		BytesIn:    o.BytesIn,
		BytesOut:   o.BytesOut,
		RemoteAddr: o.Addr,
	})
}
