package skills

import (
	"context"
	"fmt"
	"net/url"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/skill"
)

// An agent's request is judged in this order, each step refusing on its own: the token (by the
// caller, with the agent's status and epoch), the lockdown, the skill.load permit, the
// quarantine, the stored bytes' digest. Every decision is an audit event written before the
// answer; when it cannot be written the answer is a refusal.

// ForAgent lists the skills the agent may load: for each granted skill, its newest version that
// is not quarantined. The listing is one audit event (skill.list) naming what was listed.
func (s *Service) ForAgent(ctx context.Context, c *warden.Claims) ([]apitype.AgentSkill, error) {
	a, err := s.Store.AgentByID(ctx, c.ClientID)
	if err != nil {
		return nil, err
	}
	if err := s.lockdown(ctx, a, c, "skills"); err != nil {
		return nil, err
	}
	sp, err := s.policies(ctx)
	if err != nil {
		return nil, err
	}
	grants, err := s.Store.SkillGrants(ctx)
	if err != nil {
		return nil, err
	}
	kill := s.Kill()
	out := []apitype.AgentSkill{}
	var listed []string
	for _, name := range grants[a.Name] {
		if sp.DecideSkill(a.Name, name).Effect != warden.EffectAllow {
			continue
		}
		sk, err := s.newestUsable(ctx, name, kill)
		if err != nil {
			return nil, err
		}
		if sk == nil {
			continue
		}
		out = append(out, apitype.AgentSkill{Name: sk.Name, Digest: sk.Digest, Description: sk.Description, Size: sk.Size,
			Files: sk.Files, Archive: "/v1/skills/" + url.PathEscape(sk.Name) + "/archive?digest=" + url.QueryEscape(sk.Digest)})
		listed = append(listed, sk.Name+"@"+sk.Digest)
	}
	d := warden.Decision{Effect: warden.EffectAllow, Reason: warden.ReasonPolicyAllow, Message: fmt.Sprintf("listed %d skill(s): %v", len(listed), listed)}
	if err := s.recordAgent(ctx, a, c, warden.EventSkillList, "skills", d); err != nil {
		return nil, err
	}
	return out, nil
}

// newestUsable is the newest version of a skill that is not quarantined, or nil.
func (s *Service) newestUsable(ctx context.Context, name string, kill KillState) (*warden.Skill, error) {
	versions, err := s.Store.Skills(ctx, name)
	if err != nil {
		return nil, err
	}
	for i := len(versions) - 1; i >= 0; i-- {
		if !kill.Quarantined(versions[i].Digest) {
			return versions[i], nil
		}
	}
	return nil, nil
}

// Archive serves a skill's canonical archive to an agent that may load it: the version named
// by digest, or ("") the newest that is not quarantined. The stored bytes are read back into a
// tree and their digest compared before they are served, so that bytes changed in the store are
// refused, not handed out. A download is a skill.loaded event; a refusal skill.denied.
func (s *Service) Archive(ctx context.Context, c *warden.Claims, name, digest string) ([]byte, *warden.Skill, error) {
	a, err := s.Store.AgentByID(ctx, c.ClientID)
	if err != nil {
		return nil, nil, err
	}
	resource := "skill:" + name
	if digest != "" {
		resource += "@" + digest
	}
	if err := s.lockdown(ctx, a, c, resource); err != nil {
		return nil, nil, err
	}
	sp, err := s.policies(ctx)
	if err != nil {
		return nil, nil, err
	}
	if d := sp.DecideSkill(a.Name, name); d.Effect != warden.EffectAllow {
		return nil, nil, s.deny(ctx, a, c, resource, d, warden.EForbidden)
	}
	kill := s.Kill()
	var sk *warden.Skill
	if digest == "" {
		if sk, err = s.newestUsable(ctx, name, kill); err == nil && sk == nil {
			err = warden.Errorf(warden.ENotFound, "skill %s has no version that is not quarantined", name)
		}
	} else {
		sk, err = s.Store.Skill(ctx, name, digest)
	}
	if err != nil {
		return nil, nil, err
	}
	resource = "skill:" + sk.Name + "@" + sk.Digest
	if kill.Quarantined(sk.Digest) {
		d := warden.Decision{Effect: warden.EffectDeny, Reason: warden.ReasonQuarantined, Message: sk.Digest + " is quarantined"}
		return nil, nil, s.deny(ctx, a, c, resource, d, warden.EConflict)
	}
	archive, err := s.Store.SkillArchive(ctx, sk.Name, sk.Digest)
	if err != nil {
		return nil, nil, err
	}
	t, err := skill.ReadArchive(archive, s.limits())
	if err != nil || t.Digest() != sk.Digest {
		d := warden.Decision{Effect: warden.EffectDeny, Reason: warden.ReasonInvalidRequest,
			Message: "the stored archive does not verify against its digest " + sk.Digest}
		return nil, nil, s.deny(ctx, a, c, resource, d, warden.EInternal)
	}
	d := warden.Decision{Effect: warden.EffectAllow, Reason: warden.ReasonPolicyAllow, Message: "archive served, digest re-verified",
		Policies: sp.DecideSkill(a.Name, name).Policies}
	if err := s.recordAgent(ctx, a, c, warden.EventSkillLoaded, resource, d); err != nil {
		return nil, nil, err
	}
	return archive, sk, nil
}

// lockdown refuses every skill while a lockdown is in force: loading instructions is acting.
func (s *Service) lockdown(ctx context.Context, a *warden.Agent, c *warden.Claims, resource string) error {
	if l := s.Kill().Lockdown(); l.Covers(nil) {
		d := warden.Decision{Effect: warden.EffectDeny, Reason: warden.ReasonLockdown, Message: "a lockdown is in force: " + l.Reason}
		return s.deny(ctx, a, c, resource, d, warden.EForbidden)
	}
	return nil
}

// deny records a refusal and returns it as an error of code; when the event cannot be written,
// that failure is returned instead (still a refusal).
func (s *Service) deny(ctx context.Context, a *warden.Agent, c *warden.Claims, resource string, d warden.Decision, code string) error {
	if err := s.recordAgent(ctx, a, c, warden.EventSkillDenied, resource, d); err != nil {
		return err
	}
	return warden.Errorf(code, "%s (%s)", d.Message, d.Reason)
}

func (s *Service) recordAgent(ctx context.Context, a *warden.Agent, c *warden.Claims, event, resource string, d warden.Decision) error {
	ev := &warden.AuditEvent{
		Type:     event,
		Actor:    warden.EventActor{Kind: warden.ActorAgent, ID: a.ID, Name: a.Name, Owner: a.Owner, SessionID: c.SessionID},
		Target:   warden.EventTarget{Action: "skill.load", Resource: resource},
		Decision: warden.EventDecision{Effect: d.Effect, Reason: d.Reason, Message: d.Message, Policies: d.Policies},
	}
	if d.Effect == warden.EffectAllow {
		ev.Outcome = warden.EventOutcome{Status: warden.StatusOK}
	}
	return s.Audit.Append(ctx, ev)
}
