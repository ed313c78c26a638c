package detect

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
)

// Service is what people see of detection: the findings, their acknowledgement, an agent's
// baseline. It reads the store, so every replica answers alike.
type Service struct {
	Store  Store
	Audit  warden.AuditLog
	Config Config
	Clock  clock.Clock
}

// maxAlerts bounds one listing.
const maxAlerts = 1000

// Alerts returns the findings after seq after (0: the newest), of agent when it is not "",
// oldest first, with their acknowledgements.
func (s *Service) Alerts(ctx context.Context, agent string, after int64, limit int) ([]apitype.Alert, error) {
	if limit <= 0 || limit > maxAlerts {
		limit = maxAlerts
	}
	f := warden.AuditFilter{Type: warden.EventDetectPrefix + "*", AfterSeq: after, Newest: after == 0, Limit: limit}
	if agent != "" {
		// The store selects the agent's findings (their resource is agent:<name>), so a page
		// of them reaches back to the oldest rather than filtering the newest of everyone's.
		if err := warden.ValidateName("agent", agent); err != nil {
			return nil, err
		}
		f.Resource = "agent:" + agent
	}
	// Without a cursor, the newest; paging on from one, the findings right after it, oldest
	// first, so that the next page's cursor skips none.
	evs, err := s.Store.AuditEvents(ctx, f)
	if err != nil {
		return nil, err
	}
	out := []apitype.Alert{}
	var ids []string
	for _, ev := range evs {
		a, ok := apitype.AlertOf(ev)
		if !ok || (agent != "" && a.Agent != agent) {
			continue
		}
		out = append(out, a)
		ids = append(ids, a.ID)
	}
	acks, err := s.Store.DetectAcks(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Ack = acks[out[i].ID]
	}
	return out, nil
}

// Alert returns one finding by its event id.
func (s *Service) Alert(ctx context.Context, id string) (*apitype.Alert, error) {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "%q is not a finding's id (an audit event id, 26 characters)", id)
	}
	// An event id is a ULID: its time narrows the search to one millisecond.
	at := ulid.Time(u.Time())
	evs, err := s.Store.AuditEvents(ctx, warden.AuditFilter{Type: warden.EventDetectPrefix + "*", Since: at, Until: at.Add(time.Millisecond), Limit: maxAlerts})
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		if a, ok := apitype.AlertOf(ev); ok && a.ID == id {
			acks, err := s.Store.DetectAcks(ctx, []string{id})
			if err != nil {
				return nil, err
			}
			a.Ack = acks[id]
			return &a, nil
		}
	}
	return nil, warden.Errorf(warden.ENotFound, "no finding %s", id)
}

// Ack records that a person looked at a finding, and why it is fine (or handled): an
// alert.ack audit event. It changes no containment: a hold lapses, a suspension is resumed and
// a kill restored by their own commands.
func (s *Service) Ack(ctx context.Context, p *warden.Principal, id, reason string) (*apitype.Alert, error) {
	reason, err := warden.CheckReason(reason, true)
	if err != nil {
		return nil, err
	}
	a, err := s.Alert(ctx, id)
	if err != nil {
		return nil, err
	}
	ack := &warden.DetectAck{Finding: id, By: p.Name, Reason: reason, At: clock.Or(s.Clock).Now().UTC()}
	if err := s.Store.AckDetectFinding(ctx, ack); err != nil {
		return nil, err
	}
	ev := &warden.AuditEvent{
		Type:     warden.EventAlertAck,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Email: p.Email},
		Target:   warden.EventTarget{Tool: a.Tool, Action: a.Action, Resource: "agent:" + a.Agent},
		Decision: warden.EventDecision{ID: id, Reason: a.Kind, Message: reason},
	}
	if err := s.Audit.Append(ctx, ev); err != nil {
		return nil, err
	}
	a.Ack = ack
	return a, nil
}

// Baseline returns what is normal for an agent, as the store last saved it.
func (s *Service) Baseline(ctx context.Context, agent string) (*apitype.Baseline, error) {
	if err := warden.ValidateName("agent", agent); err != nil {
		return nil, err
	}
	bodies, err := s.Store.DetectBaselines(ctx, agent)
	if err != nil {
		return nil, err
	}
	body, ok := bodies[agent]
	if !ok {
		return nil, warden.Errorf(warden.ENotFound, "no baseline for agent %s yet: it has made no call since detection began", agent)
	}
	var b Baseline
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, warden.WrapError(warden.EInternal, "the stored baseline", err)
	}
	out := &apitype.Baseline{
		Agent: agent, Learned: b.Learned(s.Config.withDefaults()), Since: b.Since, Last: b.Last, Calls: b.Calls, Denials: b.Denials,
		RatePerMin: b.Rate.Mean, RateSD: b.Rate.SD(), DenialShare: b.DenialShare.Mean, BudgetBurnPerMin: b.BudgetBurn.Mean, BudgetBurnSD: b.BudgetBurn.SD(),
		BytesPerMin: b.BytesSent.Mean, BytesSD: b.BytesSent.SD(), ApprovalsPerMin: b.Approvals.Mean, ApprovalsSD: b.Approvals.SD(),
		Actions: counts(b.Actions), Resources: counts(b.Resources), ArgumentKeys: counts(b.ArgumentKeys),
		Hosts: counts(b.Hosts), Transitions: counts(b.Transitions), HoursOfWeek: b.HourOfWeek,
	}
	for h, n := range b.HourOfWeek {
		out.HoursOfDay[h%24] += n
	}
	holds, err := s.Store.DetectHolds(ctx, clock.Or(s.Clock).Now())
	if err != nil {
		return nil, err
	}
	for _, h := range holds {
		if h.Agent == agent {
			out.Holds = append(out.Holds, *h)
		}
	}
	return out, nil
}

// counts lists a map's items, the most frequent first.
func counts(m map[string]int64) []apitype.Count {
	out := make([]apitype.Count, 0, len(m))
	for k, v := range m {
		out = append(out, apitype.Count{Item: k, Count: v})
	}
	slices.SortFunc(out, func(a, b apitype.Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Item, b.Item))
	})
	return out
}
