package killswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
)

// Store is the part of the store the kill switch writes.
type Store interface {
	warden.AgentStore
	warden.ToolStore
	warden.KillStore
}

// Calls cancels calls in flight on this replica.
type Calls interface {
	CancelAgent(agentID string) int
	CancelTool(tool string) int
	CancelAll() int
}

// Sessions closes open MCP sessions and their streams.
type Sessions interface {
	CloseAgentSessions(agentID string) int
}

// Approvals rejects pending approval requests.
type Approvals interface {
	RejectAgent(ctx context.Context, agentID, reason string) (int, error)
	RejectAll(ctx context.Context, reason string) (int, error)
}

// Tokens counts the live sessions of an agent's tokens on this replica.
type Tokens interface {
	LiveSessions(agentID string) int
}

// Registry reloads tools after some were disabled, so that the kill state learns of it.
type Registry interface {
	Load(ctx context.Context) error
}

// Service kills agents, locks the fleet down, and restores. Every action is an audit event
// naming the person and the reason.
type Service struct {
	Store     Store
	State     *State
	Audit     warden.AuditLog
	Calls     Calls
	Sessions  Sessions  // nil: no MCP gateway
	Approvals Approvals // nil: no approvals
	Tokens    Tokens
	Registry  Registry
	Runners   *Runners
	Log       *slog.Logger
	// Clock times Run's reloads and tells the time of kills, lockdowns and quarantines; nil
	// means the real clock.
	Clock clock.Clock
}

func (s *Service) clock() clock.Clock { return clock.Or(s.Clock) }

func (s *Service) now() time.Time { return s.clock().Now() }

// Report is the wire type apitype.KillReport; see there.
type Report = apitype.KillReport

func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", warden.Errorf(warden.EInvalid, "a reason is required: say why, e.g. --reason 'exfiltrating data, INC-123'")
	}
	if len(reason) > 1024 || !utf8.ValidString(reason) {
		return "", warden.Errorf(warden.EInvalid, "reason must be valid text of at most 1024 bytes")
	}
	return reason, nil
}

// Load reads the lockdown and the quarantined digests into the state; the agents and tools are
// loaded by the token service and the gateway registry.
func (s *Service) Load(ctx context.Context) error {
	l, err := s.Store.Lockdown(ctx)
	if err != nil {
		return fmt.Errorf("loading the lockdown: %w", err)
	}
	qs, err := s.Store.Quarantined(ctx)
	if err != nil {
		return fmt.Errorf("loading quarantined digests: %w", err)
	}
	s.State.SetLockdown(l)
	s.State.SetQuarantined(qs)
	return nil
}

// Run reloads the lockdown and quarantine every interval until ctx ends, so that another
// replica's lockdown reaches this one; on a change it terminates what the lockdown covers here.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	t := s.clock().NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			before := s.State.Load().Lockdown()
			if err := s.Load(ctx); err != nil {
				if ctx.Err() == nil {
					s.Log.Warn("reloading the kill state", "err", err)
				}
				continue
			}
			if after := s.State.Load().Lockdown(); after.Active && after != before {
				s.terminateLockdown(ctx, after)
			}
		}
	}
}

// Kill takes an agent's power away: its identity is revoked (status killed, epoch raised, client
// secret disabled), its calls in flight cancelled, its MCP streams closed, its pending approvals
// rejected and its sandboxes told to stop; disableTools are disabled for every agent. All of it
// is done before Kill returns. Killing a killed agent reports the same state.
func (s *Service) Kill(ctx context.Context, p *warden.Principal, name, reason string, disableTools []string) (*Report, error) {
	start := s.now()
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if err := warden.ValidateName("agent", name); err != nil {
		return nil, err
	}
	for _, t := range disableTools {
		if err := warden.ValidateName("tool", t); err != nil {
			return nil, err
		}
		if _, err := s.Store.Tool(ctx, t); err != nil {
			return nil, err
		}
	}
	already := false
	a, err := s.Store.UpdateAgent(ctx, name, func(a *warden.Agent) error {
		if a.Status == warden.AgentKilled {
			already = true
			return errUnchanged
		}
		a.Status = warden.AgentKilled
		a.StatusReason = reason
		a.Epoch++
		a.SecretHash = nil // the client secret stops working; a restore issues a new one
		a.UpdatedAt = s.now().UTC()
		return nil
	})
	if errors.Is(err, errUnchanged) {
		a, err = s.Store.Agent(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	// The state first: from here no check on this replica lets the agent through.
	s.State.ObserveAgent(a)
	r := &Report{Agent: a.Name, AgentID: a.ID, Status: a.Status, Epoch: a.Epoch, AlreadyKilled: already}
	r.SessionsInvalidated = s.Tokens.LiveSessions(a.ID)
	if len(disableTools) > 0 {
		r.ToolsDisabled, r.CallsCancelled = s.disableTools(ctx, disableTools)
	}
	s.terminateAgent(ctx, a.ID, "agent killed: "+reason, r)
	r.ElapsedMS = float64(clock.Since(s.clock(), start).Microseconds()) / 1000
	return r, s.record(ctx, p, warden.EventKillAgent, "agent:"+a.Name, reason, r)
}

var errUnchanged = errors.New("unchanged")

// Terminate ends what an agent has running on this replica — calls, streams, approvals,
// sandboxes — without changing its identity: a suspension calls it after raising the epoch.
func (s *Service) Terminate(ctx context.Context, a *warden.Agent, reason string) *Report {
	r := &Report{Agent: a.Name, AgentID: a.ID, Status: a.Status, Epoch: a.Epoch}
	r.SessionsInvalidated = s.Tokens.LiveSessions(a.ID)
	s.terminateAgent(ctx, a.ID, reason, r)
	return r
}

func (s *Service) terminateAgent(ctx context.Context, agentID, reason string, r *Report) {
	r.CallsCancelled += s.Calls.CancelAgent(agentID)
	if s.Sessions != nil {
		r.StreamsClosed = s.Sessions.CloseAgentSessions(agentID)
	}
	if s.Approvals != nil {
		n, err := s.Approvals.RejectAgent(ctx, agentID, reason)
		if err != nil {
			s.Log.Error("rejecting the agent's pending approvals", "agent", agentID, "err", err)
		}
		r.ApprovalsRejected = n
	}
	if s.Runners != nil {
		r.SandboxesStopped = s.Runners.Terminate(func(agent string) bool { return agent == agentID }, reason)
	}
}

// disableTools disables tools for every agent and cancels the calls to them in flight.
func (s *Service) disableTools(ctx context.Context, tools []string) (disabled []string, cancelled int) {
	for _, name := range tools {
		_, err := s.Store.UpdateTool(ctx, name, func(t *warden.Tool) error {
			t.Disabled = true
			t.UpdatedAt = s.now().UTC()
			return nil
		})
		if err != nil {
			s.Log.Error("disabling a tool during a kill", "tool", name, "err", err)
			continue
		}
		disabled = append(disabled, name)
	}
	if err := s.Registry.Load(ctx); err != nil {
		s.Log.Error("reloading tools after disabling", "err", err)
	}
	for _, name := range disabled {
		cancelled += s.Calls.CancelTool(name)
	}
	return disabled, cancelled
}

// Restore makes a killed agent active again with a new client secret, whose hash the caller
// gives. Tokens from before the kill stay dead: their epoch is gone. Only admins restore.
func (s *Service) Restore(ctx context.Context, p *warden.Principal, name, reason string, secretHash []byte) (*warden.Agent, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	a, err := s.Store.UpdateAgent(ctx, name, func(a *warden.Agent) error {
		if a.Status != warden.AgentKilled {
			return warden.Errorf(warden.EConflict, "agent %q is %s, not killed; restore is for killed agents", name, a.Status)
		}
		a.Status = warden.AgentActive
		a.StatusReason = ""
		a.Epoch++
		a.SecretHash = secretHash
		a.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.State.ObserveAgent(a)
	return a, s.record(ctx, p, warden.EventRestoreAgent, "agent:"+a.Name, reason, nil)
}

// Lockdown denies every agent (or, with minRisk, every call to a tool of that risk or more)
// until an admin lifts it, and ends what it covers: calls in flight, MCP streams, approvals and
// sandboxes (for a full lockdown) on this replica. It survives restarts.
func (s *Service) Lockdown(ctx context.Context, p *warden.Principal, reason string, minRisk warden.Risk) (*Report, error) {
	start := s.now()
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if minRisk != "" {
		if minRisk, err = warden.ParseRisk(string(minRisk)); err != nil {
			return nil, err
		}
	}
	l := warden.Lockdown{Active: true, MinRisk: minRisk, Reason: reason, By: p.Name, Since: s.now().UTC()}
	if err := s.Store.SetLockdown(ctx, l); err != nil {
		return nil, err
	}
	s.State.SetLockdown(l)
	r := s.terminateLockdown(ctx, l)
	r.ElapsedMS = float64(clock.Since(s.clock(), start).Microseconds()) / 1000
	return r, s.record(ctx, p, warden.EventLockdown, "lockdown", reason, r)
}

func (s *Service) terminateLockdown(ctx context.Context, l warden.Lockdown) *Report {
	r := &Report{Lockdown: &l}
	if l.MinRisk == "" {
		r.CallsCancelled = s.Calls.CancelAll()
		for id := range s.State.Load().agents {
			if s.Sessions != nil {
				r.StreamsClosed += s.Sessions.CloseAgentSessions(id)
			}
		}
		if s.Approvals != nil {
			n, err := s.Approvals.RejectAll(ctx, "lockdown: "+l.Reason)
			if err != nil {
				s.Log.Error("rejecting pending approvals in a lockdown", "err", err)
			}
			r.ApprovalsRejected = n
		}
		if s.Runners != nil {
			r.SandboxesStopped = s.Runners.Terminate(func(string) bool { return true }, "lockdown: "+l.Reason)
		}
		return r
	}
	tools, err := s.Store.Tools(ctx)
	if err != nil {
		s.Log.Error("listing tools in a lockdown", "err", err)
		return r
	}
	for _, t := range tools {
		if l.Covers(t) {
			r.CallsCancelled += s.Calls.CancelTool(t.Name)
		}
	}
	return r
}

// Lift ends the lockdown. Only admins lift it.
func (s *Service) Lift(ctx context.Context, p *warden.Principal, reason string) (warden.Lockdown, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return warden.Lockdown{}, err
	}
	cur, err := s.Store.Lockdown(ctx)
	if err != nil {
		return warden.Lockdown{}, err
	}
	if !cur.Active {
		return cur, warden.Errorf(warden.EConflict, "no lockdown is in force")
	}
	l := warden.Lockdown{Reason: reason, By: p.Name, Since: s.now().UTC()}
	if err := s.Store.SetLockdown(ctx, l); err != nil {
		return warden.Lockdown{}, err
	}
	s.State.SetLockdown(l)
	return l, s.record(ctx, p, warden.EventLockdownLift, "lockdown", reason, nil)
}

// Quarantine takes a skill out of use by digest. The skills capability checks it; the kill
// state carries it to every enforcement point.
func (s *Service) Quarantine(ctx context.Context, p *warden.Principal, digest, reason string) (*warden.Quarantine, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if !validDigest(digest) {
		return nil, warden.Errorf(warden.EInvalid, "digest %q: want sha256:<64 hex digits>", digest)
	}
	q := &warden.Quarantine{Digest: digest, Reason: reason, By: p.Name, At: s.now().UTC()}
	if err := s.Store.Quarantine(ctx, q); err != nil {
		return nil, err
	}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return q, s.record(ctx, p, warden.EventQuarantine, "skill:"+digest, reason, nil)
}

func validDigest(d string) bool {
	hex, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Service) record(ctx context.Context, p *warden.Principal, event, resource, reason string, r *Report) error {
	msg := reason
	if r != nil {
		msg = fmt.Sprintf("%s (sessions %d, calls cancelled %d, streams closed %d, approvals rejected %d, sandboxes stopped %d, %.1f ms)",
			reason, r.SessionsInvalidated, r.CallsCancelled, r.StreamsClosed, r.ApprovalsRejected, r.SandboxesStopped, r.ElapsedMS)
	}
	return s.Audit.Append(ctx, &warden.AuditEvent{
		Type:     event,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role)},
		Target:   warden.EventTarget{Resource: resource},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Reason: event, Message: msg},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	})
}
