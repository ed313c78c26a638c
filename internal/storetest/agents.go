package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var agentTests = []storeTest{
	{"CreateAndGet", testCreateAndGetAgent},
	{"TimesRoundTrip", testAgentTimes},
	{"LabelsRoundTrip", testAgentLabels},
	{"CreateConflict", testCreateAgentConflict},
	{"NotFound", testAgentNotFound},
	{"ListOrderedByName", testAgentsOrderedByName},
	{"Update", testUpdateAgent},
	{"UpdateErrorWritesNothing", testUpdateAgentErrorWritesNothing},
	{"UpdateConcurrent", testUpdateAgentConcurrent},
	{"UpdateWaitHonoursContext", testUpdateAgentWaitHonoursContext},
	{"Delete", testDeleteAgent},
}

func newAgent(name string) *warden.Agent {
	return &warden.Agent{
		ID:           "ag_" + name,
		Name:         name,
		Owner:        "alice@example.com",
		Purpose:      "triage issues",
		Labels:       map[string]string{"team": "infra"},
		Status:       warden.AgentActive,
		StatusReason: "",
		Epoch:        1,
		SecretHash:   hash(name),
		CreatedAt:    base,
		UpdatedAt:    base.Add(time.Second),
		ExpiresAt:    base.Add(90 * 24 * time.Hour),
	}
}

// inUTC returns a copy of a with its times in UTC, as the store returns them.
func inUTC(a *warden.Agent) *warden.Agent {
	c := *a
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC(), a.ExpiresAt.UTC()
	return &c
}

func createAgent(t *testing.T, s warden.Store, a *warden.Agent) {
	t.Helper()
	if err := s.CreateAgent(t.Context(), a); err != nil {
		t.Fatalf("CreateAgent(%s): %v", a.Name, err)
	}
}

func getAgent(t *testing.T, s warden.Store, name string) *warden.Agent {
	t.Helper()
	a, err := s.Agent(t.Context(), name)
	if err != nil {
		t.Fatalf("Agent(%s): %v", name, err)
	}
	return a
}

func testCreateAndGetAgent(t *testing.T, s warden.Store) {
	a := newAgent("triage-bot")
	a.Status, a.StatusReason = warden.AgentSuspended, "investigating a leak"
	a.Epoch = 7
	createAgent(t, s, a)

	wantEqual(t, "Agent", getAgent(t, s, a.Name), inUTC(a))
	byID, err := s.AgentByID(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantEqual(t, "AgentByID", byID, inUTC(a))
}

func testAgentTimes(t *testing.T, s warden.Store) {
	tests := []struct {
		name string
		at   time.Time
	}{
		{"zero", time.Time{}},
		{"nanoseconds", base},
		{"before 1970", time.Date(1969, 7, 20, 20, 17, 40, 123456789, time.UTC)},
		{"far future", time.Date(2262, 1, 1, 0, 0, 0, 1, time.UTC)},
		{"local zone", time.Date(2030, 1, 2, 3, 4, 5, 6000, time.FixedZone("UTC-7", -7*60*60))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAgent(string(rune('a' + i)))
			a.CreatedAt, a.UpdatedAt, a.ExpiresAt = tt.at, tt.at, tt.at
			createAgent(t, s, a)
			got := getAgent(t, s, a.Name)
			for _, at := range []time.Time{got.CreatedAt, got.UpdatedAt, got.ExpiresAt} {
				if !at.Equal(tt.at) || at.IsZero() != tt.at.IsZero() {
					t.Errorf("stored %v, got back %v", tt.at, at)
				}
				if !at.IsZero() && at.Location() != time.UTC {
					t.Errorf("got back %v in %v, want UTC", at, at.Location())
				}
			}
		})
	}
	t.Run("out of range", func(t *testing.T) {
		a := newAgent("year-3000")
		a.ExpiresAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		wantCode(t, s.CreateAgent(t.Context(), a), warden.EInvalid)
		_, err := s.Agent(t.Context(), a.Name)
		wantCode(t, err, warden.ENotFound)
	})
}

func testAgentLabels(t *testing.T, s warden.Store) {
	tests := []struct {
		name   string
		labels map[string]string
	}{
		{"none", nil},
		{"empty", map[string]string{}},
		{"several", map[string]string{"team": "infra", "env": "prod", "cost-centre": "42"}},
		{"awkward", map[string]string{"quote\"": "back\\slash", "<html>": "&amp;", "ünïcödé": "✓", "": "empty key"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAgent(string(rune('a' + i)))
			a.Labels = tt.labels
			createAgent(t, s, a)
			wantEqual(t, "labels", getAgent(t, s, a.Name).Labels, tt.labels)
		})
	}
}

func testCreateAgentConflict(t *testing.T, s warden.Store) {
	a := newAgent("taken")
	createAgent(t, s, a)
	tests := []struct {
		name  string
		agent *warden.Agent
	}{
		{"same name", &warden.Agent{ID: "ag_other", Name: a.Name, Status: warden.AgentActive}},
		{"same ID", &warden.Agent{ID: a.ID, Name: "other", Status: warden.AgentActive}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, s.CreateAgent(t.Context(), tt.agent), warden.EConflict)
		})
	}
	wantEqual(t, "Agent after conflicts", getAgent(t, s, a.Name), inUTC(a))
	if agents, err := s.Agents(t.Context()); err != nil || len(agents) != 1 {
		t.Fatalf("Agents() = %d agents, %v; want only the first", len(agents), err)
	}
}

func testAgentNotFound(t *testing.T, s warden.Store) {
	createAgent(t, s, newAgent("present"))
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Agent", func(ctx context.Context) error { _, err := s.Agent(ctx, "absent"); return err }},
		{"AgentByID", func(ctx context.Context) error { _, err := s.AgentByID(ctx, "ag_absent"); return err }},
		{"UpdateAgent", func(ctx context.Context) error {
			_, err := s.UpdateAgent(ctx, "absent", func(*warden.Agent) error {
				t.Error("UpdateAgent called fn for an agent that does not exist")
				return nil
			})
			return err
		}},
		{"DeleteAgent", func(ctx context.Context) error { return s.DeleteAgent(ctx, "absent") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(t.Context()), warden.ENotFound)
		})
	}
}

func testAgentsOrderedByName(t *testing.T, s warden.Store) {
	agents, err := s.Agents(t.Context())
	if err != nil || len(agents) != 0 {
		t.Fatalf("Agents() of an empty store = %v, %v", agents, err)
	}
	// Byte order: '-' sorts before digits, digits before letters, whatever a locale would say.
	want := []string{"a", "a-b", "a0", "ab", "b", "z-9"}
	for _, i := range rand.Perm(len(want)) {
		createAgent(t, s, newAgent(want[i]))
	}
	agents, err = s.Agents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, agents, func(a *warden.Agent) string { return a.Name }, want)
	wantEqual(t, "first agent", agents[0], inUTC(newAgent("a")))
}

func testUpdateAgent(t *testing.T, s warden.Store) {
	a := newAgent("worker")
	createAgent(t, s, a)
	later := base.Add(time.Hour)
	updated, err := s.UpdateAgent(t.Context(), a.Name, func(a *warden.Agent) error {
		a.Status, a.StatusReason = warden.AgentKilled, "exfiltration attempt"
		a.Epoch++
		a.Labels["killed-by"] = "bob"
		a.SecretHash = hash("rotated")
		a.UpdatedAt = later
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := inUTC(a)
	want.Status, want.StatusReason, want.Epoch = warden.AgentKilled, "exfiltration attempt", 2
	want.Labels = map[string]string{"team": "infra", "killed-by": "bob"}
	want.SecretHash, want.UpdatedAt = hash("rotated"), later.UTC()
	wantEqual(t, "UpdateAgent result", inUTC(updated), want)
	wantEqual(t, "Agent after UpdateAgent", getAgent(t, s, a.Name), want)

	t.Run("rename", func(t *testing.T) {
		if _, err := s.UpdateAgent(t.Context(), a.Name, func(a *warden.Agent) error { a.Name = "renamed"; return nil }); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AgentByID(t.Context(), a.ID); err != nil || got.Name != "renamed" {
			t.Fatalf("AgentByID after rename = %+v, %v", got, err)
		}
	})
	t.Run("rename to a taken name", func(t *testing.T) {
		createAgent(t, s, newAgent("other"))
		_, err := s.UpdateAgent(t.Context(), "renamed", func(a *warden.Agent) error { a.Name = "other"; a.Epoch = 99; return nil })
		wantCode(t, err, warden.EConflict)
		if got := getAgent(t, s, "renamed"); got.Epoch != 2 {
			t.Fatalf("epoch after a failed rename = %d, want 2", got.Epoch)
		}
	})
	t.Run("ID cannot change", func(t *testing.T) {
		_, err := s.UpdateAgent(t.Context(), "renamed", func(a *warden.Agent) error { a.ID = "ag_new"; return nil })
		wantCode(t, err, warden.EInvalid)
		_, err = s.AgentByID(t.Context(), a.ID)
		wantCode(t, err, "")
	})
}

func testUpdateAgentErrorWritesNothing(t *testing.T, s warden.Store) {
	a := newAgent("steady")
	createAgent(t, s, a)
	errRefused := warden.Errorf(warden.EForbidden, "refused")
	tests := []struct {
		name string
		fn   func(ctx context.Context, cancel context.CancelFunc, a *warden.Agent) error
		want error
	}{
		{"fn fails", func(_ context.Context, _ context.CancelFunc, a *warden.Agent) error {
			a.Epoch, a.Status = 100, warden.AgentKilled
			return errRefused
		}, errRefused},
		{"context canceled in fn", func(_ context.Context, cancel context.CancelFunc, a *warden.Agent) error {
			a.Epoch, a.Status = 100, warden.AgentKilled
			cancel()
			return nil
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			got, err := s.UpdateAgent(ctx, a.Name, func(a *warden.Agent) error { return tt.fn(ctx, cancel, a) })
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("UpdateAgent = %v, %v; want nil, %v", got, err, tt.want)
			}
			wantEqual(t, "Agent after a failed update", getAgent(t, s, a.Name), inUTC(a))
		})
	}
}

func testUpdateAgentConcurrent(t *testing.T, s warden.Store) {
	const writers = 20
	createAgent(t, s, newAgent("contended"))
	err := concurrently(writers, func(int) error {
		_, err := s.UpdateAgent(t.Context(), "contended", func(a *warden.Agent) error {
			a.Epoch++
			return nil
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := getAgent(t, s, "contended").Epoch; got != 1+writers {
		t.Fatalf("epoch after %d concurrent raises = %d, want %d: an update was lost", writers, got, 1+writers)
	}
}

// testUpdateAgentWaitHonoursContext checks that a writer waiting for another one gives up when
// its context ends, instead of hanging.
func testUpdateAgentWaitHonoursContext(t *testing.T, s warden.Store) {
	createAgent(t, s, newAgent("held"))
	inside, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		_, err := s.UpdateAgent(t.Context(), "held", func(a *warden.Agent) error {
			close(inside)
			<-release
			a.Epoch++
			return nil
		})
		holder <- err
	}()
	<-inside

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.UpdateAgent(ctx, "held", func(a *warden.Agent) error {
		t.Error("fn ran while another update held the agent")
		return nil
	})
	waited := time.Since(start)
	close(release)
	if err == nil {
		t.Error("an update that waited past its deadline succeeded")
	}
	if waited > 5*time.Second {
		t.Errorf("an update with a 200ms deadline waited %v", waited)
	}
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	if got := getAgent(t, s, "held").Epoch; got != 2 {
		t.Fatalf("epoch = %d, want 2", got)
	}
}

func testDeleteAgent(t *testing.T, s warden.Store) {
	a := newAgent("doomed")
	createAgent(t, s, a)
	createAgent(t, s, newAgent("survivor"))
	if err := s.DeleteAgent(t.Context(), a.Name); err != nil {
		t.Fatal(err)
	}
	_, err := s.Agent(t.Context(), a.Name)
	wantCode(t, err, warden.ENotFound)
	_, err = s.AgentByID(t.Context(), a.ID)
	wantCode(t, err, warden.ENotFound)
	wantCode(t, s.DeleteAgent(t.Context(), a.Name), warden.ENotFound)

	agents, err := s.Agents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNames(t, agents, func(a *warden.Agent) string { return a.Name }, []string{"survivor"})
	// The name is free again; the new agent is a new identity.
	again := newAgent(a.Name)
	again.ID = "ag_reborn"
	createAgent(t, s, again)
	wantEqual(t, "recreated agent", getAgent(t, s, a.Name), inUTC(again))
}
