package killswitch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/fleet"
)

// terminatedHere is everything the fakes were told to end, for exact comparisons.
type terminatedHere struct {
	agents, tools, sessions, approvals, rejectAll []string
	all                                           int
	runners                                       []string // the runners told to stop, by ID
}

func (e *serviceEnv) terminated(t *testing.T) terminatedHere {
	t.Helper()
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	got := terminatedHere{
		agents: slices.Clone(e.calls.agents), tools: slices.Clone(e.calls.tools), all: e.calls.all,
		sessions: slices.Clone(e.sessions.closed), approvals: slices.Clone(e.approvals.agents), rejectAll: slices.Clone(e.approvals.all),
	}
	for _, id := range []string{"run_1", "run_2"} {
		r, ok := e.svc.Runners.Get(id, map[string]string{"run_1": "agt_bot", "run_2": "agt_other"}[id])
		if !ok {
			t.Fatalf("runner %s is gone", id)
		}
		select {
		case reason := <-r.terminate:
			got.runners = append(got.runners, id+": "+reason)
		default:
		}
	}
	return got
}

func (e *serviceEnv) agentState(t *testing.T, change func(a *warden.Agent)) *warden.Agent {
	t.Helper()
	a := *e.agent
	change(&a)
	return &a
}

// TestReconcileTransitions changes the kill state as a reload from the store would (another
// replica's change, the safety-net poll) and checks that one reconcile ends exactly what the
// change forbids here and nothing else, and that a second reconcile ends nothing more.
func TestReconcileTransitions(t *testing.T) {
	t.Parallel()
	later := time.Now().Add(time.Minute)
	tests := []struct {
		name   string
		before func(e *serviceEnv) // applied and reconciled first
		change func(e *serviceEnv)
		want   terminatedHere
		// applied is what the reconcile reports; calls count 2 per agent, 1 per tool, 5 for all.
		applied fleet.Applied
	}{
		{
			name: "kill",
			change: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) {
					a.Status, a.StatusReason, a.Epoch, a.UpdatedAt = warden.AgentKilled, "exfiltration", 2, later
				}))
			},
			want: terminatedHere{agents: []string{"agt_bot"}, sessions: []string{"agt_bot"},
				approvals: []string{"agt_bot: agent killed: exfiltration"}, runners: []string{"run_1: agent killed: exfiltration"}},
			applied: fleet.Applied{CallsCancelled: 2, SessionsClosed: 1, SandboxesStopped: 1},
		},
		{
			name: "suspend",
			change: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) {
					a.Status, a.StatusReason, a.Epoch, a.UpdatedAt = warden.AgentSuspended, "review", 2, later
				}))
			},
			want: terminatedHere{agents: []string{"agt_bot"}, sessions: []string{"agt_bot"},
				approvals: []string{"agt_bot: agent suspended: review"}, runners: []string{"run_1: agent suspended: review"}},
			applied: fleet.Applied{CallsCancelled: 2, SessionsClosed: 1, SandboxesStopped: 1},
		},
		{
			name:   "delete",
			change: func(e *serviceEnv) { e.svc.State.ForgetAgent("agt_bot") },
			want: terminatedHere{agents: []string{"agt_bot"}, sessions: []string{"agt_bot"},
				approvals: []string{"agt_bot: agent deleted"}, runners: []string{"run_1: agent deleted"}},
			applied: fleet.Applied{CallsCancelled: 2, SessionsClosed: 1, SandboxesStopped: 1},
		},
		{
			name: "secret rotated: a new epoch",
			change: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) { a.Epoch, a.UpdatedAt = 2, later }))
			},
			want: terminatedHere{agents: []string{"agt_bot"}, sessions: []string{"agt_bot"},
				approvals: []string{"agt_bot: agent's credentials changed (new epoch)"}, runners: []string{"run_1: agent's credentials changed (new epoch)"}},
			applied: fleet.Applied{CallsCancelled: 2, SessionsClosed: 1, SandboxesStopped: 1},
		},
		{
			name: "renewed: same epoch, nothing ends",
			change: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) { a.ExpiresAt, a.UpdatedAt = later.Add(time.Hour), later }))
			},
		},
		{
			name: "restored: nothing of the killed agent runs",
			before: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) { a.Status, a.Epoch, a.UpdatedAt = warden.AgentKilled, 2, later }))
			},
			change: func(e *serviceEnv) {
				e.svc.State.ObserveAgent(e.agentState(t, func(a *warden.Agent) { a.Epoch, a.UpdatedAt = 3, later.Add(time.Second) }))
			},
		},
		{
			name: "full lockdown",
			change: func(e *serviceEnv) {
				e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Active: true, Reason: "incident 7"})
			},
			want: terminatedHere{all: 1, sessions: []string{"agt_bot", "agt_other"}, rejectAll: []string{"lockdown: incident 7"},
				runners: []string{"run_1: lockdown: incident 7", "run_2: lockdown: incident 7"}},
			applied: fleet.Applied{CallsCancelled: 5, SessionsClosed: 2, SandboxesStopped: 2},
		},
		{
			name: "lockdown from high risk",
			change: func(e *serviceEnv) {
				e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Active: true, MinRisk: warden.RiskHigh, Reason: "x"})
			},
			want:    terminatedHere{tools: []string{"payments"}},
			applied: fleet.Applied{CallsCancelled: 1},
		},
		{
			name: "lockdown widened from high risk to everything",
			before: func(e *serviceEnv) {
				e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Active: true, MinRisk: warden.RiskHigh, Reason: "x"})
			},
			change: func(e *serviceEnv) {
				e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Active: true, Reason: "y"})
			},
			want: terminatedHere{all: 1, sessions: []string{"agt_bot", "agt_other"}, rejectAll: []string{"lockdown: y"},
				runners: []string{"run_1: lockdown: y", "run_2: lockdown: y"}},
			applied: fleet.Applied{CallsCancelled: 5, SessionsClosed: 2, SandboxesStopped: 2},
		},
		{
			name: "lockdown lifted: nothing ends",
			before: func(e *serviceEnv) {
				e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Active: true, Reason: "x"})
			},
			change: func(e *serviceEnv) { e.svc.State.SetLockdown(e.svc.State.Ticket(), warden.Lockdown{Reason: "over"}) },
		},
		{
			name: "tool disabled",
			change: func(e *serviceEnv) {
				e.svc.State.SetTools(e.svc.State.Ticket(), []*warden.Tool{{Name: "wiki", Disabled: true}, {Name: "payments"}})
			},
			want:    terminatedHere{tools: []string{"wiki"}},
			applied: fleet.Applied{CallsCancelled: 1},
		},
		{
			name: "skill quarantined: the sandbox that mounted it",
			change: func(e *serviceEnv) {
				e.runner.Skills = []apitype.RunnerSkill{{Name: "notes", Digest: skillDigest}}
				e.svc.State.SetQuarantined(e.svc.State.Ticket(), []*warden.Quarantine{{Digest: "sha256:" + strings.Repeat("0", 64)}, {Digest: skillDigest}})
			},
			want:    terminatedHere{runners: []string{"run_1: a skill it mounted is quarantined: " + skillDigest}},
			applied: fleet.Applied{SandboxesStopped: 1},
		},
		{
			name: "skill quarantined that no sandbox mounted: nothing ends",
			change: func(e *serviceEnv) {
				e.runner.Skills = []apitype.RunnerSkill{{Name: "notes", Digest: "sha256:" + strings.Repeat("1", 64)}}
				e.svc.State.SetQuarantined(e.svc.State.Ticket(), []*warden.Quarantine{{Digest: skillDigest}})
			},
		},
		{
			name: "tool removed: its calls",
			before: func(e *serviceEnv) {
				e.svc.State.SetTools(e.svc.State.Ticket(), []*warden.Tool{{Name: "wiki"}, {Name: "payments"}})
			},
			change: func(e *serviceEnv) {
				e.svc.State.SetTools(e.svc.State.Ticket(), []*warden.Tool{{Name: "payments"}})
			},
			want:    terminatedHere{tools: []string{"wiki"}},
			applied: fleet.Applied{CallsCancelled: 1},
		},
		{
			name: "tool enabled: nothing ends",
			before: func(e *serviceEnv) {
				e.svc.State.SetTools(e.svc.State.Ticket(), []*warden.Tool{{Name: "wiki", Disabled: true}})
			},
			change: func(e *serviceEnv) { e.svc.State.SetTools(e.svc.State.Ticket(), []*warden.Tool{{Name: "wiki"}}) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newServiceEnv(t)
			e.svc.Baseline()
			ctx := context.Background()
			if tc.before != nil {
				tc.before(e)
				e.svc.Reconcile(ctx)
				e.calls.agents, e.calls.tools, e.calls.all = nil, nil, 0
				e.sessions.closed, e.approvals.agents, e.approvals.all = nil, nil, nil
				e.terminated(t) // drains the runners' channels
				e.svc.Runners = NewRunners()
				e.svc.Runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_1", AgentID: "agt_bot", Agent: "bot"}})
				e.svc.Runners.Register(&Runner{RunnerInfo: apitype.RunnerInfo{ID: "run_2", AgentID: "agt_other", Agent: "other"}})
			}
			tc.change(e)
			applied := e.svc.Reconcile(ctx)
			got := e.terminated(t)
			if !equalTerminated(got, tc.want) {
				t.Errorf("ended %+v\nwant  %+v", got, tc.want)
			}
			if applied != tc.applied {
				t.Errorf("applied %+v, want %+v", applied, tc.applied)
			}
			if again := e.svc.Reconcile(ctx); again != (fleet.Applied{}) {
				t.Errorf("a second reconcile ended more: %+v", again)
			}
		})
	}
}

// skillDigest names a skill version a sandbox mounted.
var skillDigest = "sha256:" + strings.Repeat("5a", 32)

func equalTerminated(a, b terminatedHere) bool {
	return slices.Equal(a.agents, b.agents) && slices.Equal(a.tools, b.tools) && slices.Equal(a.sessions, b.sessions) &&
		slices.Equal(a.approvals, b.approvals) && slices.Equal(a.rejectAll, b.rejectAll) && a.all == b.all &&
		slices.Equal(a.runners, b.runners)
}

// fakeFleet stands for the other replicas: it numbers announcements and answers WaitAcks with
// the acknowledgements it was given.
type fakeFleet struct {
	mu         sync.Mutex
	publishErr error
	published  []fleet.Change
	acks       []apitype.ReplicaAck
	waited     []int64
	timeout    time.Duration
	reloaded   int
}

func (f *fakeFleet) Self() string { return "replica-a" }

func (f *fakeFleet) Publish(ctx context.Context, topic fleet.Topic, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.publishErr != nil {
		return 0, f.publishErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c := fleet.Change{Topic: topic, Name: name, Version: int64(len(f.published) + 1), Replica: f.Self()}
	f.published = append(f.published, c)
	return c.Version, nil
}

func (f *fakeFleet) WaitAcks(_ context.Context, version int64, timeout time.Duration) []apitype.ReplicaAck {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waited = append(f.waited, version)
	f.timeout = timeout
	return slices.Clone(f.acks)
}

func (f *fakeFleet) Reloaded(time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloaded++
}

// A kill is announced (the agent, then each tool it disables) and waits for the fleet's
// acknowledgement of the last announcement; the report lists this replica first with what it
// ended, then the others as they answered; the audit event says how many acknowledged.
func TestKillWaitsForTheFleet(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	f := &fakeFleet{acks: []apitype.ReplicaAck{
		{ID: "replica-b", Acked: true, AckedMS: 3.5, CallsCancelled: 1, SessionsClosed: 1},
		{ID: "replica-c", Error: "no acknowledgement within 250ms"},
	}}
	e.svc.Fleet, e.svc.AckTimeout = f, 250*time.Millisecond
	e.svc.Baseline()
	r, err := e.svc.Kill(context.Background(), admin, "bot", "exfiltration", []string{"wiki"})
	if err != nil {
		t.Fatal(err)
	}
	want := []fleet.Change{
		{Topic: fleet.TopicAgent, Name: "agt_bot", Version: 1, Replica: "replica-a"},
		{Topic: fleet.TopicTool, Name: "wiki", Version: 2, Replica: "replica-a"},
	}
	if !slices.Equal(f.published, want) {
		t.Errorf("announced %+v, want %+v", f.published, want)
	}
	if !slices.Equal(f.waited, []int64{2}) || f.timeout != 250*time.Millisecond {
		t.Errorf("waited for %v within %v; want version 2 within 250ms", f.waited, f.timeout)
	}
	self := apitype.ReplicaAck{ID: "replica-a", Acked: true, CallsCancelled: 3, SessionsClosed: 1, SandboxesStopped: 1}
	if r.Version != 2 || len(r.Replicas) != 3 || r.Replicas[0] != self || r.Replicas[1] != f.acks[0] || r.Replicas[2] != f.acks[1] {
		t.Errorf("report version %d, replicas %+v", r.Version, r.Replicas)
	}
	if r.CallsCancelled != 3 { // the agent's 2 and the disabled tool's 1, ended here
		t.Errorf("calls cancelled %d, want 3", r.CallsCancelled)
	}
	if msg := e.audit.last().Decision.Message; !strings.Contains(msg, "fleet version 2: 2 of 3 replicas acknowledged") {
		t.Errorf("audit message %q does not say what the fleet did", msg)
	}
}

// An announcement that fails leaves the kill standing and enforced here; the report and the
// audit event say the fleet was not told, and nothing waits for acknowledgements.
func TestKillWhenTheFleetCannotBeTold(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	f := &fakeFleet{publishErr: errors.New("conn closed")}
	e.svc.Fleet = f
	e.svc.Baseline()
	r, err := e.svc.Kill(context.Background(), admin, "bot", "exfiltration", nil)
	if err != nil {
		t.Fatalf("a failed announcement failed the kill: %v", err)
	}
	if e.check(2, nil) != warden.ReasonAgentInactive {
		t.Fatal("the kill is not enforced here")
	}
	if r.CallsCancelled != 2 || r.StreamsClosed != 1 || r.SandboxesStopped != 1 {
		t.Errorf("report %+v: what runs here was not ended", r)
	}
	if len(r.Replicas) != 2 || !r.Replicas[0].Acked || r.Replicas[1] != (apitype.ReplicaAck{ID: OtherReplicas, Error: FleetNotTold}) {
		t.Errorf("replicas %+v; want this one, then the others not told", r.Replicas)
	}
	if len(f.waited) != 0 {
		t.Error("waited for acknowledgements of an announcement that was never made")
	}
	if msg := e.audit.last().Decision.Message; !strings.Contains(msg, "fleet not told") {
		t.Errorf("audit message %q does not say the fleet was not told", msg)
	}
	// The same for a lockdown.
	lr, err := e.svc.Lockdown(context.Background(), admin, "incident", "")
	if err != nil || len(lr.Replicas) != 2 || lr.Replicas[1].Error != FleetNotTold {
		t.Errorf("lockdown: %v, replicas %+v", err, lr)
	}
}

// lockCheckingStore reports whether the reconciler's lock was free during an agent's write.
type lockCheckingStore struct {
	Store
	svc      *Service
	unlocked bool
	after    func(a *warden.Agent)
}

func (s *lockCheckingStore) UpdateAgent(ctx context.Context, name string, fn func(a *warden.Agent) error) (*warden.Agent, error) {
	a, err := s.Store.UpdateAgent(ctx, name, fn)
	if s.svc.reconcileMu.TryLock() {
		s.unlocked = true
		s.svc.reconcileMu.Unlock()
	}
	if err == nil && s.after != nil {
		s.after(a)
	}
	return a, err
}

// A kill's report counts exactly what the kill ended, however background reconciles (a remote
// change, the poll) race it: the kill holds the reconciler from its store write on, so a
// background pass that reads the killed agent (here: in the middle of the kill, the way the
// token service's refresh would) waits, then finds nothing left to end. Run with -race.
func TestKillCountsExactlyUnderBackgroundReconciles(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	e.svc.Baseline()
	ctx := context.Background()
	store := &lockCheckingStore{Store: e.svc.Store, svc: e.svc}
	e.svc.Store = store
	var wg sync.WaitGroup
	var mu sync.Mutex
	var background fleet.Applied
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				a := e.svc.Reconcile(ctx)
				mu.Lock()
				background.CallsCancelled += a.CallsCancelled
				background.SessionsClosed += a.SessionsClosed
				background.SandboxesStopped += a.SandboxesStopped
				mu.Unlock()
			}
		})
	}
	store.after = func(a *warden.Agent) { e.svc.State.ObserveAgent(a) } // a reload sees the kill at once
	r, err := e.svc.Kill(ctx, admin, "bot", "exfiltration", nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if store.unlocked {
		t.Error("the kill wrote the store outside the reconciler's lock: a background pass could end (and count) its work")
	}
	if r.CallsCancelled != 2 || r.StreamsClosed != 1 || r.ApprovalsRejected != 3 || r.SandboxesStopped != 1 {
		t.Errorf("kill report %+v; want exactly what the agent had running", r)
	}
	if background != (fleet.Applied{}) {
		t.Errorf("background reconciles ended %+v of the kill's work", background)
	}
}

// A caller that goes away once its change is in the store (the CLI interrupted) does not stop
// the announcement or the ending of what the change forbids here.
func TestChangeOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	f := &fakeFleet{}
	e.svc.Fleet = f
	e.svc.Baseline()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := e.svc.Change(ctx, false, func(ctx context.Context, announce Announce) error {
		a, err := e.store.UpdateAgent(ctx, "bot", func(a *warden.Agent) error {
			a.Status, a.Epoch = warden.AgentKilled, a.Epoch+1
			return nil
		})
		if err != nil {
			return err
		}
		e.svc.State.ObserveAgent(a)
		announce(fleet.TopicAgent, a.ID)
		cancel() // the caller is gone, the change committed
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.published) != 1 || r.CallsCancelled != 2 || r.ApprovalsRejected != 3 {
		t.Errorf("announced %+v, report %+v; want the kill announced and ended here", f.published, r)
	}
}

// A kill whose caller goes away once the agent is killed in the store is still announced, ended
// here and recorded.
func TestKillOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	e := newServiceEnv(t)
	f := &fakeFleet{}
	e.svc.Fleet = f
	e.svc.Baseline()
	ctx, cancel := context.WithCancel(context.Background())
	e.svc.Store = &lockCheckingStore{Store: e.svc.Store, svc: e.svc, after: func(*warden.Agent) { cancel() }}
	r, err := e.svc.Kill(ctx, admin, "bot", "exfiltration", nil)
	if err != nil {
		t.Fatalf("the kill failed when its caller went away: %v", err)
	}
	if len(f.published) != 1 || r.CallsCancelled != 2 {
		t.Errorf("announced %+v, report %+v", f.published, r)
	}
	if ev := e.audit.last(); ev.Type != warden.EventKillAgent {
		t.Errorf("the kill was not recorded: last event %+v", ev)
	}
}
