package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wardenhq/warden/internal/apitype"
)

// Alerts lists detection's findings after seq after (0: the newest), of agent when it is not "".
func (c *Client) Alerts(ctx context.Context, agent string, after int64) ([]apitype.Alert, error) {
	q := url.Values{}
	if agent != "" {
		q.Set("agent", agent)
	}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	return call[[]apitype.Alert](ctx, c, http.MethodGet, "/v1/alerts?"+q.Encode(), nil)
}

// AckAlert acknowledges a finding.
func (c *Client) AckAlert(ctx context.Context, id string, req apitype.AckRequest) (*apitype.Alert, error) {
	var a apitype.Alert
	return &a, c.Do(ctx, http.MethodPost, "/v1/alerts/"+url.PathEscape(id)+"/ack", req, &a)
}

// Baseline returns what is normal for an agent, as detection learned it.
func (c *Client) Baseline(ctx context.Context, agent string) (*apitype.Baseline, error) {
	var b apitype.Baseline
	return &b, c.Do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(agent)+"/baseline", nil, &b)
}
