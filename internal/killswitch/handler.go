package killswitch

import (
	"context"
	"errors"
	"fmt"

	"github.com/wardenhq/warden/internal/fleet"
)

// Keys reloads the signing keys and revocations (the token service).
type Keys interface {
	ReloadKeys(ctx context.Context) error
}

// Budgets reloads the budgets (budget.Budgets).
type Budgets interface {
	Reload(ctx context.Context) error
}

// Handler returns the fleet.Handler of this replica: for a change another replica announced, it
// reloads from the store what the change names, then reconciles (ends here what the new kill
// state forbids) and reports what it ended. A reload that fails returns its error, so the
// change is not acknowledged; the safety-net poll retries. Admin tokens need no reload: every
// admin request reads its token from the store. keys and budgets may be nil.
func (s *Service) Handler(keys Keys, budgets Budgets) fleet.Handler {
	return func(ctx context.Context, c fleet.Change) (fleet.Applied, error) {
		err := s.reload(ctx, c, keys, budgets)
		// Reconcile whatever loaded: a part that failed must not hold back the rest.
		applied := s.Reconcile(ctx)
		if err != nil {
			return applied, fmt.Errorf("applying %s change %d from %s: %w", c.Topic, c.Version, c.Replica, err)
		}
		return applied, nil
	}
}

func (s *Service) reload(ctx context.Context, c fleet.Change, keys Keys, budgets Budgets) error {
	switch c.Topic {
	case fleet.TopicAgent:
		if s.Agents == nil {
			return nil
		}
		if c.Name == "" {
			return s.Agents.ReloadAgents(ctx)
		}
		return s.Agents.ReloadAgent(ctx, c.Name)
	case fleet.TopicTool, fleet.TopicPolicy:
		if s.Registry == nil {
			return nil
		}
		return s.Registry.Load(ctx)
	case fleet.TopicLockdown, fleet.TopicQuarantine:
		return s.Load(ctx)
	case fleet.TopicKey, fleet.TopicRevocation:
		if keys == nil {
			return nil
		}
		return keys.ReloadKeys(ctx)
	case fleet.TopicBudget:
		if budgets == nil {
			return nil
		}
		return budgets.Reload(ctx)
	case fleet.TopicAdminToken:
		return nil
	case fleet.TopicAll:
		var errs []error
		if s.Agents != nil {
			errs = append(errs, s.Agents.ReloadAgents(ctx))
		}
		if s.Registry != nil {
			errs = append(errs, s.Registry.Load(ctx))
		}
		errs = append(errs, s.Load(ctx))
		if keys != nil {
			errs = append(errs, keys.ReloadKeys(ctx))
		}
		if budgets != nil {
			errs = append(errs, budgets.Reload(ctx))
		}
		return errors.Join(errs...)
	}
	// A topic this version does not know: reload everything rather than ignore it.
	return s.reload(ctx, fleet.Change{Topic: fleet.TopicAll}, keys, budgets)
}
