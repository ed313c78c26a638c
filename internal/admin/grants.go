package admin

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// Grants returns the agent's grants in the policies in force: the permits whose principal
// names it (cedar.Engine.PermitsOf), for the web console's agent page.
func (s *Service) Grants(ctx context.Context, agent string) ([]apitype.Policy, error) {
	if err := warden.ValidateName("agent", agent); err != nil {
		return nil, err
	}
	engine, err := s.engineFor(ctx, nil)
	if err != nil {
		return nil, err
	}
	return engine.PermitsOf(agent), nil
}
