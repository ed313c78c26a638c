package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

func setPath(name string) string { return "/v1/sets/" + url.PathEscape(name) }

// Sets lists the named value sets in force.
func (c *Client) Sets(ctx context.Context) ([]apitype.ValueSet, error) {
	return call[[]apitype.ValueSet](ctx, c, http.MethodGet, "/v1/sets", nil)
}

// Set returns one named value set.
func (c *Client) Set(ctx context.Context, name string) (*apitype.ValueSet, error) {
	var vs apitype.ValueSet
	return &vs, c.Do(ctx, http.MethodGet, setPath(name), nil, &vs)
}

// ApplySet stores a named value set as the next policy version.
func (c *Client) ApplySet(ctx context.Context, name string, req apitype.SetApply) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.Do(ctx, http.MethodPut, setPath(name), req, &ps)
}

// DeleteSet stores the next policy version without the named set.
func (c *Client) DeleteSet(ctx context.Context, name string) (*warden.PolicySet, error) {
	var ps warden.PolicySet
	return &ps, c.Do(ctx, http.MethodDelete, setPath(name), nil, &ps)
}
