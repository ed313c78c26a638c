// Package approval holds the calls that need a person's approval: requests bound to the exact
// call, decisions by people, notification, expiry, and rejection when an agent is stopped.
//
// A request is bound to one call by warden.ApprovalBinding — agent, session, the person the
// agent acts for, tool, action, resource, argument digest and policy version. The call waits (Await) up to the hold time for a
// decision; the same call sent again finds the same request. An approval is used by exactly one
// call and expires; a rejection answers the same call for the rest of the request's life.
//
// State lives in the store, so that every replica sees every request and decision. A decision
// made on this replica wakes the calls waiting here at once; calls waiting on other replicas see
// it when they next read the store (Options.Poll).
package approval

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/gateway"
)

// Defaults of Options.
const (
	DefaultHold = 60 * time.Second
	DefaultTTL  = 15 * time.Minute
	DefaultPoll = time.Second
	// DefaultMaxPending is how many requests one agent may have waiting for a person.
	DefaultMaxPending = 10
)

// maxNote bounds an approver's note or a rejection's reason.
const maxNote = 1024

// Store is what the service keeps requests in, and where it reads an agent's recent actions.
type Store interface {
	warden.ApprovalStore
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
}

// Options configure a Service. The zero value takes every default.
type Options struct {
	Hold time.Duration // how long Await holds a call; default 60s
	TTL  time.Duration // how long a request waits, and an approval stays usable; default 15m
	Poll time.Duration // how often a held call reads the store; default 1s
	// SeparationOfDuties refuses an approval by the agent's owner or by the person it acts for,
	// matched by the email of the approver's admin token; a token without one cannot approve.
	SeparationOfDuties bool
	// CriticalApprovers is how many distinct people must approve a call to a critical tool;
	// default 1. Other calls need one.
	CriticalApprovers int
	// MaxPendingPerAgent is how many requests one agent may have waiting for a person at once;
	// a call that would make another is refused without a request or a notification. Default
	// DefaultMaxPending.
	MaxPendingPerAgent int
	Webhooks           []Webhook
	// BaseURL is warden's public URL, for links in notifications.
	BaseURL string
	// Clock times the hold, the poll, expiry and the sweep; default the real clock.
	Clock clock.Clock
}

func (o *Options) defaults() {
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.CriticalApprovers < 1 {
		o.CriticalApprovers = 1
	}
	if o.MaxPendingPerAgent < 1 {
		o.MaxPendingPerAgent = DefaultMaxPending
	}
	o.Clock = clock.Or(o.Clock)
}

// Service holds calls for approval and takes people's decisions. It implements gateway.Approvals.
type Service struct {
	store  Store
	audit  warden.AuditLog
	log    *slog.Logger
	opts   Options
	notify *notifier

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]string // binding → the calls waiting on it here → their agent ID
}

var _ gateway.Approvals = (*Service)(nil)

// New returns a Service. Run must be running for webhooks to be delivered and for requests
// nobody waits on to be expired on time.
func New(store Store, audit warden.AuditLog, log *slog.Logger, opts Options) *Service {
	opts.defaults()
	return &Service{
		store: store, audit: audit, log: log, opts: opts,
		notify:  newNotifier(opts.Webhooks, log, opts.Clock),
		waiters: map[string]map[chan struct{}]string{},
	}
}

func (s *Service) now() time.Time { return s.opts.Clock.Now().UTC() }

// subscribe registers a call of agentID waiting on binding; the channel receives after every
// change to a request with that binding made on this replica, and when the agent is stopped.
func (s *Service) subscribe(binding, agentID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters[binding] == nil {
		s.waiters[binding] = map[chan struct{}]string{}
	}
	s.waiters[binding][ch] = agentID
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.waiters[binding], ch)
		if len(s.waiters[binding]) == 0 {
			delete(s.waiters, binding)
		}
	}
}

// changed wakes the calls waiting on binding.
func (s *Service) changed(binding string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.waiters[binding] {
		wake(ch)
	}
}

// wakeAgent wakes every call of agentID ("": of every agent) waiting here, to read its request
// again. A kill rejects the requests in the store once, on the replica that heard it; the
// other replicas' reconcilers call RejectAgent too, find nothing left to reject, and must
// still end their own waiting calls at once rather than at their next poll.
func (s *Service) wakeAgent(agentID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, chans := range s.waiters {
		for ch, agent := range chans {
			if agentID == "" || agent == agentID {
				wake(ch)
			}
		}
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default: // already woken; it reads the latest state anyway
	}
}

// Await holds a call until a person decides, the request expires, the hold time passes or ctx
// ends. It finds the open request of this exact call or makes one. An approved request is used
// here, once: the answer is approved only for the call that used it.
//
// When the hold time passes, or ctx ends first, the answer is pending with the request's id:
// the request stands, and the same call sent again picks it up. An error means the request
// could not be made, read or used (the store or the audit log failed); the caller denies.
func (s *Service) Await(ctx context.Context, req *gateway.ApprovalRequest) (gateway.ApprovalResult, error) {
	binding := warden.ApprovalBinding(req.Agent.ID, req.SessionID, req.OnBehalfOf, req.Tool.Name, req.Action, req.Resource, req.ArgsSHA256, req.PolicyVersion)
	// Subscribe before the first read, so that no decision falls between the read and the wait.
	woken, unsubscribe := s.subscribe(binding, req.Agent.ID)
	defer unsubscribe()
	hold := s.opts.Clock.NewTimer(s.opts.Hold)
	defer hold.Stop()

	waitingOn := ""
	final := false // the hold is over: one last read, in case a decision came with it
	for {
		a, err := s.current(ctx, req, binding, waitingOn)
		if warden.ErrorCode(err) == warden.ERateLimited {
			return gateway.ApprovalResult{State: warden.ApprovalLimited, Message: fmt.Sprintf(
				"agent %s already has %d approval requests waiting for a person (approvals.max_pending_per_agent); "+
					"no request was made: wait until they are decided or expire", req.Agent.Name, s.opts.MaxPendingPerAgent)}, nil
		}
		if err != nil {
			return gateway.ApprovalResult{}, err
		}
		waitingOn = a.ID
		switch a.Status {
		case warden.ApprovalApproved:
			used, err := s.use(ctx, a, req)
			if errors.Is(err, errGone) {
				continue // used by another call or expired in the meantime: read again
			}
			if err != nil {
				return gateway.ApprovalResult{}, err
			}
			return gateway.ApprovalResult{State: warden.ApprovalApproved, RequestID: used.ID, Message: used.Note, Approvers: approvers(used)}, nil
		case warden.ApprovalRejected:
			return gateway.ApprovalResult{State: warden.ApprovalRejected, RequestID: a.ID, Message: a.Note}, nil
		case warden.ApprovalExpired:
			return gateway.ApprovalResult{State: warden.ApprovalExpired, RequestID: a.ID}, nil
		}
		if final || req.NoWait {
			return gateway.ApprovalResult{State: warden.ApprovalPending, RequestID: a.ID}, nil
		}

		// Pending: wait for a change here, a change elsewhere (poll), the request's expiry, the
		// end of the hold or of the call.
		poll := s.opts.Clock.NewTimer(s.opts.Poll)
		expiry := s.opts.Clock.NewTimer(max(a.ExpiresAt.Sub(s.now()), 0))
		select {
		case <-ctx.Done():
			poll.Stop()
			expiry.Stop()
			return gateway.ApprovalResult{State: warden.ApprovalPending, RequestID: a.ID}, nil
		case <-hold.C():
			final = true
		case <-woken:
		case <-poll.C():
		case <-expiry.C():
		}
		poll.Stop()
		expiry.Stop()
	}
}

// errGone says an approved request can no longer be used: another call used it, or it expired.
var errGone = errors.New("the approval is gone")

// current returns the request the call is bound to, making one if there is none to wait on.
// waitingOn is the request the call already waits on, whose end (rejected, expired) is the
// call's answer; any other closed request leaves room for a new one, except a rejection, which
// answers the same call for the rest of its request's life.
func (s *Service) current(ctx context.Context, req *gateway.ApprovalRequest, binding, waitingOn string) (*warden.Approval, error) {
	for range 5 {
		a, err := s.store.ApprovalByBinding(ctx, binding)
		if warden.ErrorCode(err) == warden.ENotFound {
			a, err = s.create(ctx, req, binding)
			if warden.ErrorCode(err) == warden.EConflict {
				continue // another call, here or on another replica, made it first
			}
			return a, err
		}
		if err != nil {
			return nil, err
		}
		now := s.now()
		if a.Open() && !now.Before(a.ExpiresAt) {
			if a, err = s.expire(ctx, a); err != nil {
				return nil, err
			}
		}
		switch {
		case a.Open(),
			a.Status == warden.ApprovalRejected && (a.ID == waitingOn || now.Before(a.ExpiresAt)),
			a.Status == warden.ApprovalExpired && a.ID == waitingOn:
			return a, nil
		}
		a, err = s.create(ctx, req, binding)
		if warden.ErrorCode(err) == warden.EConflict {
			continue
		}
		return a, err
	}
	return nil, warden.Errorf(warden.EUnavailable, "the approval request could not be made: too many concurrent changes")
}

// create stores a new pending request, records it and tells the webhooks. An agent with
// Options.MaxPendingPerAgent requests pending already gets ERateLimited, and nothing is stored,
// recorded (the caller's decision is) or sent: every request pages a person, and an agent
// whose calls each need approval must not be able to page without bound, whatever budgets it
// has. The store counts, so the limit holds across replicas.
func (s *Service) create(ctx context.Context, req *gateway.ApprovalRequest, binding string) (*warden.Approval, error) {
	now := s.now()
	required := 1
	if req.Tool.Risk == warden.RiskCritical {
		required = s.opts.CriticalApprovers
	}
	// The request keeps the action and resource as the audit log does, brokered secrets
	// redacted; the binding covers them as the agent sent them.
	action, resource := req.Recorded()
	a := &warden.Approval{
		ID: warden.NewID("apr_"), Status: warden.ApprovalPending, Binding: binding, DecisionID: req.DecisionID,
		AgentID: req.Agent.ID, AgentName: req.Agent.Name, Owner: req.Agent.Owner, OnBehalfOf: req.OnBehalfOf, SessionID: req.SessionID,
		Tool: req.Tool.Name, Action: action, Resource: resource, Risk: req.Tool.Risk,
		ArgsSHA256: req.ArgsSHA256, Arguments: req.Arguments, Reason: req.Reason, Flow: req.Flow,
		Policies: req.Policies, PolicyVersion: req.PolicyVersion, Required: required,
		CreatedAt: now, ExpiresAt: now.Add(s.opts.TTL),
	}
	if err := s.store.CreateApprovalLimited(ctx, a, s.opts.MaxPendingPerAgent); err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("decision %s waits for %s; expires %s", a.DecisionID, plural(required, "approval"), a.ExpiresAt.Format(time.RFC3339))
	if err := s.record(ctx, a, warden.EventApprovalRequested, agentActor(a), warden.EffectApprovalRequired, a.Reason, msg); err != nil {
		// A request that is not on record must not be decided: take it back, as expired so that
		// the same call, sent again once the log is back, makes a new one.
		if _, rerr := s.store.UpdateApproval(context.WithoutCancel(ctx), a.ID, func(x *warden.Approval) error {
			x.Status, x.Note = warden.ApprovalExpired, "withdrawn: the audit log is unavailable"
			return nil
		}); rerr != nil {
			s.log.Error("withdrawing an unrecorded approval request", "request", a.ID, "err", rerr)
		}
		return nil, err
	}
	s.notify.requested(s.message(a))
	return a, nil
}

// use spends an approved request on this call.
func (s *Service) use(ctx context.Context, a *warden.Approval, req *gateway.ApprovalRequest) (*warden.Approval, error) {
	now := s.now()
	used, err := s.store.UpdateApproval(ctx, a.ID, func(x *warden.Approval) error {
		if action, _ := req.Recorded(); x.AgentID != req.Agent.ID || x.ArgsSHA256 != req.ArgsSHA256 || x.Tool != req.Tool.Name || x.Action != action {
			// The binding covers these; this is a second lock on the same door.
			return warden.Errorf(warden.EInternal, "approval request %s does not match the call", x.ID)
		}
		if x.Status != warden.ApprovalApproved || !now.Before(x.ExpiresAt) {
			return errGone
		}
		x.Status, x.UsedAt = warden.ApprovalUsed, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.changed(used.Binding)
	msg := fmt.Sprintf("used by decision %s; approved by %s", req.DecisionID, strings.Join(approvers(used), ", "))
	if err := s.record(ctx, used, warden.EventApprovalUsed, agentActor(used), warden.EffectApproved, "approval_used", msg); err != nil {
		return nil, err // the approval is spent and the call denied: fail closed
	}
	return used, nil
}

// errUnchanged tells an update that there is nothing to do.
var errUnchanged = errors.New("unchanged")

// expire closes a request whose time is up and returns it as it now is.
func (s *Service) expire(ctx context.Context, a *warden.Approval) (*warden.Approval, error) {
	now := s.now()
	x, err := s.store.UpdateApproval(ctx, a.ID, func(x *warden.Approval) error {
		if !x.Open() || now.Before(x.ExpiresAt) {
			return errUnchanged
		}
		x.Status = warden.ApprovalExpired
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return s.store.Approval(ctx, a.ID)
	}
	if err != nil {
		return nil, err
	}
	s.changed(x.Binding)
	msg := "nobody decided in time"
	if len(x.Approvals) >= x.Required {
		msg = "the approval was not used in time"
	}
	if err := s.record(ctx, x, warden.EventApprovalExpired, systemActor(), warden.EffectExpired, "approval_expired", msg); err != nil {
		s.log.Error("audit append failed", "type", warden.EventApprovalExpired, "request", x.ID, "err", err)
	}
	return x, nil
}

// Approve records a person's approval. A request that needs several approvers stays pending
// until enough distinct people approve; the last approval starts the approval's TTL.
func (s *Service) Approve(ctx context.Context, p *warden.Principal, id, note string) (*warden.Approval, error) {
	if err := mayDecide(p); err != nil {
		return nil, err
	}
	note, err := validateNote(note, false)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a, err := s.store.UpdateApproval(ctx, id, func(x *warden.Approval) error {
		if err := decidable(x, now); err != nil {
			return err
		}
		if err := s.separate(p, x); err != nil {
			return err
		}
		for _, v := range x.Approvals {
			if v.Name == p.Name || (p.Email != "" && strings.EqualFold(v.Email, p.Email)) {
				return warden.Errorf(warden.EConflict, "you have already approved request %s; it needs %d more distinct approver(s)", x.ID, x.Required-len(x.Approvals))
			}
		}
		x.Approvals = append(x.Approvals, warden.ApprovalVote{Name: p.Name, Role: p.Role, Email: p.Email, Note: note, At: now})
		x.Note = note
		if len(x.Approvals) >= x.Required {
			x.Status, x.DecidedAt, x.ExpiresAt = warden.ApprovalApproved, now, now.Add(s.opts.TTL)
		}
		return nil
	})
	if err != nil {
		s.expireIfDue(ctx, id, err)
		return nil, err
	}
	s.changed(a.Binding)
	effect, reason := warden.EffectApprovalRequired, "approval_partial"
	if a.Status == warden.ApprovalApproved {
		effect, reason = warden.EffectApproved, "approved"
	}
	msg := fmt.Sprintf("approval %d of %d", len(a.Approvals), a.Required)
	if note != "" {
		msg += ": " + note
	}
	return a, s.record(ctx, a, warden.EventApprovalApproved, humanActor(ctx, p), effect, reason, msg)
}

// Reject refuses a request, pending or approved and not yet used. reason is required; the
// agent is told it.
func (s *Service) Reject(ctx context.Context, p *warden.Principal, id, reason string) (*warden.Approval, error) {
	if err := mayDecide(p); err != nil {
		return nil, err
	}
	reason, err := validateNote(reason, true)
	if err != nil {
		return nil, err
	}
	now := s.now()
	a, err := s.store.UpdateApproval(ctx, id, func(x *warden.Approval) error {
		if !x.Open() {
			return warden.Errorf(warden.EConflict, "request %s is %s; only a pending or unused approved request can be rejected", x.ID, x.Status)
		}
		x.Status, x.RejectedBy, x.Note, x.DecidedAt = warden.ApprovalRejected, p.Name, reason, now
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.changed(a.Binding)
	return a, s.record(ctx, a, warden.EventApprovalRejected, humanActor(ctx, p), warden.EffectRejected, "rejected", reason)
}

// RejectAgent rejects every open request of an agent at once: a kill or a suspension calls
// it. It returns how many it rejected.
func (s *Service) RejectAgent(ctx context.Context, agentID, reason string) (int, error) {
	return s.rejectOpen(ctx, agentID, reason)
}

// RejectAll rejects every open request of every agent: a lockdown calls it.
func (s *Service) RejectAll(ctx context.Context, reason string) (int, error) {
	return s.rejectOpen(ctx, "", reason)
}

func (s *Service) rejectOpen(ctx context.Context, agentID, reason string) (int, error) {
	defer s.wakeAgent(agentID)
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "the agent was stopped"
	}
	n := 0
	seen := map[string]bool{}
	for {
		open, err := s.store.Approvals(ctx, warden.ApprovalFilter{Statuses: []string{warden.ApprovalPending, warden.ApprovalApproved}, AgentID: agentID})
		if err != nil {
			return n, err
		}
		progress := false
		for _, a := range open {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			progress = true
			now := s.now()
			x, err := s.store.UpdateApproval(ctx, a.ID, func(x *warden.Approval) error {
				if !x.Open() {
					return errUnchanged
				}
				x.Status, x.RejectedBy, x.Note, x.DecidedAt = warden.ApprovalRejected, "system", reason, now
				return nil
			})
			if errors.Is(err, errUnchanged) {
				continue
			}
			if err != nil {
				return n, err
			}
			n++
			s.changed(x.Binding)
			if err := s.record(ctx, x, warden.EventApprovalRejected, systemActor(), warden.EffectRejected, "agent_stopped", reason); err != nil {
				s.log.Error("audit append failed", "type", warden.EventApprovalRejected, "request", x.ID, "err", err)
			}
		}
		if !progress {
			return n, nil
		}
	}
}

// Run expires requests whose time is up, whether or not a call waits on them, and delivers
// webhook notifications, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.notify.run(ctx) })
	defer wg.Wait()
	t := s.opts.Clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			s.sweep(ctx)
		}
	}
}

// sweep expires what is due. Several replicas may sweep at once; UpdateApproval lets one win.
func (s *Service) sweep(ctx context.Context) {
	due, err := s.store.Approvals(ctx, warden.ApprovalFilter{
		Statuses: []string{warden.ApprovalPending, warden.ApprovalApproved}, ExpiresBefore: s.now(),
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading approval requests to expire", "err", err)
		}
		return
	}
	for _, a := range due {
		if _, err := s.expire(ctx, a); err != nil && ctx.Err() == nil {
			s.log.Warn("expiring an approval request", "request", a.ID, "err", err)
		}
	}
}

// expireIfDue expires a request a person tried to decide too late, so that the answer they got
// ("expired") is also what the store says.
func (s *Service) expireIfDue(ctx context.Context, id string, err error) {
	var we *warden.Error
	if errors.As(err, &we) && we.Err == errExpired {
		if a, gerr := s.store.Approval(ctx, id); gerr == nil {
			_, _ = s.expire(ctx, a)
		}
	}
}

var errExpired = errors.New("expired")

// decidable checks that a person may still approve x.
func decidable(x *warden.Approval, now time.Time) error {
	switch {
	case x.Status == warden.ApprovalPending && !now.Before(x.ExpiresAt):
		return warden.WrapError(warden.EConflict, fmt.Sprintf("request %s has expired; the agent must send the call again", x.ID), errExpired)
	case x.Status != warden.ApprovalPending:
		return warden.Errorf(warden.EConflict, "request %s is already %s", x.ID, x.Status)
	}
	return nil
}

// separate enforces separation of duties: the person approving is neither the agent's owner nor
// the person it acts for. People are matched by email, the one identity warden holds for both
// an agent's owner and an admin token; a token without an email cannot be told apart from the
// owner, so it may not approve while the rule is on.
func (s *Service) separate(p *warden.Principal, x *warden.Approval) error {
	if !s.opts.SeparationOfDuties {
		return nil
	}
	switch {
	case p.Email == "":
		return warden.Errorf(warden.EForbidden, "separation of duties is on and admin token %q has no email, so warden cannot tell you from the agent's owner; ask an admin for a token made with --email", p.Name)
	case strings.EqualFold(p.Email, x.Owner):
		return warden.Errorf(warden.EForbidden, "separation of duties: %s owns agent %s and may not approve its requests; another approver must decide", p.Email, x.AgentName)
	case x.OnBehalfOf != "" && strings.EqualFold(p.Email, x.OnBehalfOf):
		return warden.Errorf(warden.EForbidden, "separation of duties: agent %s acts for %s, who may not approve its requests; another approver must decide", x.AgentName, p.Email)
	}
	return nil
}

// mayDecide checks the role; the HTTP API checks it too, but a decision is not something to
// leave to one check.
func mayDecide(p *warden.Principal) error {
	switch p.Role {
	case warden.RoleApprover, warden.RoleOperator, warden.RoleAdmin:
		return nil
	}
	return warden.Errorf(warden.EForbidden, "deciding approval requests needs role approver, operator or admin; token %q has role %s", p.Name, p.Role)
}

func validateNote(s string, required bool) (string, error) {
	s = strings.TrimSpace(s)
	if required && s == "" {
		return "", warden.Errorf(warden.EInvalid, "a reason is required: the agent and the audit log are told why, e.g. --reason 'amount over the monthly limit'")
	}
	if len(s) > maxNote || !utf8.ValidString(s) {
		return "", warden.Errorf(warden.EInvalid, "the note or reason must be valid text of at most %d bytes", maxNote)
	}
	return s, nil
}

func approvers(a *warden.Approval) []string {
	names := make([]string, len(a.Approvals))
	for i, v := range a.Approvals {
		names[i] = v.Name
	}
	return names
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// record appends the audit event of one step of a request.
func (s *Service) record(ctx context.Context, a *warden.Approval, typ string, actor warden.EventActor, effect, reason, message string) error {
	ev := &warden.AuditEvent{
		Type:  typ,
		Actor: actor,
		Target: warden.EventTarget{
			Tool: a.Tool, Action: a.Action, Resource: a.Resource, Risk: a.Risk, Arguments: a.Arguments, ArgsSHA256: a.ArgsSHA256,
		},
		Decision: warden.EventDecision{
			ID: a.ID, Effect: effect, Reason: reason, Message: message, Policies: a.Policies, PolicyVersion: a.PolicyVersion,
		},
	}
	return s.audit.Append(context.WithoutCancel(ctx), ev)
}

func agentActor(a *warden.Approval) warden.EventActor {
	return warden.EventActor{Kind: warden.ActorAgent, ID: a.AgentID, Name: a.AgentName, Owner: a.Owner, OnBehalfOf: a.OnBehalfOf, SessionID: a.SessionID}
}

func humanActor(ctx context.Context, p *warden.Principal) warden.EventActor {
	return warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Source: admin.Source(ctx)}
}

func systemActor() warden.EventActor {
	return warden.EventActor{Kind: warden.ActorSystem, Name: "warden"}
}
