// Package identity is warden's token service: it authenticates agents, issues and verifies their
// EdDSA access tokens, exchanges people's tokens (RFC 8693), revokes tokens and manages signing keys.
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/seal"
)

// Config configures a Service. Zero durations and sizes take the defaults documented per field,
// except ClockSkew.
type Config struct {
	// Issuer is the iss of every token and the issuer of the server metadata, e.g.
	// "https://warden.example.com". Required.
	Issuer string
	// Audience is the aud of every token; default Issuer.
	Audience string
	// TokenTTL is the lifetime of a token when the request names none; default 10m.
	TokenTTL time.Duration
	// MaxTokenTTL caps every token's lifetime; default 1h. It also bounds how long a retired
	// signing key keeps verifying.
	MaxTokenTTL time.Duration
	// ClockSkew is the leeway for exp, nbf and iat between replicas and clients. Zero is no
	// leeway, not a default: an operator who sets tokens.clock_skew to 0s means it, so the
	// default (30s) is the configuration's to set (config.Default), where unset and 0 differ.
	ClockSkew time.Duration
	// RefreshInterval is how often Run reloads agent states, revocations and keys written by
	// other replicas; default 2s. Other replicas announce their changes through the fleet
	// (Fleet), so this is the safety net for an announcement that was lost.
	RefreshInterval time.Duration
	// CacheSize bounds the number of verified tokens kept; default 100000.
	CacheSize int
	// TrustedIssuers are the identity providers whose tokens an agent may exchange for a token
	// that acts for a person.
	TrustedIssuers []TrustedIssuer
	// JWKSFetchTimeout bounds one fetch of a trusted issuer's JWKS; default 5s.
	JWKSFetchTimeout time.Duration
	// Clock tells the time tokens are checked and issued at and times Run's refreshes; default
	// the real clock.
	Clock clock.Clock
	// Kill is the kill state shared with the gateway; nil gives the service one of its own.
	Kill *killswitch.State
	// Fleet announces revocations and key rotations to the other replicas, which reload them
	// at once instead of at their next refresh; nil: this replica is alone.
	Fleet Publisher
}

// Publisher announces a change this replica committed to the store (fleet.Bus).
type Publisher interface {
	Publish(ctx context.Context, topic fleet.Topic, name string) (int64, error)
}

// TrustedIssuer is an identity provider whose JWTs are accepted as RFC 8693 subject tokens.
type TrustedIssuer struct {
	// Issuer must equal the iss of its tokens.
	Issuer string
	// JWKSFile or JWKSURL (exactly one) hold the issuer's public keys. The file is read once at
	// start; the URL is fetched on first use and again when a token names an unknown key.
	JWKSFile string
	JWKSURL  string
	// Audience, when set, must be among the aud of a subject token.
	Audience string
}

const (
	defaultTokenTTL         = 10 * time.Minute
	defaultMaxTokenTTL      = time.Hour
	defaultRefreshInterval  = 2 * time.Second
	defaultCacheSize        = 100_000
	defaultJWKSFetchTimeout = 5 * time.Second
	// maxClockSkew keeps a typo ("30m" for "30s") from making expired tokens live for half an hour.
	maxClockSkew = 5 * time.Minute
)

func (c Config) withDefaults() Config {
	if c.Audience == "" {
		c.Audience = c.Issuer
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = defaultTokenTTL
	}
	if c.MaxTokenTTL == 0 {
		c.MaxTokenTTL = defaultMaxTokenTTL
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaultRefreshInterval
	}
	if c.CacheSize == 0 {
		c.CacheSize = defaultCacheSize
	}
	if c.JWKSFetchTimeout == 0 {
		c.JWKSFetchTimeout = defaultJWKSFetchTimeout
	}
	c.Clock = clock.Or(c.Clock)
	return c
}

func (c Config) validate() error {
	if err := validateIssuerURL(c.Issuer); err != nil {
		return fmt.Errorf("identity: issuer: %w", err)
	}
	switch {
	case c.TokenTTL < 0 || c.MaxTokenTTL < 0:
		return errors.New("identity: token TTLs must be positive")
	case c.TokenTTL > c.MaxTokenTTL:
		return fmt.Errorf("identity: token TTL %s is longer than the maximum %s", c.TokenTTL, c.MaxTokenTTL)
	case c.TokenTTL < time.Second:
		return fmt.Errorf("identity: token TTL %s is shorter than a second, the resolution of a JWT", c.TokenTTL)
	case c.ClockSkew < 0 || c.ClockSkew > maxClockSkew:
		return fmt.Errorf("identity: clock skew %s must be between 0 and %s", c.ClockSkew, maxClockSkew)
	case c.RefreshInterval < 0:
		return errors.New("identity: refresh interval must be positive")
	case c.CacheSize < 0:
		return errors.New("identity: cache size must be positive")
	case c.JWKSFetchTimeout < 0:
		return errors.New("identity: JWKS fetch timeout must be positive")
	}
	seen := map[string]bool{}
	for _, ti := range c.TrustedIssuers {
		if err := ti.validate(); err != nil {
			return fmt.Errorf("identity: trusted issuer %q: %w", ti.Issuer, err)
		}
		if ti.Issuer == c.Issuer {
			return fmt.Errorf("identity: trusted issuer %q is warden itself: a warden token is not a person's token", ti.Issuer)
		}
		if seen[ti.Issuer] {
			return fmt.Errorf("identity: trusted issuer %q is listed twice", ti.Issuer)
		}
		seen[ti.Issuer] = true
	}
	return nil
}

func (ti TrustedIssuer) validate() error {
	if ti.Issuer == "" {
		return errors.New("issuer is empty")
	}
	if (ti.JWKSFile == "") == (ti.JWKSURL == "") {
		return errors.New("set exactly one of jwks_file and jwks_url")
	}
	if ti.JWKSURL != "" {
		u, err := url.Parse(ti.JWKSURL)
		if err != nil {
			return fmt.Errorf("jwks_url: %w", err)
		}
		// Whoever can change the keys in transit can mint any person's identity.
		if u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname())) {
			return errors.New("jwks_url must use https (plain http only to a loopback address)")
		}
	}
	return nil
}

// validateIssuerURL follows RFC 8414: a URL without query or fragment. Plain http is allowed
// because a single machine serves on 127.0.0.1.
func validateIssuerURL(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q must be an http or https URL", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must have no query, fragment or user info", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Store is the part of warden.Store that the token service uses.
type Store interface {
	AgentByID(ctx context.Context, id string) (*warden.Agent, error)
	Agents(ctx context.Context) ([]*warden.Agent, error)
	warden.KeyStore
	warden.RevocationStore
}

// Service issues and verifies access tokens. Every enforcement point verifies through it, so
// its read path (VerifyToken) takes no lock on agent state: it reads immutable snapshots that
// writers replace whole.
type Service struct {
	cfg       Config
	store     Store
	masterKey []byte
	log       *slog.Logger

	keys   atomic.Pointer[keyring]
	keysMu sync.Mutex // serializes key creation and reloads

	// kill is the kill state this service reads every agent's status and epoch from, and
	// writes them to; the gateway checks the same state.
	kill *killswitch.State

	revoked   atomic.Pointer[revocationSet]
	revokedMu sync.Mutex // serializes writers of revoked

	cache   *verifiedCache
	issuers map[string]*subjectIssuer

	refreshMu      sync.Mutex // one refresh at a time
	lastStorePrune time.Time  // guarded by refreshMu
}

var _ warden.TokenVerifier = (*Service)(nil)

// New builds the service: it loads the signing keys (creating one when none signs) and decrypts
// the signing key with masterKey, loads every agent's state and the revoked token IDs, and reads
// the JWKS files of trusted issuers. The caller then runs Run to follow other replicas' changes.
func New(ctx context.Context, store Store, masterKey []byte, cfg Config, log *slog.Logger) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(masterKey) != seal.KeySize {
		return nil, fmt.Errorf("identity: master key must be %d bytes", seal.KeySize)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		cfg:       cfg,
		store:     store,
		masterKey: masterKey,
		log:       log,
		cache:     newVerifiedCache(cfg.CacheSize),
	}
	s.kill = cfg.Kill
	if s.kill == nil {
		s.kill = killswitch.NewState()
	}
	s.revoked.Store(&revocationSet{})

	issuers, err := loadTrustedIssuers(cfg.TrustedIssuers, cfg.JWKSFetchTimeout, log)
	if err != nil {
		return nil, err
	}
	s.issuers = issuers
	for _, ti := range cfg.TrustedIssuers {
		if ti.Audience == "" {
			log.Warn("trusted issuer has no audience: a token it issued to any application can be exchanged", "issuer", ti.Issuer)
		}
	}

	if err := s.loadKeys(ctx, true); err != nil {
		return nil, err
	}
	if err := s.loadAgents(ctx); err != nil {
		return nil, fmt.Errorf("identity: load agents: %w", err)
	}
	if err := s.loadRevocations(ctx); err != nil {
		return nil, fmt.Errorf("identity: load revocations: %w", err)
	}
	return s, nil
}

// Ready reports whether the service can issue tokens: it holds a signing key.
func (s *Service) Ready() bool { return s.keys.Load().signer != nil }

// Run follows changes made by other replicas until ctx is done: every RefreshInterval it calls
// Refresh. A failed refresh is logged and retried at the next tick; the last good state stays.
func (s *Service) Run(ctx context.Context) error {
	t := s.cfg.Clock.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("identity refresh failed", "err", err)
			}
		}
	}
}

// ReloadKeys reloads the signing keys and revocations from the store: another replica
// announced a key rotation or a revocation.
func (s *Service) ReloadKeys(ctx context.Context) error {
	if err := s.loadKeys(ctx, false); err != nil {
		return err
	}
	if err := s.loadRevocations(ctx); err != nil {
		return fmt.Errorf("identity: load revocations: %w", err)
	}
	return nil
}

// announce tells the fleet of a change committed to the store. A failure is logged: the
// change stands here, and the other replicas' refresh carries it.
func (s *Service) announce(ctx context.Context, topic fleet.Topic, name string) {
	if s.cfg.Fleet == nil {
		return
	}
	if _, err := s.cfg.Fleet.Publish(ctx, topic, name); err != nil {
		s.log.Error("announcing a change to the fleet; other replicas learn of it at their next refresh", "topic", topic, "err", err)
	}
}

// storePruneInterval spaces out the deletes of expired rows: every replica runs them, and they
// need not be prompt, since expired revocations and keys verify nothing anyway.
const storePruneInterval = time.Minute

// Refresh drops what has expired from the store (at most once a minute) and from memory, and
// reloads signing keys, agent states and revocations from the store.
func (s *Service) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	var errs []error
	now := s.cfg.Clock.Now()
	if now.Sub(s.lastStorePrune) >= storePruneInterval {
		if err := s.pruneStore(ctx, now); err != nil {
			errs = append(errs, err)
		} else {
			s.lastStorePrune = now
		}
	}
	if err := s.loadKeys(ctx, false); err != nil {
		errs = append(errs, err)
	}
	if err := s.loadAgents(ctx); err != nil {
		errs = append(errs, fmt.Errorf("identity: load agents: %w", err))
	}
	if err := s.loadRevocations(ctx); err != nil {
		errs = append(errs, fmt.Errorf("identity: load revocations: %w", err))
	}
	s.cache.prune(now.Add(-s.cfg.ClockSkew))
	s.pruneRevocations(now.Add(-s.cfg.ClockSkew))
	return errors.Join(errs...)
}

func (s *Service) pruneStore(ctx context.Context, now time.Time) error {
	if _, err := s.store.PruneRevokedTokens(ctx, now.Add(-s.cfg.ClockSkew)); err != nil {
		return fmt.Errorf("identity: prune revocations: %w", err)
	}
	n, err := s.store.DeleteSigningKeysRetiredBefore(ctx, now.Add(-s.keyVerifyWindow()))
	if err != nil {
		return fmt.Errorf("identity: prune signing keys: %w", err)
	}
	if n > 0 {
		s.log.Info("deleted retired signing keys", "count", n)
	}
	return nil
}

// keyVerifyWindow is how long a retired key keeps verifying: its last token may have been
// issued just before it retired.
func (s *Service) keyVerifyWindow() time.Duration { return s.cfg.MaxTokenTTL + s.cfg.ClockSkew }

// unauthenticated is the one way the service refuses a credential: a safe message that names
// the reason, and the cause for the log only.
func unauthenticated(message string, cause error) error {
	return &warden.Error{Code: warden.EUnauthenticated, Message: message, Err: cause}
}
