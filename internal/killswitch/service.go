package killswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/fleet"
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

// Agents reloads agents' states from the store into the kill state (the token service).
type Agents interface {
	ReloadAgents(ctx context.Context) error
	ReloadAgent(ctx context.Context, id string) error
}

// Fleet is the part of fleet.Bus the kill switch uses: it announces this replica's changes,
// waits for the others' acknowledgements, and hears of the safety-net poll's reloads.
type Fleet interface {
	Self() string
	Publish(ctx context.Context, topic fleet.Topic, name string) (int64, error)
	WaitAcks(ctx context.Context, version int64, timeout time.Duration) []apitype.ReplicaAck
	Reloaded(t time.Time)
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
	Agents    Agents    // nil: Run and the Handler do not reload agents
	Artifacts Artifacts // nil: nothing here runs artifacts by digest
	// Fleet announces changes to the other replicas and collects their acknowledgements; nil:
	// this replica is alone and its reports list no replicas.
	Fleet Fleet
	// AckTimeout bounds how long a command waits for the fleet (killswitch.ack_timeout);
	// 0 means 1s.
	AckTimeout time.Duration
	Log        *slog.Logger
	// Clock times Run's reloads and tells the time of kills, lockdowns and quarantines; nil
	// means the real clock.
	Clock clock.Clock

	reconcileMu sync.Mutex // serializes reconciles; a local command holds it from its store write on
	reconciled  *Snapshot  // the kill state the last reconcile enforced; nil: none yet (empty)
}

func (s *Service) clock() clock.Clock { return clock.Or(s.Clock) }

func (s *Service) now() time.Time { return s.clock().Now() }

// Report is the wire type apitype.KillReport; see there.
type Report = apitype.KillReport

// checkReason: everything this package changes is a containment, so a reason is required.
func checkReason(reason string) (string, error) { return warden.CheckReason(reason, true) }

// Baseline takes the current kill state as enforced: what it forbids was ended before this
// process started (nothing of it runs here), so the first reconcile ends only what changed.
func (s *Service) Baseline() {
	s.reconcileMu.Lock()
	defer s.reconcileMu.Unlock()
	s.reconciled = s.State.Load()
}

// Load reads the lockdown and the quarantined digests into the state; the agents and tools are
// loaded by the token service and the gateway registry.
func (s *Service) Load(ctx context.Context) error {
	t := s.State.Ticket()
	l, err := s.Store.Lockdown(ctx)
	if err != nil {
		return fmt.Errorf("loading the lockdown: %w", err)
	}
	qs, err := s.Store.Quarantined(ctx)
	if err != nil {
		return fmt.Errorf("loading quarantined digests: %w", err)
	}
	s.State.SetLockdown(t, l)
	s.State.SetQuarantined(t, qs)
	return nil
}

// Run is the safety net under the fleet's announcements: every interval it reloads the whole
// kill state from the store — agents, tools, lockdown, quarantine — and reconciles, so that a
// change whose announcement was lost still reaches this replica within the interval. A complete
// reload tells the fleet (Fleet.Reloaded), which keeps this replica fresh while its feed is down.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	t := s.clock().NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if err := s.ReloadAll(ctx); err != nil {
				if ctx.Err() == nil {
					s.Log.Warn("reloading the kill state", "err", err)
				}
				continue
			}
			if s.Fleet != nil {
				s.Fleet.Reloaded(s.now())
			}
		}
	}
}

// ReloadAll reads the whole kill state from the store and reconciles, whatever part failed to
// load: what did load is enforced at once. It returns the load errors.
func (s *Service) ReloadAll(ctx context.Context) error {
	var errs []error
	if s.Agents != nil {
		if err := s.Agents.ReloadAgents(ctx); err != nil {
			errs = append(errs, fmt.Errorf("loading agents: %w", err))
		}
	}
	// The tools' disabled flags only: the gateway's registry (policies compiled against the
	// tools) reloads on its own, less often, and on every announcement of a tool or policy.
	t := s.State.Ticket()
	if tools, err := s.Store.Tools(ctx); err != nil {
		errs = append(errs, fmt.Errorf("loading tools: %w", err))
	} else {
		s.State.SetTools(t, tools)
	}
	if err := s.Load(ctx); err != nil {
		errs = append(errs, err)
	}
	s.Reconcile(ctx)
	return errors.Join(errs...)
}

// Announce names one change to announce to the fleet.
type Announce func(topic fleet.Topic, name string)

// Change commits a change of the kill state made on this replica. Under the reconciler's lock it
// runs write — the store write and the update of the state, calling announce for what changed —
// then announces the changes to the fleet and ends here what they forbid, so that the report
// counts exactly what this change ended. With wait it then waits for every other live replica
// to acknowledge (Fleet.WaitAcks, at most AckTimeout). A failed announcement leaves the change
// standing and enforced here; the report says the fleet was not told, and the safety-net poll
// carries it. An error from write is returned as it is, and nothing is announced.
func (s *Service) Change(ctx context.Context, wait bool, write func(ctx context.Context, announce Announce) error) (*Report, error) {
	start := s.now()
	type change struct {
		topic fleet.Topic
		name  string
	}
	var changes []change
	s.reconcileMu.Lock()
	err := write(ctx, func(topic fleet.Topic, name string) { changes = append(changes, change{topic, name}) })
	if err != nil {
		s.reconcileMu.Unlock()
		return nil, err
	}
	// The change is in the store: the fleet must hear of it and what it forbids must end here
	// even if the person who asked has gone away.
	committed := context.WithoutCancel(ctx)
	var version int64
	var publishErr error
	if s.Fleet != nil {
		for _, c := range changes {
			v, err := s.Fleet.Publish(committed, c.topic, c.name)
			if err != nil {
				publishErr = err
				s.Log.Error("announcing a kill-state change to the fleet; the other replicas learn of it at their next poll", "topic", c.topic, "name", c.name, "err", err)
				continue
			}
			version = max(version, v)
		}
	}
	done := s.reconcileLocked(committed)
	s.reconcileMu.Unlock()

	r := &Report{CallsCancelled: done.calls + done.artifacts, StreamsClosed: done.streams, ApprovalsRejected: done.approvals, SandboxesStopped: done.sandboxes, Version: version}
	if s.Fleet != nil {
		r.Replicas = []apitype.ReplicaAck{{ID: s.Fleet.Self(), Acked: true, CallsCancelled: done.calls + done.artifacts, SessionsClosed: done.streams, SandboxesStopped: done.sandboxes}}
		switch {
		case publishErr != nil:
			r.Replicas = append(r.Replicas, apitype.ReplicaAck{ID: OtherReplicas, Error: FleetNotTold})
		case wait && version > 0:
			r.Replicas = append(r.Replicas, s.Fleet.WaitAcks(ctx, version, s.ackTimeout())...)
		}
	}
	r.ElapsedMS = float64(clock.Since(s.clock(), start).Microseconds()) / 1000
	return r, nil
}

// OtherReplicas stands for the replicas a change could not be announced to, and FleetNotTold
// says what became of it, in a report's Replicas.
const (
	OtherReplicas = "other replicas"
	FleetNotTold  = "not told: announcing the change failed; they apply it at their next poll of the store"
)

func (s *Service) ackTimeout() time.Duration {
	if s.AckTimeout <= 0 {
		return time.Second
	}
	return s.AckTimeout
}

// FleetNote says in an audit message what the fleet did with a change.
func FleetNote(r *Report) string {
	if r == nil || len(r.Replicas) == 0 {
		return ""
	}
	acked, errs := 0, 0
	for _, a := range r.Replicas {
		if a.Acked {
			acked++
		}
		if a.Error != "" {
			errs++
		}
	}
	if errs > 0 && r.Replicas[len(r.Replicas)-1].ID == OtherReplicas {
		return "; fleet not told: the announcement failed, other replicas apply it at their next poll"
	}
	return fmt.Sprintf("; fleet version %d: %d of %d replicas acknowledged", r.Version, acked, len(r.Replicas))
}

// Kill takes an agent's power away: its identity is revoked (status killed, epoch raised, client
// secret disabled), its calls in flight cancelled, its MCP streams closed, its pending approvals
// rejected and its sandboxes told to stop, on this replica and, through the fleet, on every
// other; disableTools are disabled for every agent. All of it is done before Kill returns.
// Killing a killed agent reports the same state.
func (s *Service) Kill(ctx context.Context, p *warden.Principal, name, reason string, disableTools []string) (*Report, error) {
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
	var a *warden.Agent
	var disabled []string
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		var err error
		a, err = s.Store.UpdateAgent(ctx, name, func(a *warden.Agent) error {
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
			return err
		}
		// The state first: from here no check on this replica lets the agent through.
		s.State.ObserveAgent(a)
		announce(fleet.TopicAgent, a.ID)
		if len(disableTools) > 0 {
			disabled = s.disableTools(ctx, disableTools)
			for _, t := range disabled {
				announce(fleet.TopicTool, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Agent, r.AgentID, r.Status, r.Epoch, r.AlreadyKilled = a.Name, a.ID, a.Status, a.Epoch, already
	r.SessionsInvalidated = s.Tokens.LiveSessions(a.ID)
	r.ToolsDisabled = disabled
	return r, s.record(ctx, p, warden.EventKillAgent, "agent:"+a.Name, reason, r)
}

var errUnchanged = errors.New("unchanged")

// disableTools disables tools for every agent and reloads the registry, which puts them in the
// kill state; the reconcile that follows cancels the calls to them in flight.
func (s *Service) disableTools(ctx context.Context, tools []string) (disabled []string) {
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
	return disabled
}

// Restore makes a killed agent active again with a new client secret, whose hash the caller
// gives. Tokens from before the kill stay dead: their epoch is gone. Only admins restore.
func (s *Service) Restore(ctx context.Context, p *warden.Principal, name, reason string, secretHash []byte) (*warden.Agent, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	var a *warden.Agent
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		var err error
		a, err = s.Store.UpdateAgent(ctx, name, func(a *warden.Agent) error {
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
			return err
		}
		s.State.ObserveAgent(a)
		announce(fleet.TopicAgent, a.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, s.record(ctx, p, warden.EventRestoreAgent, "agent:"+a.Name, reason+FleetNote(r), nil)
}

// Lockdown denies every agent (or, with minRisk, every call to a tool of that risk or more)
// until an admin lifts it, and ends what it covers on every replica: calls in flight, MCP
// streams, approvals and sandboxes (for a full lockdown). It survives restarts.
func (s *Service) Lockdown(ctx context.Context, p *warden.Principal, reason string, minRisk warden.Risk) (*Report, error) {
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
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		if err := s.Store.SetLockdown(ctx, l); err != nil {
			return err
		}
		s.State.SetLockdown(s.State.Ticket(), l) // taken after the write: nothing read before it wins
		announce(fleet.TopicLockdown, "")
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.Lockdown = &l
	return r, s.record(ctx, p, warden.EventLockdown, "lockdown", reason, r)
}

// Lift ends the lockdown on every replica. Only admins lift it.
func (s *Service) Lift(ctx context.Context, p *warden.Principal, reason string) (warden.Lockdown, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return warden.Lockdown{}, err
	}
	l := warden.Lockdown{Reason: reason, By: p.Name, Since: s.now().UTC()}
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		cur, err := s.Store.Lockdown(ctx)
		if err != nil {
			return err
		}
		if !cur.Active {
			return warden.Errorf(warden.EConflict, "no lockdown is in force")
		}
		if err := s.Store.SetLockdown(ctx, l); err != nil {
			return err
		}
		s.State.SetLockdown(s.State.Ticket(), l) // taken after the write: nothing read before it wins
		announce(fleet.TopicLockdown, "")
		return nil
	})
	if err != nil {
		return warden.Lockdown{}, err
	}
	return l, s.record(ctx, p, warden.EventLockdownLift, "lockdown", reason+FleetNote(r), nil)
}

// Quarantine takes an artifact out of use by digest: a skill version (the skills capability
// checks it, and the reconciler stops the sandboxes that mounted it), an MCP tool manifest (the gateway's pipeline checks the pinned manifest's
// digest on every path, and the reconciler cancels the calls in flight to it, through
// Artifacts) or a local MCP server's package (the kill state's Check refuses its tools, the
// reconciler cancels their calls and stops the servers through Artifacts, and no start of it
// is allowed). The kill state carries it to every enforcement point of every replica; the report
// says what it stopped.
func (s *Service) Quarantine(ctx context.Context, p *warden.Principal, digest, reason string) (*apitype.QuarantineReport, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return nil, err
	}
	if !warden.ValidDigest(digest) {
		return nil, warden.Errorf(warden.EInvalid, "digest %q: want sha256:<64 hex digits>", digest)
	}
	q := &warden.Quarantine{Digest: digest, Reason: reason, By: p.Name, At: s.now().UTC()}
	r, err := s.Change(ctx, true, func(ctx context.Context, announce Announce) error {
		if err := s.Store.Quarantine(ctx, q); err != nil {
			return err
		}
		if err := s.Load(ctx); err != nil {
			return err
		}
		announce(fleet.TopicQuarantine, digest)
		return nil
	})
	if err != nil {
		return nil, err
	}
	rep := &apitype.QuarantineReport{Quarantine: q, CallsCancelled: r.CallsCancelled, SandboxesStopped: r.SandboxesStopped,
		ElapsedMS: r.ElapsedMS, Replicas: r.Replicas}
	if m, ok := s.Artifacts.(ManifestFinder); ok {
		rep.Manifests = m.ManifestsOf(digest)
	}
	if p, ok := s.Artifacts.(PackageFinder); ok {
		rep.Servers = p.PackagesOf(digest)
	}
	msg := fmt.Sprintf("%s (calls cancelled %d, sandboxes stopped %d", reason, r.CallsCancelled, r.SandboxesStopped)
	if len(rep.Manifests) > 0 {
		msg += "; tool manifests " + strings.Join(rep.Manifests, ", ")
	}
	if len(rep.Servers) > 0 {
		msg += "; local MCP servers refused (running instances stopped) " + strings.Join(rep.Servers, ", ")
	}
	return rep, s.record(ctx, p, warden.EventQuarantine, "skill:"+digest, msg+")"+FleetNote(r), nil)
}

// ManifestFinder names the pinned MCP tool manifests of a digest ("SERVER/TOOL"), for a
// quarantine's report; the gateway's pipeline is one.
type ManifestFinder interface {
	ManifestsOf(digest string) []string
}

// PackageFinder names the local MCP servers whose pinned package has a digest, for a
// quarantine's report; the gateway's pipeline is one.
type PackageFinder interface {
	PackagesOf(digest string) []string
}

func (s *Service) record(ctx context.Context, p *warden.Principal, event, resource, reason string, r *Report) error {
	msg := reason
	if r != nil {
		msg = fmt.Sprintf("%s (sessions %d, calls cancelled %d, streams closed %d, approvals rejected %d, sandboxes stopped %d, %.1f ms%s)",
			reason, r.SessionsInvalidated, r.CallsCancelled, r.StreamsClosed, r.ApprovalsRejected, r.SandboxesStopped, r.ElapsedMS, FleetNote(r))
	}
	// The change is made: its record must be written even if the person who asked has gone.
	return s.Audit.Append(context.WithoutCancel(ctx), &warden.AuditEvent{
		Type:     event,
		Actor:    warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role)},
		Target:   warden.EventTarget{Resource: resource},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Reason: event, Message: msg},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	})
}
