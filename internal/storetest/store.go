package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var storeTests = []storeTest{
	{"Ping", testPing},
	{"CanceledContext", testCanceledContext},
	{"Close", testClose},
}

func testPing(t *testing.T, s warden.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// calls invokes every method of the store but Close with valid arguments.
func calls(s warden.Store) map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"CreateAgent": func(ctx context.Context) error { return s.CreateAgent(ctx, newAgent("new")) },
		"Agent":       func(ctx context.Context) error { _, err := s.Agent(ctx, "present"); return err },
		"AgentByID":   func(ctx context.Context) error { _, err := s.AgentByID(ctx, "ag_present"); return err },
		"Agents":      func(ctx context.Context) error { _, err := s.Agents(ctx); return err },
		"UpdateAgent": func(ctx context.Context) error {
			_, err := s.UpdateAgent(ctx, "present", func(a *warden.Agent) error { a.Epoch++; return nil })
			return err
		},
		"DeleteAgent": func(ctx context.Context) error { return s.DeleteAgent(ctx, "present") },
		"CreateAdminToken": func(ctx context.Context) error {
			return s.CreateAdminToken(ctx, newAdminToken("new", warden.RoleAdmin))
		},
		"AdminTokenByHash": func(ctx context.Context) error {
			_, err := s.AdminTokenByHash(ctx, newAdminToken("present", warden.RoleAdmin).Hash)
			return err
		},
		"AdminTokens":      func(ctx context.Context) error { _, err := s.AdminTokens(ctx); return err },
		"RevokeAdminToken": func(ctx context.Context) error { return s.RevokeAdminToken(ctx, "present", base) },
		"CreateSigningKey": func(ctx context.Context) error { return s.CreateSigningKey(ctx, newSigningKey("new", base)) },
		"SigningKeys":      func(ctx context.Context) error { _, err := s.SigningKeys(ctx); return err },
		"DeleteSigningKeysRetiredBefore": func(ctx context.Context) error {
			_, err := s.DeleteSigningKeysRetiredBefore(ctx, base.Add(time.Hour))
			return err
		},
		"RevokeToken":        func(ctx context.Context) error { return s.RevokeToken(ctx, newRevokedToken("new", base)) },
		"RevokedTokens":      func(ctx context.Context) error { _, err := s.RevokedTokens(ctx, base); return err },
		"PruneRevokedTokens": func(ctx context.Context) error { _, err := s.PruneRevokedTokens(ctx, base); return err },
		"AppendAuditEvents": func(ctx context.Context) error {
			return s.AppendAuditEvents(ctx, []*warden.AuditEvent{newEvent("new", base, "x")})
		},
		"AuditEvents": func(ctx context.Context) error { _, err := s.AuditEvents(ctx, warden.AuditFilter{}); return err },
		"CountAuditEvents": func(ctx context.Context) error {
			_, err := s.CountAuditEvents(ctx, warden.AuditFilter{}, 10)
			return err
		},
		"CreateTool": func(ctx context.Context) error { return s.CreateTool(ctx, newTool("new")) },
		"Tool":       func(ctx context.Context) error { _, err := s.Tool(ctx, "present"); return err },
		"Tools":      func(ctx context.Context) error { _, err := s.Tools(ctx); return err },
		"UpdateTool": func(ctx context.Context) error {
			_, err := s.UpdateTool(ctx, "present", func(t *warden.Tool) error { t.Disabled = true; return nil })
			return err
		},
		"DeleteTool":   func(ctx context.Context) error { return s.DeleteTool(ctx, "present") },
		"PutSecret":    func(ctx context.Context) error { return s.PutSecret(ctx, newSecret("new")) },
		"Secret":       func(ctx context.Context) error { _, err := s.Secret(ctx, "present"); return err },
		"Secrets":      func(ctx context.Context) error { _, err := s.Secrets(ctx); return err },
		"DeleteSecret": func(ctx context.Context) error { return s.DeleteSecret(ctx, "present") },
		"CreatePolicySet": func(ctx context.Context) error {
			return s.CreatePolicySet(ctx, newPolicySet("new"), -1)
		},
		"PolicySet":  func(ctx context.Context) error { _, err := s.PolicySet(ctx, 0); return err },
		"PolicySets": func(ctx context.Context) error { _, err := s.PolicySets(ctx); return err },
		"PutPolicyShadow": func(ctx context.Context) error {
			return s.PutPolicyShadow(ctx, newPolicyShadow("new", 1))
		},
		"PolicyShadow":    func(ctx context.Context) error { _, err := s.PolicyShadow(ctx); return err },
		"EndPolicyShadow": func(ctx context.Context) error { return s.EndPolicyShadow(ctx, 1) },
		"PutBudget":       func(ctx context.Context) error { return s.PutBudget(ctx, newBudget("new", "present")) },
		"DeleteBudget":    func(ctx context.Context) error { return s.DeleteBudget(ctx, "present") },
		"Budgets":         func(ctx context.Context) error { _, err := s.Budgets(ctx); return err },
		"SaveBudgetCounters": func(ctx context.Context) error {
			return s.SaveBudgetCounters(ctx, []*warden.BudgetCounter{newCounter("present", 1)})
		},
		"BudgetCounters": func(ctx context.Context) error { _, err := s.BudgetCounters(ctx); return err },
		"Ping":           s.Ping,
	}
}

func seed(t *testing.T, s warden.Store) {
	t.Helper()
	createAgent(t, s, newAgent("present"))
	createAdminToken(t, s, newAdminToken("present", warden.RoleAdmin))
	createTool(t, s, newTool("present"))
	putSecret(t, s, newSecret("present"))
	createPolicySet(t, s, newPolicySet("present"), -1)
	putBudget(t, s, newBudget("present", "present"))
}

func testCanceledContext(t *testing.T, s warden.Store) {
	seed(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range calls(s) {
		t.Run(name, func(t *testing.T) {
			if err := call(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("with a canceled context: %v; want an error that is context.Canceled", err)
			}
		})
	}
	// Nothing was written: the agent is as it was and the new one does not exist.
	if got := getAgent(t, s, "present"); got.Epoch != 1 {
		t.Errorf("epoch = %d after a canceled update", got.Epoch)
	}
	_, err := s.Agent(t.Context(), "new")
	wantCode(t, err, warden.ENotFound)
	if got := getTool(t, s, "present"); got.Disabled {
		t.Error("tool disabled by a canceled update")
	}
	_, err = s.Tool(t.Context(), "new")
	wantCode(t, err, warden.ENotFound)
	_, err = s.Secret(t.Context(), "new")
	wantCode(t, err, warden.ENotFound)
	wantEqual(t, "policy versions", policyVersions(t, s), []int64{1})
	_, err = s.PolicyShadow(t.Context())
	wantCode(t, err, warden.ENotFound)
	wantNames(t, budgets(t, s), func(b *warden.Budget) string { return b.ID }, []string{"present"})
	if cs := budgetCounters(t, s); len(cs) != 0 {
		t.Errorf("counters %v saved with a canceled context", counterIDs(cs))
	}
}

func testClose(t *testing.T, s warden.Store) {
	seed(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range calls(s) {
		t.Run(name, func(t *testing.T) {
			if err := call(t.Context()); err == nil {
				t.Fatal("succeeded on a closed store")
			}
		})
	}
}
