package server

import (
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/skills"
	"github.com/wardenhq/warden/internal/supply"
)

// newSkills builds the skills service over the kill state, so that a quarantine reaches skills
// the moment the snapshot changes.
func newSkills(cfg config.Config, store skills.Store, auditLog warden.AuditLog, kill *killswitch.State, clk clock.Clock, sigstore *supply.Sigstore) (*skills.Service, error) {
	publishers, err := cfg.SupplyChain.Trusted()
	if err != nil {
		return nil, err
	}
	return &skills.Service{Store: store, Audit: auditLog, Publishers: publishers, Sigstore: sigstore, Clock: clk,
		Kill: func() skills.KillState { return kill.Load() }}, nil
}
