package admin

import (
	"context"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
)

// KillSwitch commits changes of the kill state (agents, tools) on this replica: it announces
// them to the fleet and ends what they forbid here, through its one reconciler
// (killswitch.Service.Change).
type KillSwitch interface {
	Change(ctx context.Context, wait bool, write func(ctx context.Context, announce killswitch.Announce) error) (*killswitch.Report, error)
}

// Publisher announces a change that is not of the kill state (policies, budgets, admin
// tokens) to the other replicas (fleet.Bus).
type Publisher interface {
	Publish(ctx context.Context, topic fleet.Topic, name string) (int64, error)
}

// commit runs write, a change of the kill state, through the kill switch or, without one (a
// service with no gateway to enforce on), alone.
func (s *Service) commit(ctx context.Context, wait bool, write func(ctx context.Context, announce killswitch.Announce) error) (*killswitch.Report, error) {
	if s.kill == nil {
		return &killswitch.Report{}, write(ctx, func(fleet.Topic, string) {})
	}
	return s.kill.Change(ctx, wait, write)
}

// publish announces a change committed to the store. A failure is logged: the change stands,
// and the other replicas' poll carries it.
func (s *Service) publish(ctx context.Context, topic fleet.Topic, name string) {
	if s.fleet == nil {
		return
	}
	if _, err := s.fleet.Publish(ctx, topic, name); err != nil {
		s.log.Error("announcing a change to the fleet; other replicas learn of it at their next poll", "topic", topic, "name", name, "err", err)
	}
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
