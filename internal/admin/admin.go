// Package admin is what people do to warden through the admin API: manage agent identities and
// admin tokens. Every change is checked against the caller's role and recorded in the audit log.
package admin

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/secrets"
	"github.com/wardenhq/warden/internal/supply"
)

// Secret prefixes make warden credentials recognisable to secret scanners and to redaction.
const (
	AgentSecretPrefix = "wsec_"
	AdminTokenPrefix  = "wadm_"
)

// Limits on what people may declare about an agent.
const (
	DefaultAgentTTL = 90 * 24 * time.Hour
	MaxAgentTTL     = 5 * 365 * 24 * time.Hour
	maxPurpose      = 1024
	maxLabels       = 64
	maxLabelValue   = 256
)

// Store is the part of warden.Store this service uses.
type Store interface {
	warden.AgentStore
	warden.AdminTokenStore
	warden.ToolStore
	warden.PolicyStore
	warden.PolicyShadowStore
	warden.ToolManifestStore
}

// AgentObserver learns about every change to an agent, so that enforcement points on this
// replica see a suspension at once rather than at the next refresh.
type AgentObserver interface {
	ObserveAgent(a *warden.Agent)
	ForgetAgent(id string)
}

// Registry is the gateway's view of tools and policies, reloaded after every change.
type Registry interface {
	Load(ctx context.Context) error
}

// Canceller cancels calls in flight when a tool is disabled or removed.
type Canceller interface {
	CancelTool(tool string) int
}

// Deps are the parts a Service works with.
type Deps struct {
	Store    Store
	Audit    warden.AuditLog
	Observer AgentObserver
	Secrets  *secrets.Service
	Registry Registry
	Calls    Canceller
	Budgets  *budget.Budgets
	// Kill commits changes of agents and tools: it announces them to the fleet and ends what
	// they forbid (a suspended agent's calls, streams, approvals, sandboxes; calls to a disabled
	// tool). nil: changes are only written (no gateway to enforce on).
	Kill KillSwitch
	// Fleet announces the other changes (policies, budgets, admin tokens); nil: alone.
	Fleet Publisher
	// Packages pins the files of an --mcp-command tool when it is added (the MCP gateway, which
	// resolves them as a start does). nil: no local server runs here; nothing is pinned.
	Packages PackagePinner
	// Lister lists an MCP server's tools when it is registered, to pin them
	// (PinAtRegistration); nil: the first listing by an agent's session pins.
	Lister ManifestLister
	// NPM verifies and installs the packages of tools added with --npm; nil: such adds are
	// refused.
	NPM NPMPinner
	Log *slog.Logger
	// Sigstore verifies npm provenance and Sigstore bundles against the configured trusted
	// root; nil when supply_chain.sigstore_trusted_root is not set (callers check).
	Sigstore *supply.Sigstore
	// Events reads the audit log for a replay of its tool calls; nil: such replays are refused.
	Events AuditSearch
	// Shadow counts what this replica's pipeline compared with the candidate policy set, for
	// the shadow report; nil: nothing is compared here.
	Shadow ShadowStats
}

// PackagePinner digests what a local MCP server's command runs.
type PackagePinner interface {
	PinCommand(tool string, argv []string) (*warden.ToolPackage, error)
}

// Service carries out admin actions.
type Service struct {
	store    Store
	audit    warden.AuditLog
	observer AgentObserver
	secrets  *secrets.Service
	registry Registry
	calls    Canceller
	budgets  *budget.Budgets
	kill     KillSwitch
	fleet    Publisher
	npm      NPMPinner
	packages PackagePinner
	lister   ManifestLister
	log      *slog.Logger
	now      func() time.Time
	sigstore *supply.Sigstore
	events   AuditSearch
	shadow   ShadowStats

	policyMu sync.Mutex // serialises changes that rewrite the policy set on this replica
	tokenMu  sync.Mutex // serialises admin token revocations, so two cannot remove the last two admins

	registering registrations // MCP servers whose registration is pinning them (manifests_add.go)
}

// New returns a Service.
func New(d Deps) *Service {
	return &Service{
		store: d.Store, audit: d.Audit, observer: d.Observer, secrets: d.Secrets,
		registry: d.Registry, calls: d.Calls, budgets: d.Budgets, kill: d.Kill, fleet: d.Fleet, npm: d.NPM, packages: d.Packages, lister: d.Lister, log: d.Log, now: time.Now,
		sigstore: d.Sigstore, events: d.Events, shadow: d.Shadow,
	}
}

// Sigstore is the verifier of the configured Sigstore trusted root and publishers (npm
// provenance, Sigstore bundles); nil when none is configured.
func (s *Service) Sigstore() *supply.Sigstore { return s.sigstore }

// AgentSpec is the wire type apitype.AgentSpec; see there.
type AgentSpec = apitype.AgentSpec

var labelKeyRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/-]{0,62})$`)

func validateAgentSpec(s AgentSpec) (time.Duration, error) {
	if err := warden.ValidateName("agent", s.Name); err != nil {
		return 0, err
	}
	if err := validateOwner(s.Owner); err != nil {
		return 0, err
	}
	purpose := strings.TrimSpace(s.Purpose)
	if purpose == "" {
		return 0, warden.Errorf(warden.EInvalid, "purpose is required: describe the agent's job, e.g. --purpose 'Triage new issues in acme/web'")
	}
	if len(purpose) > maxPurpose || !utf8.ValidString(purpose) {
		return 0, warden.Errorf(warden.EInvalid, "purpose must be valid text of at most %d bytes", maxPurpose)
	}
	ttl, err := parseTTL(s.TTL)
	if err != nil {
		return 0, err
	}
	if len(s.Labels) > maxLabels {
		return 0, warden.Errorf(warden.EInvalid, "at most %d labels", maxLabels)
	}
	for k, v := range s.Labels {
		if !labelKeyRE.MatchString(k) {
			return 0, warden.Errorf(warden.EInvalid, "invalid label key %q: lowercase letters, digits and . _ / -, at most 63", k)
		}
		if len(v) > maxLabelValue || !utf8.ValidString(v) {
			return 0, warden.Errorf(warden.EInvalid, "label %q: value must be valid text of at most %d bytes", k, maxLabelValue)
		}
	}
	return ttl, nil
}

func validateOwner(owner string) error {
	addr, err := mail.ParseAddress(owner)
	if err != nil || addr.Address != owner || addr.Name != "" {
		return warden.Errorf(warden.EInvalid, "owner must be a plain email address of the person accountable for the agent, got %q", owner)
	}
	return nil
}

// ParseDuration parses a Go duration ("12h", "30m") or a whole number of days ("90d"), as
// apitype.ParseDuration does: the API's clients parse the same durations.
func ParseDuration(s string) (time.Duration, error) { return apitype.ParseDuration(s) }

func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultAgentTTL, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 || d > MaxAgentTTL {
		return 0, warden.Errorf(warden.EInvalid, "ttl must be between 1s and %dd", int(MaxAgentTTL.Hours()/24))
	}
	return d, nil
}

// validateReason is warden.CheckReason: required for a change to a containment.
func validateReason(reason string, containment bool) (string, error) {
	return warden.CheckReason(reason, containment)
}

// CreateAgent creates an agent and returns it with its client secret, which is never shown again.
func (s *Service) CreateAgent(ctx context.Context, p *warden.Principal, spec AgentSpec) (*warden.Agent, string, error) {
	if spec.Skills != nil {
		return nil, "", warden.Errorf(warden.EInvalid, "skills are granted with 'warden skill grant' or by 'skills:' in warden apply")
	}
	ttl, err := validateAgentSpec(spec)
	if err != nil {
		return nil, "", err
	}
	secret, hash := identity.NewSecret(AgentSecretPrefix)
	now := s.now().UTC()
	a := &warden.Agent{
		ID:         warden.NewID("agt_"),
		Name:       spec.Name,
		Owner:      spec.Owner,
		Purpose:    strings.TrimSpace(spec.Purpose),
		Labels:     spec.Labels,
		Status:     warden.AgentActive,
		Epoch:      1,
		SecretHash: hash,
		CreatedAt:  now,
		UpdatedAt:  now,
		ExpiresAt:  now.Add(ttl),
	}
	_, err = s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		if err := s.store.CreateAgent(ctx, a); err != nil {
			return err
		}
		s.observer.ObserveAgent(a)
		announce(fleet.TopicAgent, a.ID)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if err := s.event(ctx, p, warden.EventAgentCreate, "agent:"+a.Name, ""); err != nil {
		return nil, "", err
	}
	return a, secret, nil
}

// Agent returns the named agent.
func (s *Service) Agent(ctx context.Context, name string) (*warden.Agent, error) {
	if err := warden.ValidateName("agent", name); err != nil {
		return nil, err
	}
	return s.store.Agent(ctx, name)
}

// Agents lists every agent.
func (s *Service) Agents(ctx context.Context) ([]*warden.Agent, error) { return s.store.Agents(ctx) }

// errUnchanged tells update that fn found nothing to do; the call succeeds without a write.
var errUnchanged = errors.New("unchanged")

// update applies fn to the named agent through the kill switch (which announces the change and
// ends what it forbids; with wait, once every replica has), and records the event.
func (s *Service) update(ctx context.Context, p *warden.Principal, name, event, reason string, wait bool, fn func(a *warden.Agent) error) (*warden.Agent, error) {
	if err := warden.ValidateName("agent", name); err != nil {
		return nil, err
	}
	var a *warden.Agent
	changed := true
	_, err := s.commit(ctx, wait, func(ctx context.Context, announce killswitch.Announce) error {
		var err error
		a, err = s.store.UpdateAgent(ctx, name, func(a *warden.Agent) error {
			if err := fn(a); err != nil {
				return err
			}
			a.UpdatedAt = s.now().UTC()
			return nil
		})
		if errors.Is(err, errUnchanged) {
			changed = false
			a, err = s.store.Agent(ctx, name)
			return err
		}
		if err != nil {
			return err
		}
		s.observer.ObserveAgent(a)
		announce(fleet.TopicAgent, a.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !changed {
		return a, nil
	}
	if err := s.event(ctx, p, event, "agent:"+a.Name, reason); err != nil {
		return nil, err
	}
	return a, nil
}

// Suspend stops the agent reversibly: its tokens die at once (the epoch rises) and it gets no
// new ones until resumed. Suspending a suspended agent changes nothing.
func (s *Service) Suspend(ctx context.Context, p *warden.Principal, name, reason string) (*warden.Agent, error) {
	reason, err := validateReason(reason, true)
	if err != nil {
		return nil, err
	}
	// The new epoch refuses every token at once; the kill switch ends what is running, on every
	// replica before Suspend returns.
	return s.update(ctx, p, name, warden.EventAgentSuspend, reason, true, func(a *warden.Agent) error {
		switch a.Status {
		case warden.AgentSuspended:
			return errUnchanged
		case warden.AgentKilled:
			return warden.Errorf(warden.EConflict, "agent %q is killed; only an admin restore brings it back", name)
		}
		a.Status = warden.AgentSuspended
		a.StatusReason = reason
		a.Epoch++
		return nil
	})
}

// Resume makes a suspended agent active again. Tokens issued before the suspension stay dead.
func (s *Service) Resume(ctx context.Context, p *warden.Principal, name, reason string) (*warden.Agent, error) {
	reason, err := validateReason(reason, true)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, p, name, warden.EventAgentResume, reason, false, func(a *warden.Agent) error {
		switch a.Status {
		case warden.AgentActive:
			return errUnchanged
		case warden.AgentKilled:
			return warden.Errorf(warden.EConflict, "agent %q is killed; only an admin restore brings it back", name)
		}
		a.Status = warden.AgentActive
		a.StatusReason = ""
		return nil
	})
}

// Renew extends the identity's lifetime to now+ttl.
func (s *Service) Renew(ctx context.Context, p *warden.Principal, name, ttl string) (*warden.Agent, error) {
	d, err := parseTTL(ttl)
	if err != nil {
		return nil, err
	}
	return s.update(ctx, p, name, warden.EventAgentRenew, "", false, func(a *warden.Agent) error {
		a.ExpiresAt = s.now().UTC().Add(d)
		return nil
	})
}

// RotateSecret gives the agent a new client secret; the old one stops working and so does every
// token issued before (the epoch rises).
func (s *Service) RotateSecret(ctx context.Context, p *warden.Principal, name string) (*warden.Agent, string, error) {
	secret, hash := identity.NewSecret(AgentSecretPrefix)
	a, err := s.update(ctx, p, name, warden.EventAgentRotate, "", false, func(a *warden.Agent) error {
		if a.Status == warden.AgentKilled {
			return warden.Errorf(warden.EConflict, "agent %q is killed; only an admin restore issues a new secret", name)
		}
		a.SecretHash = hash
		a.Epoch++
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return a, secret, nil
}

// DeleteAgent removes the agent; its tokens die with it.
func (s *Service) DeleteAgent(ctx context.Context, p *warden.Principal, name string) error {
	a, err := s.Agent(ctx, name)
	if err != nil {
		return err
	}
	_, err = s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		if err := s.store.DeleteAgent(ctx, name); err != nil {
			return err
		}
		s.observer.ForgetAgent(a.ID)
		announce(fleet.TopicAgent, a.ID)
		return nil
	})
	if err != nil {
		return err
	}
	return s.event(ctx, p, warden.EventAgentDelete, "agent:"+a.Name, "")
}

// AdminTokenSpec is the wire type apitype.AdminTokenSpec; see there.
type AdminTokenSpec = apitype.AdminTokenSpec

// CreateAdminToken creates a named token with a role and returns it with the token value, which is
// never shown again.
func (s *Service) CreateAdminToken(ctx context.Context, p *warden.Principal, spec AdminTokenSpec) (*warden.AdminToken, string, error) {
	if err := warden.ValidateName("admin token", spec.Name); err != nil {
		return nil, "", err
	}
	role, err := warden.ParseRole(spec.Role)
	if err != nil {
		return nil, "", err
	}
	if spec.Email != "" && validateOwner(spec.Email) != nil {
		return nil, "", warden.Errorf(warden.EInvalid, "email must be a plain email address of the person holding the token, got %q", spec.Email)
	}
	secret, hash := identity.NewSecret(AdminTokenPrefix)
	t := &warden.AdminToken{Name: spec.Name, Role: role, Email: spec.Email, Hash: hash, CreatedBy: p.Name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateAdminToken(ctx, t); err != nil {
		return nil, "", err
	}
	s.publish(ctx, fleet.TopicAdminToken, t.Name)
	msg := "role " + string(role)
	if t.Email != "" {
		msg += ", email " + t.Email
	}
	if err := s.event(ctx, p, warden.EventAdminTokenCreate, "admin-token:"+t.Name, msg); err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

// AdminTokens lists every admin token (never the token values).
func (s *Service) AdminTokens(ctx context.Context) ([]*warden.AdminToken, error) {
	return s.store.AdminTokens(ctx)
}

// RevokeAdminToken revokes the named token. The last live admin-role token cannot be revoked:
// that would lock everyone out.
func (s *Service) RevokeAdminToken(ctx context.Context, p *warden.Principal, name string) error {
	if err := warden.ValidateName("admin token", name); err != nil {
		return err
	}
	// Within one replica the check and the revoke are one step. Two people revoking the last two
	// admin tokens at the same instant through two replicas could still race; that is accepted.
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	tokens, err := s.store.AdminTokens(ctx)
	if err != nil {
		return err
	}
	var target *warden.AdminToken
	liveAdmins := 0
	for _, t := range tokens {
		if t.Name == name {
			target = t
		}
		if t.Role == warden.RoleAdmin && !t.Revoked() {
			liveAdmins++
		}
	}
	switch {
	case target == nil:
		return warden.Errorf(warden.ENotFound, "admin token %q not found", name)
	case target.Revoked():
		return nil
	case target.Role == warden.RoleAdmin && liveAdmins == 1:
		return warden.Errorf(warden.EConflict, "%q is the last admin token; create another admin token before revoking it", name)
	}
	if err := s.store.RevokeAdminToken(ctx, name, s.now().UTC()); err != nil {
		return err
	}
	s.publish(ctx, fleet.TopicAdminToken, name)
	return s.event(ctx, p, warden.EventAdminTokenRevoke, "admin-token:"+name, "")
}

// Authenticate returns the person holding an admin token. Unknown and revoked tokens are
// refused alike.
func (s *Service) Authenticate(ctx context.Context, token string) (*warden.Principal, error) {
	if !strings.HasPrefix(token, AdminTokenPrefix) || len(token) > 256 {
		return nil, warden.Errorf(warden.EUnauthenticated, "not a warden admin token")
	}
	hash := identity.HashSecret(token)
	t, err := s.store.AdminTokenByHash(ctx, hash)
	if warden.ErrorCode(err) == warden.ENotFound {
		return nil, warden.Errorf(warden.EUnauthenticated, "unknown or revoked admin token")
	}
	if err != nil {
		return nil, err
	}
	// The lookup was by hash; comparing again in constant time costs nothing and keeps the
	// check independent of how the store indexes.
	if subtle.ConstantTimeCompare(t.Hash, hash) != 1 || t.Revoked() {
		return nil, warden.Errorf(warden.EUnauthenticated, "unknown or revoked admin token")
	}
	return &warden.Principal{Name: t.Name, Role: t.Role, Email: t.Email}, nil
}

// Bootstrap creates the first admin token when the store has none and returns its value;
// it returns "" when tokens already exist, so later starts create nothing.
func (s *Service) Bootstrap(ctx context.Context) (string, error) {
	tokens, err := s.store.AdminTokens(ctx)
	if err != nil {
		return "", err
	}
	if len(tokens) > 0 {
		return "", nil
	}
	system := &warden.Principal{Name: "system"}
	_, secret, err := s.CreateAdminToken(ctx, system, AdminTokenSpec{Name: "admin", Role: string(warden.RoleAdmin)})
	if warden.ErrorCode(err) == warden.EConflict {
		return "", nil // another replica bootstrapped first
	}
	return secret, err
}

type sourceKey struct{}

// WithSource returns a context that carries the caller's network address for audit events.
func WithSource(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// Source returns the caller's address from ctx, or "".
func Source(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

func humanActor(ctx context.Context, p *warden.Principal) warden.EventActor {
	if p.Role == "" {
		return warden.EventActor{Kind: warden.ActorSystem, Name: p.Name}
	}
	return warden.EventActor{Kind: warden.ActorHuman, Name: p.Name, Role: string(p.Role), Source: Source(ctx)}
}
