// Package secrets keeps the upstream credentials warden brokers: sealed under the master key at
// rest, resolved in memory only to be injected on the way upstream, never returned by any API.
package secrets

import (
	"context"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/seal"
)

// MaxValue bounds a secret's value.
const MaxValue = 64 << 10

// cacheTTL bounds how long a resolved value is reused; another replica's change shows within it.
const cacheTTL = 5 * time.Second

// Service stores and resolves secrets.
type Service struct {
	// Clock dates stored secrets and times the cache; nil means the real clock. Set it before
	// first use.
	Clock clock.Clock

	store     warden.SecretStore
	masterKey []byte

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	value   string
	fetched time.Time
}

// New returns a Service sealing under masterKey.
func New(store warden.SecretStore, masterKey []byte) *Service {
	return &Service{store: store, masterKey: masterKey, cache: map[string]cached{}}
}

func (s *Service) now() time.Time { return clock.Or(s.Clock).Now() }

func aad(name string) []byte { return []byte("warden-secret:" + name) }

// Put creates or replaces a secret's value.
func (s *Service) Put(ctx context.Context, name, value string) (*warden.Secret, error) {
	if err := warden.ValidateName("secret", name); err != nil {
		return nil, err
	}
	if value == "" || len(value) > MaxValue || !utf8.ValidString(value) {
		return nil, warden.Errorf(warden.EInvalid, "a secret's value must be 1 to %d bytes of text", MaxValue)
	}
	sealed, err := seal.Seal(s.masterKey, []byte(value), aad(name))
	if err != nil {
		return nil, warden.WrapError(warden.EInternal, "sealing the secret failed", err)
	}
	now := s.now().UTC()
	sec := &warden.Secret{Name: name, Sealed: sealed, CreatedAt: now, UpdatedAt: now}
	if err := s.store.PutSecret(ctx, sec); err != nil {
		return nil, err
	}
	s.forget(name)
	return sec, nil
}

// Delete removes a secret.
func (s *Service) Delete(ctx context.Context, name string) error {
	if err := warden.ValidateName("secret", name); err != nil {
		return err
	}
	if err := s.store.DeleteSecret(ctx, name); err != nil {
		return err
	}
	s.forget(name)
	return nil
}

// List returns the secrets' names and dates.
func (s *Service) List(ctx context.Context) ([]*warden.Secret, error) { return s.store.Secrets(ctx) }

// Exists reports whether a secret of that name is stored.
func (s *Service) Exists(ctx context.Context, name string) (bool, error) {
	_, err := s.store.Secret(ctx, name)
	if warden.ErrorCode(err) == warden.ENotFound {
		return false, nil
	}
	return err == nil, err
}

// SecretValue resolves a secret for injection upstream.
func (s *Service) SecretValue(ctx context.Context, name string) (string, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[name]
	s.mu.Unlock()
	if ok && now.Sub(c.fetched) < cacheTTL {
		return c.value, nil
	}
	sec, err := s.store.Secret(ctx, name)
	if err != nil {
		return "", err
	}
	plain, err := seal.Open(s.masterKey, sec.Sealed, aad(name))
	if err != nil {
		return "", warden.WrapError(warden.EInternal, "secret "+name+" cannot be opened with this master key", err)
	}
	s.mu.Lock()
	s.cache[name] = cached{value: string(plain), fetched: now}
	s.mu.Unlock()
	return string(plain), nil
}

func (s *Service) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}
