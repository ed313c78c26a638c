package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/gateway"
)

// ShadowStats is this replica's count of the calls compared with the candidate policy set
// (gateway.Shadow).
type ShadowStats interface {
	Stats() gateway.ShadowStats
}

// defaultShadowSince is the period a shadow report reads when none is given and no candidate
// is in force (with one, the report starts when it was applied).
const defaultShadowSince = "30d"

// ShadowPolicies returns the candidate policy set with its files.
func (s *Service) ShadowPolicies(ctx context.Context) (*warden.PolicyShadow, error) {
	return s.store.PolicyShadow(ctx)
}

// ApplyShadow stores files as the candidate policy set of shadow mode, replacing any: the set a
// `policy apply` of them would put in force (the generated grants of `warden apply` kept),
// checked to compile against the tools as an apply is. The live set is not changed.
func (s *Service) ApplyShadow(ctx context.Context, p *warden.Principal, req PolicyApply) (*warden.PolicyShadow, error) {
	comment, err := checkPolicyApply(req)
	if err != nil {
		return nil, err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	current, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if req.IfVersion != 0 && req.IfVersion != version {
		return nil, warden.Errorf(warden.EConflict, "policy version is %d, not %d: someone applied in between", version, req.IfVersion)
	}
	files := withGenerated(req.Files, current)
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := cedar.Compile(files, gateway.WithBuiltins(tools), version+1); err != nil {
		return nil, err
	}
	ps := &warden.PolicyShadow{Files: files, Base: version, CreatedBy: p.Name, CreatedAt: s.now().UTC(), Comment: comment}
	if err := s.store.PutPolicyShadow(ctx, ps); err != nil {
		return nil, err
	}
	s.reloadShadow(ctx, ps.Version)
	msg := fmt.Sprintf("shadow version %d beside version %d", ps.Version, version)
	if comment != "" {
		msg += ": " + comment
	}
	return ps, s.shadowEvent(ctx, p, warden.EventPolicyShadowApply, ps, msg)
}

// PromoteShadow makes the candidate the live set's next version, through the path every apply
// takes, and ends it. It is refused when the live set changed since the candidate was applied:
// promoting it then would undo that change unseen.
func (s *Service) PromoteShadow(ctx context.Context, p *warden.Principal, reason string) (*warden.PolicySet, error) {
	reason, err := validateReason(reason, false)
	if err != nil {
		return nil, err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	sh, err := s.store.PolicyShadow(ctx)
	if err != nil {
		return nil, err
	}
	_, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if version != sh.Base {
		return nil, warden.Errorf(warden.EConflict, "the live policies are version %d, and shadow version %d was applied beside version %d: apply it again (warden policy apply --shadow) to compare it with what is live now", version, sh.Version, sh.Base)
	}
	comment := fmt.Sprintf("promote shadow %d", sh.Version)
	if reason != "" {
		comment += ": " + reason
	}
	ps, err := s.storePolicies(ctx, p, sh.Files, sh.Base, warden.EventPolicyShadowPromote, comment)
	if ps == nil {
		return nil, err
	}
	if eerr := s.store.EndPolicyShadow(ctx, sh.Version); eerr != nil {
		// Promoted all the same; the candidate left is the live set and differs on nothing.
		s.log.Error("ending the promoted shadow policy set", "shadow_version", sh.Version, "err", eerr)
		return ps, eerr
	}
	s.reloadShadow(ctx, sh.Version)
	return ps, err
}

// DropShadow ends the candidate policy set unpromoted and returns it, without its files.
func (s *Service) DropShadow(ctx context.Context, p *warden.Principal, reason string) (*warden.PolicyShadow, error) {
	reason, err := validateReason(reason, false)
	if err != nil {
		return nil, err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	sh, err := s.store.PolicyShadow(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.store.EndPolicyShadow(ctx, sh.Version); err != nil {
		return nil, err
	}
	s.reloadShadow(ctx, sh.Version)
	sh.Files = nil
	msg := fmt.Sprintf("shadow version %d dropped", sh.Version)
	if reason != "" {
		msg += ": " + reason
	}
	return sh, s.shadowEvent(ctx, p, warden.EventPolicyShadowDrop, sh, msg)
}

// reloadShadow reloads this replica's gateway and tells the others, after a change of the
// candidate.
func (s *Service) reloadShadow(ctx context.Context, version int64) {
	if err := s.registry.Load(ctx); err != nil {
		s.log.Error("reloading the gateway after a shadow policy change", "shadow_version", version, "err", err)
	}
	s.publish(ctx, fleet.TopicPolicy, "shadow")
}

func (s *Service) shadowEvent(ctx context.Context, p *warden.Principal, typ string, sh *warden.PolicyShadow, msg string) error {
	return s.audit.Append(ctx, &warden.AuditEvent{
		Type:     typ,
		Actor:    humanActor(ctx, p),
		Target:   warden.EventTarget{Resource: fmt.Sprintf("policy_shadow:%d", sh.Version)},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: msg, PolicyVersion: sh.Base},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	})
}

// ShadowReport counts the differences the audit log holds since a time (an RFC 3339 time or a
// duration ago; default: when the candidate in force was applied), by tool, action, change of
// effect and candidate version, with this replica's count of the calls it compared.
func (s *Service) ShadowReport(ctx context.Context, since string) (*apitype.PolicyShadowReport, error) {
	if s.events == nil {
		return nil, warden.Errorf(warden.EUnavailable, "this server cannot read its audit log")
	}
	sh, err := s.store.PolicyShadow(ctx)
	switch {
	case warden.ErrorCode(err) == warden.ENotFound:
		sh = nil
	case err != nil:
		return nil, err
	}
	rep := &apitype.PolicyShadowReport{Shadow: sh, Groups: []apitype.PolicyShadowGroup{}}
	if sh != nil {
		// The gateway compiles it so at every reload; one that fails there compares nothing.
		tools, err := s.store.Tools(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := cedar.Compile(sh.Files, gateway.WithBuiltins(tools), sh.Version); err != nil {
			rep.ShadowError = warden.ErrorMessage(err)
		}
		sh.Files = nil
	}
	switch {
	case since != "":
		if rep.Since, err = parseSince(since, s.now()); err != nil {
			return nil, err
		}
	case sh != nil:
		rep.Since = sh.CreatedAt
	default:
		if rep.Since, err = parseSince(defaultShadowSince, s.now()); err != nil {
			return nil, err
		}
	}
	type key struct {
		tool, action, live, shadow string
		version                    int64
	}
	groups := map[key]*apitype.PolicyShadowGroup{}
	err = s.eachEvent(ctx, warden.EventPolicyShadowDiff, rep.Since, func(ev *warden.AuditEvent) bool {
		if rep.Diffs == apitype.MaxShadowReportEvents {
			rep.Truncated = true
			return false
		}
		var sd warden.PolicyShadowDecision
		if json.Unmarshal(ev.Target.Arguments, &sd) != nil {
			sd.Effect = "unknown" // a difference is counted even where its record cannot be read
		}
		rep.Diffs++
		k := key{ev.Target.Tool, ev.Target.Action, ev.Decision.Effect, sd.Effect, sd.ShadowVersion}
		g := groups[k]
		if g == nil {
			g = &apitype.PolicyShadowGroup{Tool: k.tool, Action: k.action, Live: k.live, Shadow: k.shadow, ShadowVersion: k.version, Examples: []string{}}
			groups[k] = g
		}
		g.Count++
		if len(g.Examples) < apitype.MaxShadowExamples {
			g.Examples = append(g.Examples, ev.ID)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	err = s.eachEvent(ctx, warden.EventPolicyShadowDropped, rep.Since, func(ev *warden.AuditEvent) bool {
		var d struct {
			Dropped int64 `json:"dropped"`
		}
		if json.Unmarshal(ev.Target.Arguments, &d) == nil && d.Dropped > 0 {
			rep.Dropped += d.Dropped
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		rep.Groups = append(rep.Groups, *g)
	}
	slices.SortFunc(rep.Groups, func(a, b apitype.PolicyShadowGroup) int {
		return cmp.Or(b.Count-a.Count, cmp.Compare(a.Tool, b.Tool), cmp.Compare(a.Action, b.Action),
			cmp.Compare(a.Live, b.Live), cmp.Compare(a.Shadow, b.Shadow), cmp.Compare(a.ShadowVersion, b.ShadowVersion))
	})
	if s.shadow != nil {
		st := s.shadow.Stats()
		rep.Replica = apitype.PolicyShadowReplica{ShadowVersion: st.Version, Since: st.Since, Compared: st.Compared, Diffs: st.Diffs, Dropped: st.Dropped}
	}
	return rep, nil
}

// eachEvent calls fn with every event of a type since a time, in log order, until fn returns
// false.
func (s *Service) eachEvent(ctx context.Context, typ string, since time.Time, fn func(ev *warden.AuditEvent) bool) error {
	f := warden.AuditFilter{Type: typ, Since: since, Limit: replayPage}
	for {
		evs, err := s.events.AuditEvents(ctx, f)
		if err != nil || len(evs) == 0 {
			return err
		}
		for _, ev := range evs {
			if ev.Type == typ && !fn(ev) {
				return nil
			}
		}
		f.AfterSeq = evs[len(evs)-1].Seq
	}
}
