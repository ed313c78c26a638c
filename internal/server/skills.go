package server

import (
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/skills"
)

// newSkills builds the skills service over the kill state, so that a quarantine reaches skills
// the moment the snapshot changes.
func newSkills(cfg config.Config, store skills.Store, auditLog warden.AuditLog, kill *killswitch.State, clk clock.Clock) (*skills.Service, error) {
	publishers, err := cfg.SupplyChain.Trusted()
	if err != nil {
		return nil, err
	}
	return &skills.Service{Store: store, Audit: auditLog, Publishers: publishers, Clock: clk,
		Kill: func() skills.KillState { return kill.Load() }}, nil
}
