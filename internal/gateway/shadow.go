package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// Shadow mode (docs/cli.md, "Shadow mode"): the registry's candidate policy set decides every
// call the live set decides, and where they differ a policy.shadow_diff event is recorded. The
// candidate decides nothing that happens: its decision is computed inline (Cedar takes
// microseconds) and the difference is queued for a goroutine that appends it, so neither the
// live decision nor the forward waits on the audit log for it. A full queue drops the
// difference and counts it: a metric, and a policy.shadow_dropped event every
// DropReportInterval.

// ShadowQueue is how many differences may wait for the audit log before more are dropped.
const ShadowQueue = 1024

// DropReportInterval is how often the differences dropped since the last report are recorded.
const DropReportInterval = time.Minute

// ShadowObserver is told of every difference and every drop (internal/metrics). It is called
// on the call's path: it must be quick and must not block.
type ShadowObserver interface {
	// ShadowDiff counts a difference by the live and the shadow effect.
	ShadowDiff(live, shadow string)
	// ShadowDropped counts a difference that could not be queued.
	ShadowDropped()
}

// Shadow records the differences between the candidate and the live policy set. Run drains
// its queue; it is safe for concurrent use.
type Shadow struct {
	audit    warden.AuditLog
	log      *slog.Logger
	clock    clock.Clock
	observer ShadowObserver // nil: none
	queue    chan *warden.AuditEvent

	counts  atomic.Pointer[shadowCounts]
	pending atomic.Int64 // dropped since the last policy.shadow_dropped event
}

// shadowCounts are this replica's counts of one candidate version since it first decided a call.
type shadowCounts struct {
	version                  int64
	since                    time.Time
	compared, diffs, dropped atomic.Int64
}

// ShadowStats are this replica's counts of the candidate it last compared with, in memory: a
// restart starts them again.
type ShadowStats struct {
	Version  int64     // the candidate's version; 0: no call compared yet
	Since    time.Time // the first call compared
	Compared int64     // calls both sets decided
	Diffs    int64     // of which they decided differently
	Dropped  int64     // differences not recorded: the queue was full
}

// NewShadow returns a recorder appending to audit, with a queue of size differences (0:
// ShadowQueue). observer may be nil; clk nil is the real clock.
func NewShadow(audit warden.AuditLog, log *slog.Logger, clk clock.Clock, observer ShadowObserver, size int) *Shadow {
	if size <= 0 {
		size = ShadowQueue
	}
	return &Shadow{audit: audit, log: log, clock: clock.Or(clk), observer: observer, queue: make(chan *warden.AuditEvent, size)}
}

// Stats returns this replica's counts of the candidate it last compared with.
func (s *Shadow) Stats() ShadowStats {
	c := s.counts.Load()
	if c == nil {
		return ShadowStats{}
	}
	return ShadowStats{Version: c.version, Since: c.since, Compared: c.compared.Load(), Diffs: c.diffs.Load(), Dropped: c.dropped.Load()}
}

// countsOf returns the counts of a version, starting them when the candidate changed.
func (s *Shadow) countsOf(version int64) *shadowCounts {
	for {
		c := s.counts.Load()
		if c != nil && c.version == version {
			return c
		}
		next := &shadowCounts{version: version, since: s.clock.Now()}
		if s.counts.CompareAndSwap(c, next) {
			return next
		}
	}
}

// compare decides the call r's live decision was made for again with the candidate, and
// queues a difference. It never blocks and never changes the call's decision.
func (s *Shadow) compare(r *request, req *warden.Request, live warden.Decision) {
	engine, version := r.snap.shadow, r.snap.shadowVersion
	if engine == nil {
		return
	}
	d := engine.Decide(req)
	c := s.countsOf(version)
	c.compared.Add(1)
	liveEffect, shadowEffect := gatewayEffect(r.e.tool, r.call.Action, live), gatewayEffect(r.e.tool, r.call.Action, d)
	if liveEffect == shadowEffect && live.Reason == d.Reason {
		return
	}
	c.diffs.Add(1)
	if s.observer != nil {
		s.observer.ShadowDiff(liveEffect, shadowEffect)
	}
	args, err := json.Marshal(warden.PolicyShadowDecision{
		Effect: shadowEffect, Reason: d.Reason, Message: r.rd.Secrets(d.Message), Policies: d.Policies, ShadowVersion: version,
	})
	if err != nil { // strings and ints: cannot happen, but a difference is never dropped silently
		s.drop(c)
		s.log.Error("encoding a shadow policy difference", "decision", r.p.Decision.ID, "err", err)
		return
	}
	t := r.ev.Target
	ev := &warden.AuditEvent{
		Type:   warden.EventPolicyShadowDiff,
		Actor:  r.ev.Actor,
		Target: warden.EventTarget{Tool: t.Tool, Action: t.Action, Resource: t.Resource, Risk: t.Risk, ArgsSHA256: t.ArgsSHA256, Arguments: args},
		Decision: warden.EventDecision{
			ID: r.p.Decision.ID, Effect: liveEffect, Reason: live.Reason, Message: r.rd.Secrets(live.Message),
			Policies: live.Policies, PolicyVersion: live.PolicyVersion,
		},
		TraceID: r.ev.TraceID, SpanID: r.ev.SpanID,
	}
	select {
	case s.queue <- ev:
	default:
		s.drop(c)
	}
}

func (s *Shadow) drop(c *shadowCounts) {
	c.dropped.Add(1)
	s.pending.Add(1)
	if s.observer != nil {
		s.observer.ShadowDropped()
	}
}

// gatewayEffect is the effect the gateway gives a policy decision before any person, budget or
// hold: an allow the tool or its risk sends to a person is approval_required (ApprovalReason).
func gatewayEffect(t *warden.Tool, action string, d warden.Decision) string {
	if d.Effect == warden.EffectAllow && ApprovalReason(t, action, d) != "" {
		return warden.EffectApprovalRequired
	}
	return d.Effect
}

// Run appends the queued differences, and every DropReportInterval a policy.shadow_dropped
// event for what was dropped since the last one, until ctx ends; then it flushes, and returns.
func (s *Shadow) Run(ctx context.Context) error {
	t := s.clock.NewTicker(DropReportInterval)
	defer t.Stop()
	for {
		select {
		case ev := <-s.queue:
			s.append(ctx, ev)
		case <-t.C():
			s.reportDropped(ctx)
		case <-ctx.Done():
			s.Flush(context.WithoutCancel(ctx))
			return nil
		}
	}
}

// Flush appends the differences queued and records the drops not yet reported. A server calls
// it once no request is left, for the calls decided after Run returned.
func (s *Shadow) Flush(ctx context.Context) {
	for {
		select {
		case ev := <-s.queue:
			s.append(ctx, ev)
		default:
			s.reportDropped(ctx)
			return
		}
	}
}

func (s *Shadow) append(ctx context.Context, ev *warden.AuditEvent) {
	if err := s.audit.Append(ctx, ev); err != nil {
		s.log.Error("audit append failed", "type", ev.Type, "decision", ev.Decision.ID, "err", err)
	}
}

// reportDropped records how many differences were dropped since the last report, if any.
func (s *Shadow) reportDropped(ctx context.Context) {
	n := s.pending.Swap(0)
	if n == 0 {
		return
	}
	version := s.Stats().Version
	ev := &warden.AuditEvent{
		Type:  warden.EventPolicyShadowDropped,
		Actor: warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target: warden.EventTarget{Resource: fmt.Sprintf("policy_shadow:%d", version),
			Arguments: json.RawMessage(fmt.Sprintf(`{"dropped":%d,"shadow_version":%d}`, n, version))},
		Decision: warden.EventDecision{Message: fmt.Sprintf("%d differences of shadow version %d not recorded: the queue was full", n, version)},
		Outcome:  warden.EventOutcome{Status: warden.StatusError},
	}
	if err := s.audit.Append(ctx, ev); err != nil {
		// Counted again, so that the next report carries them.
		s.pending.Add(n)
		s.log.Error("audit append failed", "type", ev.Type, "dropped", n, "err", err)
	}
}
