package admin

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
)

// Terminator ends what an agent has running when it is suspended.
type Terminator interface {
	Terminate(ctx context.Context, a *warden.Agent, reason string) *killswitch.Report
}

// RestoreAgent makes a killed agent active again with a new client secret, returned once.
func (s *Service) RestoreAgent(ctx context.Context, p *warden.Principal, k *killswitch.Service, name, reason string) (*warden.Agent, string, error) {
	if err := warden.ValidateName("agent", name); err != nil {
		return nil, "", err
	}
	secret, hash := identity.NewSecret(AgentSecretPrefix)
	a, err := k.Restore(ctx, p, name, reason, hash)
	if err != nil {
		return nil, "", err
	}
	return a, secret, nil
}
