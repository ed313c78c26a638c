// Package skills registers Agent Skills and serves them to agents: a skill is accepted only
// when its files verify (canonical digest, archive safety, SKILL.md), a trusted publisher signed
// its digest or an admin accepted it unsigned with a reason, the scanner found nothing high or an
// admin overrode it with a reason, and its digest is not quarantined. Agents get the skills a
// skill.load permit grants them, re-verified from the stored bytes, every decision audited.
package skills

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/scan"
	"github.com/wardenhq/warden/internal/skill"
	"github.com/wardenhq/warden/internal/supply"
)

// Store is the part of the store skills use.
type Store interface {
	warden.SkillStore
	AgentByID(ctx context.Context, id string) (*warden.Agent, error)
	Agent(ctx context.Context, name string) (*warden.Agent, error)
	Quarantined(ctx context.Context) ([]*warden.Quarantine, error)
}

// KillState is what skills need of the kill switch's snapshot.
type KillState interface {
	// Quarantined reports whether a digest is quarantined.
	Quarantined(digest string) bool
	// Lockdown is the lockdown in force.
	Lockdown() warden.Lockdown
}

// Service adds, lists, removes and serves skills.
type Service struct {
	Store      Store
	Audit      warden.AuditLog
	Publishers []supply.Publisher
	// Sigstore verifies Sigstore bundles against the configured trusted root; nil: none is
	// configured and bundles are refused.
	Sigstore *supply.Sigstore
	// Kill returns this replica's kill state, read on every agent request.
	Kill   func() KillState
	Clock  clock.Clock
	Limits skill.Limits // zero: skill.DefaultLimits
}

func (s *Service) limits() skill.Limits {
	if s.Limits == (skill.Limits{}) {
		return skill.DefaultLimits
	}
	return s.Limits
}

func checkReason(what, reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", warden.Errorf(warden.EInvalid, "%s needs a reason: say why, e.g. --reason 'vendored from acme, reviewed in PR 12'", what)
	}
	if len(reason) > 1024 || !utf8.ValidString(reason) {
		return "", warden.Errorf(warden.EInvalid, "reason must be valid text of at most 1024 bytes")
	}
	return reason, nil
}

// Add registers a skill version. Every refusal is an audit event (admin.skill.refuse) naming
// why; an acceptance is admin.skill.add with the signer, and the reasons given for an unsigned
// skill or overridden findings.
func (s *Service) Add(ctx context.Context, p *warden.Principal, req apitype.SkillAddRequest) (*apitype.SkillAdded, error) {
	sk, archive, err := s.check(ctx, req)
	if err != nil {
		resource := "skill:" + req.Name
		if sk != nil {
			resource = "skill:" + sk.Name + "@" + sk.Digest
		}
		reason := warden.EventSkillRefuse
		if warden.ErrorCode(err) == warden.EConflict { // the one conflict of check
			reason = warden.ReasonQuarantined
		}
		if aerr := s.record(ctx, p, warden.EventSkillRefuse, resource, warden.EffectDeny, reason, warden.ErrorMessage(err)); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	sk.AddedBy, sk.AddedAt = p.Name, clock.Or(s.Clock).Now().UTC()
	added, err := s.Store.AddSkill(ctx, sk, archive)
	if err != nil {
		return nil, err
	}
	if !added {
		existing, err := s.Store.Skill(ctx, sk.Name, sk.Digest)
		if err != nil {
			return nil, err
		}
		return &apitype.SkillAdded{Skill: existing}, nil
	}
	msg := "signed by " + sk.Signer
	if sk.Signer == warden.SignerUnsigned {
		msg = "unsigned: " + sk.UnsignedReason
	}
	if sk.OverrideReason != "" {
		msg += "; high findings overridden: " + sk.OverrideReason
	}
	var risk warden.Risk
	if sk.Signer == warden.SignerUnsigned || sk.OverrideReason != "" {
		risk = warden.RiskHigh // a trust rule was waived: an alert on the high-risk stream
	}
	return &apitype.SkillAdded{Skill: sk, Added: true},
		s.recordRisk(ctx, p, risk, warden.EventSkillAdd, "skill:"+sk.Name+"@"+sk.Digest, warden.EffectAllow, warden.EventSkillAdd, msg)
}

// check verifies a skill for Add and returns it with its canonical archive. The skill is
// returned with an error too once its name and digest are known, for the audit event.
func (s *Service) check(ctx context.Context, req apitype.SkillAddRequest) (*warden.Skill, []byte, error) {
	if req.AllowUnsigned {
		r, err := checkReason("--allow-unsigned", req.UnsignedReason)
		if err != nil {
			return nil, nil, err
		}
		req.UnsignedReason = r
	}
	if req.OverrideFindings {
		r, err := checkReason("--override-findings", req.OverrideReason)
		if err != nil {
			return nil, nil, err
		}
		req.OverrideReason = r
	}
	t, err := skill.ReadArchive(req.Archive, s.limits())
	if err != nil {
		return nil, nil, err
	}
	m, err := t.Manifest()
	if err != nil {
		return nil, nil, err
	}
	name := m.Name
	if req.Name != "" {
		if err := skill.ValidateName(req.Name); err != nil {
			return nil, nil, err
		}
		name = req.Name
	}
	digest := t.Digest()
	sk := &warden.Skill{Name: name, Digest: digest, Description: m.Description, License: m.License,
		AllowedTools: m.AllowedTools, Size: t.Size, Files: len(t.Files)}
	if req.Digest != "" && req.Digest != digest {
		return sk, nil, warden.Errorf(warden.EInvalid, "digest mismatch: the files received give %s, not %s; the skill changed on the way or after it was hashed", digest, req.Digest)
	}
	if err := s.checkNotQuarantined(ctx, digest); err != nil {
		return sk, nil, err
	}
	switch {
	case req.Signature != "":
		signer, err := s.verifySignature(digest, []byte(req.Signature))
		if err != nil {
			return sk, nil, err
		}
		sk.Signer = signer
	case req.AllowUnsigned:
		sk.Signer, sk.UnsignedReason = warden.SignerUnsigned, req.UnsignedReason
	default:
		return sk, nil, warden.Errorf(warden.EForbidden, "skill %s@%s is not signed: give --signature FILE (a minisign signature or a Sigstore bundle over the digest string), or, as an admin, --allow-unsigned --reason TEXT", name, digest)
	}
	findings := supply.ScanTree(t, name, scan.Options{})
	if len(findings) > 0 {
		if sk.Findings, err = json.Marshal(findings); err != nil {
			return sk, nil, err
		}
	}
	if scan.Blocking(findings) {
		if !req.OverrideFindings {
			return sk, nil, warden.Errorf(warden.EForbidden, "the scanner blocks skill %s: %s; see them with 'warden skill scan PATH', or as an admin accept them with --override-findings --reason TEXT", name, supply.Summary(findings))
		}
		sk.OverrideReason = req.OverrideReason
	}
	var buf bytes.Buffer
	if err := t.Archive(&buf); err != nil {
		return sk, nil, fmt.Errorf("writing the canonical archive: %w", err)
	}
	return sk, buf.Bytes(), nil
}

// verifySignature verifies a signature over digest: a Sigstore bundle (told by its content)
// against the Sigstore trusted root and identities, anything else as a minisign signature.
func (s *Service) verifySignature(digest string, sig []byte) (string, error) {
	if supply.IsBundle(sig) {
		if s.Sigstore == nil {
			return "", warden.Errorf(warden.EForbidden, "the signature is a Sigstore bundle, and this server has no Sigstore trusted root to verify it against (supply_chain.sigstore_trusted_root)")
		}
		return s.Sigstore.VerifyBundle(sig, digest)
	}
	return supply.Verify(s.Publishers, digest, sig)
}

// checkNotQuarantined reads the store, not only this replica's snapshot, so that a digest
// quarantined on another replica a moment ago cannot be added here.
func (s *Service) checkNotQuarantined(ctx context.Context, digest string) error {
	if s.Kill().Quarantined(digest) {
		return quarantined(digest)
	}
	qs, err := s.Store.Quarantined(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.Digest == digest {
			return quarantined(digest)
		}
	}
	return nil
}

func quarantined(digest string) error {
	return warden.Errorf(warden.EConflict, "%s is quarantined: it cannot be added or served until an admin runs 'warden quarantine lift %s --reason TEXT'", digest, digest)
}

// List lists versions of one skill, or of every skill.
func (s *Service) List(ctx context.Context, name string) ([]*warden.Skill, error) {
	return s.Store.Skills(ctx, name)
}

// Show returns a version (the newest when digest is ""), whether it is quarantined, and who
// may load it.
func (s *Service) Show(ctx context.Context, name, digest string) (*apitype.SkillInfo, error) {
	sk, err := s.Store.Skill(ctx, name, digest)
	if err != nil {
		return nil, err
	}
	info := &apitype.SkillInfo{Skill: sk, GrantedTo: []string{}}
	qs, err := s.Store.Quarantined(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		if q.Digest == sk.Digest {
			info.Quarantined, info.QuarantineReason = true, q.Reason
		}
	}
	grants, err := s.Store.SkillGrants(ctx)
	if err != nil {
		return nil, err
	}
	for agent, names := range grants {
		if slices.Contains(names, name) {
			info.GrantedTo = append(info.GrantedTo, agent)
		}
	}
	slices.Sort(info.GrantedTo)
	return info, nil
}

// Remove removes a version, or every version of a skill.
func (s *Service) Remove(ctx context.Context, p *warden.Principal, name, digest string) (*apitype.SkillRemoved, error) {
	n, err := s.Store.RemoveSkill(ctx, name, digest)
	if err != nil {
		return nil, err
	}
	resource := "skill:" + name
	if digest != "" {
		resource += "@" + digest
	}
	return &apitype.SkillRemoved{Name: name, Digest: digest, Versions: n},
		s.record(ctx, p, warden.EventSkillRemove, resource, warden.EffectAllow, warden.EventSkillRemove, fmt.Sprintf("%d version(s) removed", n))
}

// Grant lets an agent load a skill; Revoke takes it back.
func (s *Service) Grant(ctx context.Context, p *warden.Principal, agent, name string) error {
	if err := skill.ValidateName(name); err != nil {
		return err
	}
	if _, err := s.Store.Agent(ctx, agent); err != nil {
		return err
	}
	if err := s.Store.GrantSkill(ctx, agent, name); err != nil {
		return err
	}
	return s.record(ctx, p, warden.EventSkillGrant, "skill:"+name, warden.EffectAllow, warden.EventSkillGrant, "granted to agent "+agent)
}

// Revoke takes a grant back.
func (s *Service) Revoke(ctx context.Context, p *warden.Principal, agent, name string) error {
	if err := s.Store.RevokeSkill(ctx, agent, name); err != nil {
		return err
	}
	return s.record(ctx, p, warden.EventSkillRevoke, "skill:"+name, warden.EffectAllow, warden.EventSkillRevoke, "revoked from agent "+agent)
}

func (s *Service) record(ctx context.Context, p *warden.Principal, event, resource, effect, reason, msg string) error {
	return s.recordRisk(ctx, p, "", event, resource, effect, reason, msg)
}

// recordRisk is record with the event's risk set by its producer ("": by its kind).
func (s *Service) recordRisk(ctx context.Context, p *warden.Principal, risk warden.Risk, event, resource, effect, reason, msg string) error {
	ev := &warden.AuditEvent{
		Type:     event,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Source: admin.Source(ctx)},
		Target:   warden.EventTarget{Resource: resource, Risk: risk},
		Decision: warden.EventDecision{Effect: effect, Reason: reason, Message: msg},
	}
	if effect == warden.EffectAllow {
		ev.Outcome = warden.EventOutcome{Status: warden.StatusOK}
	}
	return s.Audit.Append(ctx, ev)
}

// policies compiles the grants as they are in the store now, so that a grant or revoke on any
// replica holds on the next request here.
func (s *Service) policies(ctx context.Context) (*cedar.SkillPolicies, error) {
	grants, err := s.Store.SkillGrants(ctx)
	if err != nil {
		return nil, err
	}
	return cedar.CompileSkillGrants(grants)
}
