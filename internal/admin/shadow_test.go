package admin

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/sqlite"
)

// TestShadowLifecycle: a candidate is checked as an apply is (the same error for the same
// files), keeps the generated grants, leaves the live set alone; promoting it is refused once
// the live set changed under it, and otherwise stores exactly its files as the next version,
// named in a policy.shadow_promote event, and ends it; a drop ends it too. Each change is audited.
func TestShadowLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.DiscardHandler)
	audit := &keptAudit{}
	s := New(Deps{Store: store, Audit: audit, Registry: gateway.NewRegistry(store, log), Log: log, Events: store})
	p := &warden.Principal{Name: "ops", Role: warden.RoleAdmin}
	if _, err := s.AddTool(ctx, p, ToolSpec{Name: "wiki", HTTP: "http://127.0.0.1:1", Risk: "low", Routes: []string{"GET / -> read", "POST / -> write"}}); err != nil {
		t.Fatal(err)
	}
	generated := map[string]string{ApplyPrefix + "grants.cedar": `permit(principal == Agent::"bot", action == Action::"wiki:read", resource);`}
	if _, err := s.storePolicies(ctx, p, generated, 0, warden.EventApply, "warden apply"); err != nil {
		t.Fatal(err)
	}
	live := map[string]string{"a.cedar": `permit(principal == Agent::"bot", action == Action::"wiki:write", resource);`}
	if _, err := s.ApplyPolicies(ctx, p, PolicyApply{Files: live}); err != nil {
		t.Fatal(err)
	}

	// What apply refuses, the shadow refuses with the same error.
	bad := map[string]string{"b.cedar": `permit(principal, action == Action::"wiki:delete", resource);`}
	_, applyErr := s.ApplyPolicies(ctx, p, PolicyApply{Files: bad})
	_, shadowErr := s.ApplyShadow(ctx, p, PolicyApply{Files: bad})
	if applyErr == nil || shadowErr == nil || warden.ErrorCode(shadowErr) != warden.ErrorCode(applyErr) || shadowErr.Error() != applyErr.Error() {
		t.Fatalf("apply refused with %v, the shadow with %v: want the same refusal", applyErr, shadowErr)
	}
	if _, err := s.ApplyShadow(ctx, p, PolicyApply{}); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("a shadow without files: %v, want invalid", err)
	}

	candidate := map[string]string{"c.cedar": `forbid(principal, action == Action::"wiki:write", resource);`}
	sh, err := s.ApplyShadow(ctx, p, PolicyApply{Files: candidate, Comment: "no writes"})
	if err != nil {
		t.Fatal(err)
	}
	if sh.Version != 1 || sh.Base != 2 || !maps.Equal(sh.Files, map[string]string{"c.cedar": candidate["c.cedar"], ApplyPrefix + "grants.cedar": generated[ApplyPrefix+"grants.cedar"]}) {
		t.Fatalf("candidate %+v: want version 1 beside 2, the people's files and the generated ones", sh)
	}
	if ps, _ := store.PolicySet(ctx, 0); ps.Version != 2 {
		t.Fatalf("applying a shadow changed the live set to version %d", ps.Version)
	}

	// A live apply after the candidate: promoting it would undo that apply unseen.
	if _, err := s.ApplyPolicies(ctx, p, PolicyApply{Files: live, Comment: "again"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PromoteShadow(ctx, p, ""); warden.ErrorCode(err) != warden.EConflict {
		t.Fatalf("promoting a candidate applied beside version 2 onto 3: %v, want conflict", err)
	}
	if sh, err = s.ApplyShadow(ctx, p, PolicyApply{Files: candidate}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.PromoteShadow(ctx, p, "a week without surprises")
	if err != nil {
		t.Fatal(err)
	}
	if ps.Version != 4 || !maps.Equal(ps.Files, sh.Files) {
		t.Fatalf("promoted as version %d with %v, want version 4 with the candidate's files", ps.Version, ps.Files)
	}
	if _, err := store.PolicyShadow(ctx); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("the promoted candidate is still there: %v", err)
	}
	if _, err := s.DropShadow(ctx, p, ""); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("dropping no candidate: %v, want not found", err)
	}
	if _, err := s.ApplyShadow(ctx, p, PolicyApply{Files: live}); err != nil {
		t.Fatal(err)
	}
	dropped, err := s.DropShadow(ctx, p, "not needed")
	if err != nil || dropped.Version != 3 {
		t.Fatalf("drop: %+v, %v; want version 3 dropped", dropped, err)
	}
	if _, err := store.PolicyShadow(ctx); warden.ErrorCode(err) != warden.ENotFound {
		t.Fatalf("the dropped candidate is still there: %v", err)
	}

	// A candidate naming a tool removed since compares nothing, and the report says why.
	if _, err := s.AddTool(ctx, p, ToolSpec{Name: "notes", HTTP: "http://127.0.0.1:1", Risk: "low", Routes: []string{"GET / -> read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyShadow(ctx, p, PolicyApply{Files: map[string]string{"n.cedar": `permit(principal, action == Action::"notes:read", resource);`}}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.ShadowReport(ctx, "")
	if err != nil || rep.ShadowError != "" || rep.Shadow == nil || rep.Shadow.Version != 4 || rep.Shadow.Files != nil {
		t.Fatalf("report %+v, %v: want shadow version 4 without files, compiling", rep, err)
	}
	if err := s.RemoveTool(ctx, p, "notes"); err != nil {
		t.Fatal(err)
	}
	if rep, err = s.ShadowReport(ctx, ""); err != nil || !strings.Contains(rep.ShadowError, "notes") {
		t.Fatalf("report %+v, %v: want why the candidate does not compile", rep, err)
	}
	if _, err := s.ShadowReport(ctx, "yesterday"); warden.ErrorCode(err) != warden.EInvalid {
		t.Fatalf("since=yesterday: %v, want invalid", err)
	}

	var got []string
	for _, ev := range audit.evs {
		if strings.HasPrefix(ev.Type, "policy.shadow") {
			got = append(got, ev.Type+" "+ev.Target.Resource+" "+ev.Decision.Message)
		}
	}
	want := []string{
		"policy.shadow_apply policy_shadow:1 shadow version 1 beside version 2: no writes",
		"policy.shadow_apply policy_shadow:2 shadow version 2 beside version 3",
		"policy.shadow_promote policy:4 version 4: promote shadow 2: a week without surprises",
		"policy.shadow_apply policy_shadow:3 shadow version 3 beside version 4",
		"policy.shadow_drop policy_shadow:3 shadow version 3 dropped: not needed",
		"policy.shadow_apply policy_shadow:4 shadow version 4 beside version 4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
