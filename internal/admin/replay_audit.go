package admin

import (
	"fmt"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/gateway"
)

// policyReasons are the reasons of the decisions policy made, or that followed from policy
// (an approval asked for and answered). Any other refusal came before policy (kill state, an
// unknown tool, unreadable arguments) or after it (budgets, the audit log): a replay of policy
// cannot say what it would have been, so such an event is listed and not compared.
var policyReasons = map[string]bool{
	warden.ReasonPolicyAllow: true, warden.ReasonApprovalWaived: true, warden.ReasonNoMatchingPolicy: true,
	warden.ReasonForbidden: true, warden.ReasonPolicyError: true, warden.ReasonInvalidRequest: true,
	warden.ReasonApprovalRequired: true, warden.ReasonApprovalPending: true, warden.ReasonApproved: true,
	warden.ReasonApprovalRejected: true, warden.ReasonApprovalExpired: true,
}

// recordedAllowed reports whether a recorded tool.call went ahead without a person's approval
// being asked for: what a replay that now blocks it would change.
func recordedAllowed(effect string) bool { return effect == warden.EffectAllow }

// audit replays the tool.call events since a time, oldest first, each with the flow facts it
// recorded, at most apitype.MaxReplayAuditEvents of them.
func (r *replayer) audit(rep *apitype.ReplayReport, fa apitype.ReplayFromAudit) error {
	since, err := parseSince(fa.Since, r.s.now())
	if err != nil {
		return err
	}
	if r.s.events == nil {
		return warden.Errorf(warden.EUnavailable, "this server cannot read its audit log")
	}
	ar := &apitype.ReplayAuditReport{Since: since, Decisions: []apitype.ReplayAuditDecision{}}
	f := warden.AuditFilter{Type: warden.EventToolCall, Since: since, Limit: replayPage}
	for {
		evs, err := r.s.events.AuditEvents(r.ctx, f)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ar.Events == apitype.MaxReplayAuditEvents {
				ar.Truncated = true
				break
			}
			ar.Events++
			d, err := r.event(ev)
			if err != nil {
				return err
			}
			if d.Skipped == "" {
				ar.Replayed++
				if !d.Flow {
					ar.WithoutFlow++
				}
				switch {
				case recordedAllowed(d.Recorded) && d.Replayed != warden.EffectAllow:
					ar.WouldBlock++
					d.Changed = true
				case !recordedAllowed(d.Recorded) && d.Replayed == warden.EffectAllow:
					ar.WouldAllow++
					d.Changed = true
				}
				countStep(&rep.Summary, "", apitype.ReplayStepReport{Effect: d.Replayed, Labels: factsLabels(ev.Flow)})
			}
			ar.Decisions = append(ar.Decisions, d)
		}
		if ar.Truncated {
			break
		}
		f.AfterSeq = evs[len(evs)-1].Seq
	}
	rep.Audit = ar
	if ar.WithoutFlow > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf(noteWithoutFlow, ar.WithoutFlow))
	}
	return nil
}

// factsLabels returns the labels an event's flow facts recorded; none for an event without.
func factsLabels(f *warden.FlowFacts) warden.FlowLabels {
	if f == nil {
		return warden.FlowLabels{}
	}
	return f.Labels
}

// event rebuilds the request of one tool.call event, as recorded (redacted arguments stay
// redacted), and decides it again.
func (r *replayer) event(ev *warden.AuditEvent) (apitype.ReplayAuditDecision, error) {
	d := apitype.ReplayAuditDecision{Seq: ev.Seq, Time: ev.Time, DecisionID: ev.Decision.ID, Agent: ev.Actor.Name,
		Session: ev.Actor.SessionID, Tool: ev.Target.Tool, Action: ev.Target.Action, Resource: ev.Target.Resource,
		Recorded: ev.Decision.Effect, RecordedReason: ev.Decision.Reason, Flow: ev.Flow != nil}
	if !policyReasons[ev.Decision.Reason] {
		d.Skipped = "decided before or after policy (" + ev.Decision.Reason + ")"
		return d, nil
	}
	if err := warden.ValidateName("agent", ev.Actor.Name); err != nil {
		d.Skipped = "the event names no agent"
		return d, nil
	}
	agent, err := r.agent(ev.Actor.Name, ev.Actor.Owner)
	if err != nil {
		return d, err
	}
	t, err := r.tool(ev.Target.Tool)
	if err != nil {
		return d, err
	}
	args, argsErr := gateway.DecodeArguments(ev.Target.Arguments)
	// The facts policy saw; a call whose session had read nothing records none, and is decided
	// as a fresh session with the action's labels as they are now.
	facts := ev.Flow
	if facts == nil {
		labels, err := r.labels(t, ev.Target.Action)
		if err != nil {
			return d, err
		}
		facts = &warden.FlowFacts{Session: ev.Actor.SessionID, Labels: labels}
	}
	d.Session = facts.Session
	v := r.decide(agent, t, ev.Target.Action, ev.Target.Resource, args, argsErr, facts.Session, ev.Actor.OnBehalfOf, ev.Time, facts)
	d.Replayed, d.Reason, d.Policies = v.effect, v.reason, v.policies
	return d, nil
}

// parseSince reads an RFC 3339 time or a duration before now ("7d", "12h").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, warden.Errorf(warden.EInvalid, "from_audit needs since: an RFC 3339 time or a duration such as 7d")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, warden.Errorf(warden.EInvalid, "since %q: use an RFC 3339 time (2026-01-02T15:04:05Z) or a duration such as 7d or 12h", s)
	}
	return now.Add(-d), nil
}
