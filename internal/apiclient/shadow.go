package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// ApplyShadow stores files as the candidate policy set of shadow mode.
func (c *Client) ApplyShadow(ctx context.Context, req apitype.PolicyApply) (*warden.PolicyShadow, error) {
	return call[*warden.PolicyShadow](ctx, c, http.MethodPut, "/v1/policies/shadow", req)
}

// ShadowPolicies returns the candidate policy set with its files.
func (c *Client) ShadowPolicies(ctx context.Context) (*warden.PolicyShadow, error) {
	return call[*warden.PolicyShadow](ctx, c, http.MethodGet, "/v1/policies/shadow", nil)
}

// PromoteShadow makes the candidate the live policy set's next version.
func (c *Client) PromoteShadow(ctx context.Context, reason string) (*warden.PolicySet, error) {
	return call[*warden.PolicySet](ctx, c, http.MethodPost, "/v1/policies/shadow/promote", apitype.ReasonRequest{Reason: reason})
}

// DropShadow removes the candidate policy set unpromoted and returns it, without its files.
func (c *Client) DropShadow(ctx context.Context, reason string) (*warden.PolicyShadow, error) {
	return call[*warden.PolicyShadow](ctx, c, http.MethodDelete, "/v1/policies/shadow", apitype.ReasonRequest{Reason: reason})
}

// ShadowReport summarises the differences recorded since a time (an RFC 3339 time or a
// duration ago; "": since the candidate was applied).
func (c *Client) ShadowReport(ctx context.Context, since string) (*apitype.PolicyShadowReport, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	return call[*apitype.PolicyShadowReport](ctx, c, http.MethodGet, "/v1/policies/shadow/report?"+q.Encode(), nil)
}
