package budget

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/wardenhq/warden"
)

// fakeStore is an in-memory warden.BudgetStore. It copies on the way in and out, as a real store
// does, so that a test can't pass by sharing pointers with it.
type fakeStore struct {
	mu       sync.Mutex
	budgets  map[string]warden.Budget
	counters map[string]warden.BudgetCounter
	fail     error         // returned by every write while set
	saves    int           // calls of SaveBudgetCounters
	saved    chan struct{} // if set, receives (without blocking) after each successful save
}

var _ warden.BudgetStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{budgets: map[string]warden.Budget{}, counters: map[string]warden.BudgetCounter{}}
}

func (s *fakeStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *fakeStore) PutBudget(_ context.Context, b *warden.Budget) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.budgets[b.ID] = *b
	return nil
}

func (s *fakeStore) DeleteBudget(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if _, ok := s.budgets[id]; !ok {
		return warden.Errorf(warden.ENotFound, "no budget %q", id)
	}
	delete(s.budgets, id)
	delete(s.counters, id)
	return nil
}

func (s *fakeStore) Budgets(context.Context) ([]*warden.Budget, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*warden.Budget
	for _, b := range s.budgets {
		out = append(out, &b)
	}
	slices.SortFunc(out, func(x, y *warden.Budget) int {
		if c := strings.Compare(x.Agent, y.Agent); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

func (s *fakeStore) SaveBudgetCounters(_ context.Context, cs []*warden.BudgetCounter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.fail != nil {
		return s.fail
	}
	for _, c := range cs {
		if _, ok := s.budgets[c.BudgetID]; !ok {
			return errors.New("fake store: counter of unknown budget " + c.BudgetID) // a foreign key
		}
	}
	for _, c := range cs {
		s.counters[c.BudgetID] = *c
	}
	if s.saved != nil {
		select {
		case s.saved <- struct{}{}:
		default:
		}
	}
	return nil
}

func (s *fakeStore) BudgetCounters(context.Context) ([]*warden.BudgetCounter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*warden.BudgetCounter
	for _, c := range s.counters {
		out = append(out, &c)
	}
	return out, nil
}

func (s *fakeStore) counter(id string) (warden.BudgetCounter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[id]
	return c, ok
}
