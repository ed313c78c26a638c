package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/killswitch"
)

// Store is what the detector reads and keeps.
type Store interface {
	warden.DetectStore
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
}

// Notifier wakes the detector when events are committed (audit.Log.Changed).
type Notifier interface {
	Changed() <-chan struct{}
}

// Suspender suspends an agent (admin.Service.Suspend): the ladder's suspend step.
type Suspender interface {
	Suspend(ctx context.Context, p *warden.Principal, name, reason string) (*warden.Agent, error)
}

// Killer kills an agent (killswitch.Service.Kill): the ladder's kill step.
type Killer interface {
	Kill(ctx context.Context, p *warden.Principal, name, reason string, disableTools []string) (*killswitch.Report, error)
}

// staleFinding: a finding in an event older than this is not reported.
const staleFinding = time.Hour

// FindingNotifier is told of every finding once it is recorded and contained: the approval
// webhooks (approval.Service.NotifyFinding). It must not block.
type FindingNotifier interface {
	NotifyFinding(a apitype.Alert)
}

// Principal is who the detector acts as when it contains an agent.
var Principal = &warden.Principal{Name: "warden-detect", Role: warden.RoleAdmin}

// Runner feeds the detector from the audit log, off every call's path: it reads the events
// after its cursor whenever the log commits, judges each, records each finding as a detect.<kind>
// event and applies the ladder's step. Only the replica that holds the detector's lease in the
// store runs it; the others only refresh the holds they enforce.
type Runner struct {
	Store    Store
	Notifier Notifier // nil: poll only
	Audit    warden.AuditLog
	Suspend  Suspender
	Kill     Killer
	Holds    *Holds
	Findings FindingNotifier // nil: none; findings still reach the audit log's stream and sinks
	Config   Config
	Replica  string // the lease holder's name
	Clock    clock.Clock
	Log      *slog.Logger
	Poll     time.Duration // how often to look for other replicas' events and holds; default 1s
	Lease    time.Duration // default 15s
	Batch    int           // events read at once; default 1000

	once    sync.Once
	mu      sync.Mutex // guards det
	det     *Detector
	leader  bool
	renewAt time.Time
	cursor  int64
}

func (r *Runner) defaults() {
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Lease <= 0 {
		r.Lease = 15 * time.Second
	}
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if r.Holds == nil {
		r.Holds = NewHolds()
	}
	r.Clock = clock.Or(r.Clock)
	r.Config = r.Config.withDefaults()
}

// Run runs the detector until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	r.once.Do(r.defaults)
	log := r.Log.With("part", "detect")
	poll := r.Clock.NewTimer(r.Poll)
	defer poll.Stop()
	for {
		var changed <-chan struct{}
		if r.Notifier != nil {
			changed = r.Notifier.Changed()
		}
		more, err := r.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			log.Error("detect: a pass failed; retrying", "err", err)
		}
		if more {
			continue
		}
		poll.Reset(r.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-poll.C():
		}
	}
}

// Step is one pass: renew (or take) the lease, then judge one batch of events. more is true
// when there may be events left to read at once.
func (r *Runner) Step(ctx context.Context) (more bool, err error) {
	r.once.Do(r.defaults)
	now := r.Clock.Now()
	if !r.leader || !now.Before(r.renewAt) {
		seq, ok, err := r.Store.AcquireDetectLease(ctx, r.Replica, now, now.Add(r.Lease))
		if err != nil {
			r.leader = false
			return false, err
		}
		if ok && !r.leader {
			if err := r.load(ctx, seq); err != nil {
				return false, err
			}
		}
		r.leader = ok
		r.renewAt = now.Add(r.Lease / 3)
	}
	if !r.leader {
		holds, err := r.Store.DetectHolds(ctx, now)
		if err != nil {
			return false, err
		}
		r.Holds.Replace(holds)
		return false, nil
	}
	evs, err := r.Store.AuditEvents(ctx, warden.AuditFilter{AfterSeq: r.cursor, Limit: r.Batch})
	if err != nil || len(evs) == 0 {
		return false, err
	}
	r.mu.Lock()
	var found []Finding
	for _, ev := range evs {
		fs := r.det.Observe(ev)
		// An old event is learned but not acted on: the first run over an existing log (or
		// after a long outage) must not hold or suspend an agent for what it did long ago.
		if len(fs) > 0 && ev.Time.Before(now.Add(-staleFinding)) {
			r.Log.Info("detect: findings in an old event learned, not reported", "seq", ev.Seq, "agent", ev.Actor.Name, "findings", len(fs))
			continue
		}
		found = append(found, fs...)
	}
	changed := map[string][]byte{}
	for _, agent := range r.det.takeDirty() {
		body, err := json.Marshal(r.det.baselines[agent])
		if err != nil {
			r.mu.Unlock()
			return false, err
		}
		changed[agent] = body
	}
	r.mu.Unlock()
	// The findings are recorded and contained before the cursor moves past their calls: a crash
	// in between judges the batch again (at least once), never skips it.
	for i := range found {
		if err := r.handle(ctx, &found[i]); err != nil {
			r.leader = false // start again from the stored cursor and baselines
			return false, err
		}
	}
	last := evs[len(evs)-1].Seq
	if err := r.Store.SaveDetectState(ctx, r.Replica, last, changed, r.Clock.Now()); err != nil {
		r.leader = false
		return false, err
	}
	r.cursor = last
	return len(evs) == r.Batch, nil
}

// load reads the stored baselines and cursor: this replica now runs the detector.
func (r *Runner) load(ctx context.Context, seq int64) error {
	bodies, err := r.Store.DetectBaselines(ctx)
	if err != nil {
		return err
	}
	baselines := make(map[string]*Baseline, len(bodies))
	for agent, body := range bodies {
		var b Baseline
		if err := json.Unmarshal(body, &b); err != nil {
			return fmt.Errorf("the stored baseline of %s: %w", agent, err)
		}
		b.fill() // a baseline stored before a map was learned
		baselines[agent] = &b
	}
	holds, err := r.Store.DetectHolds(ctx, r.Clock.Now())
	if err != nil {
		return err
	}
	r.Holds.Replace(holds)
	r.mu.Lock()
	r.det = NewDetector(r.Config, baselines)
	r.mu.Unlock()
	r.cursor = seq
	return nil
}

// handle records a finding and applies its containment step.
func (r *Runner) handle(ctx context.Context, f *Finding) error {
	step := r.Config.Step(*f)
	ev := apitype.AlertEvidence{Agent: f.Agent, AgentID: f.AgentID, Detector: f.Kind, Baseline: f.Baseline, Observed: f.Observed,
		SourceEvent: f.Source.ID, SourceSeq: f.Source.Seq, Step: step, Resource: f.Resource}
	var hold *warden.DetectHold
	if step == "approve" {
		hold = &warden.DetectHold{Agent: f.Agent, Until: r.Clock.Now().Add(r.Config.ApproveFor)}
		// A new host is held alone; a new action, transition, resource pattern or argument
		// key holds the action's calls (a pattern is no key to look up on the call's path);
		// a spike, a burst or off hours every call of the agent.
		switch f.Kind {
		case FirstSeenHost:
			hold.Tool, hold.Action, hold.Resource = f.Tool, f.Action, f.Resource
		case FirstSeenAction, FirstSeenTransition, FirstSeenResource, FirstSeenArgument:
			hold.Tool, hold.Action = f.Tool, f.Action
		}
		ev.HoldUntil = hold.Until.UTC().Format(time.RFC3339)
		// This replica holds the calls before the finding is told: whoever reads the finding
		// finds the agent's calls already held here. The store (other replicas) follows once
		// the finding's id is known.
		r.Holds.Put(hold)
	}
	args, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	event := &warden.AuditEvent{
		Type:     warden.EventDetectPrefix + f.Kind,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: Principal.Name},
		Target:   warden.EventTarget{Tool: f.Tool, Action: f.Action, Resource: "agent:" + f.Agent, Risk: f.Risk, Arguments: args},
		Decision: warden.EventDecision{Reason: f.Kind, Message: f.Agent + ": " + f.Observed + "; normal: " + f.Baseline + "; step: " + step},
		TraceID:  f.Source.TraceID,
	}
	if err := r.Audit.Append(ctx, event); err != nil {
		return err
	}
	reason := fmt.Sprintf("detect finding %s (%s)", event.ID, f.Kind)
	switch step {
	case "approve":
		stored := *hold
		stored.Finding = event.ID
		if err := r.Store.PutDetectHold(ctx, &stored); err != nil {
			return err
		}
		r.Holds.Put(&stored)
	case "suspend":
		if _, err := r.Suspend.Suspend(ctx, Principal, f.Agent, reason); err != nil && !isGone(err) {
			return err
		}
	case "kill":
		if _, err := r.Kill.Kill(ctx, Principal, f.Agent, reason, nil); err != nil && !isGone(err) {
			return err
		}
	}
	r.Log.Warn("detect: finding", "agent", f.Agent, "kind", f.Kind, "risk", f.Risk, "step", step, "event", event.ID)
	if r.Findings != nil {
		if a, ok := apitype.AlertOf(event); ok {
			r.Findings.NotifyFinding(a)
		}
	}
	return nil
}

// isGone: the agent was deleted, or is already killed (suspending a killed agent conflicts);
// there is nothing left to contain.
func isGone(err error) bool {
	return warden.ErrorCode(err) == warden.ENotFound || warden.ErrorCode(err) == warden.EConflict
}
