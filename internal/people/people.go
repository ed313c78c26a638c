// Package people signs people in: single sign-on through an OpenID Connect provider (auth code
// with PKCE, state and nonce), break-glass sign-in with an admin token, and the sessions that
// follow — a browser cookie, or a bearer token for `warden login` (loopback or device flow).
package people

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/identity"
)

// SessionPrefix starts every session token, so that a bearer token tells which kind it is
// (admin tokens start with wat_).
const SessionPrefix = "wps_"

// CookieName is the browser session's cookie.
const CookieName = "warden_session"

// loginCookie binds an OIDC sign-in to the browser that started it (against login CSRF).
const loginCookie = "warden_login"

// Lifetimes of the steps of a sign-in.
const (
	loginTTL  = 10 * time.Minute // from /login to the provider's answer
	codeTTL   = time.Minute      // a CLI's one-time code
	deviceTTL = 10 * time.Minute // a device code
	// DevicePollInterval is how often the CLI asks whether its device code was confirmed.
	DevicePollInterval = 2 * time.Second
)

// Kinds of sign-in steps (warden.SignInFlow.Kind).
const (
	flowOIDC     = "oidc"
	flowCLICode  = "cli_code"
	flowDevice   = "device"
	flowUserCode = "user_code"
)

// AdminAuthenticator checks an admin token, for break-glass sign-in (admin.Service).
// Store is what people's sign-in keeps, and the admin tokens a break-glass session came from.
type Store interface {
	warden.PersonStore
	AdminTokens(ctx context.Context) ([]*warden.AdminToken, error)
}

type AdminAuthenticator interface {
	Authenticate(ctx context.Context, token string) (*warden.Principal, error)
}

// OIDC is the provider people sign in with.
type OIDC struct {
	Issuer       string
	ClientID     string
	ClientSecret string // "" for a public client
	Scopes       []string
	RoleClaim    string
	Roles        map[string]warden.Role
	DefaultRole  warden.Role // "": a person without a mapped value is refused
	// RequireVerifiedEmail refuses an ID token without email_verified: true.
	RequireVerifiedEmail bool
}

// Options are what a Service is made of.
type Options struct {
	Store     Store
	Audit     warden.AuditLog
	Admin     AdminAuthenticator
	Clock     clock.Clock
	Log       *slog.Logger
	PublicURL string // warden's public URL, e.g. https://warden.example.com
	OIDC      *OIDC  // nil: people sign in with admin tokens only
	// HTTPClient reaches the OIDC provider; nil: a client with a 30 s timeout.
	HTTPClient *http.Client
	BrowserTTL time.Duration
	CLITTL     time.Duration
}

// Service signs people in and knows their sessions.
type Service struct {
	opt    Options
	secure bool // the public URL is https: cookies are Secure

	mu         sync.Mutex
	discovered *oidc.Provider // on first use, then kept
}

// New returns a Service.
func New(opt Options) *Service {
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	opt.Clock = clock.Or(opt.Clock)
	opt.PublicURL = strings.TrimSuffix(opt.PublicURL, "/")
	return &Service{opt: opt, secure: strings.HasPrefix(opt.PublicURL, "https://")}
}

// Person returns the person signed in on this browser (session cookie), or nil and no error
// when none.
func (s *Service) Person(r *http.Request) (*warden.Principal, error) {
	ps, err := s.BrowserSession(r)
	if ps == nil || err != nil {
		return nil, err
	}
	return ps.Principal(), nil
}

// SignInURL is where to send a browser to sign in and then come back to returnTo (a path on
// warden; anything else comes back to the sign-in page).
func (s *Service) SignInURL(returnTo string) string {
	return s.opt.PublicURL + "/login?return_to=" + url.QueryEscape(LocalPath(returnTo))
}

// Role is the strongest role of the person's live sessions (browser or CLI, through OIDC or an
// admin token): the OAuth authorization server asks it before refreshing a grant that relied on
// the person being an admin rather than the agent's owner. A person with no live session is
// ENotFound, so such a grant ends with the person's last session and they consent again.
func (s *Service) Role(ctx context.Context, email string) (warden.Role, error) {
	if email == "" {
		return "", warden.Errorf(warden.ENotFound, "no person without an email")
	}
	live, err := s.opt.Store.LivePersonSessions(ctx, email, s.opt.Clock.Now())
	if err != nil {
		return "", err
	}
	var role warden.Role
	for _, ps := range live {
		if ps.Email == email && (role == "" || stronger(ps.Role, role)) {
			role = ps.Role
		}
	}
	if role == "" {
		return "", warden.Errorf(warden.ENotFound, "%s has no live session", email)
	}
	return role, nil
}

// Authenticate checks a CLI session's bearer token (wps_…) for the admin API.
func (s *Service) Authenticate(ctx context.Context, token string) (*warden.Principal, error) {
	ps, err := s.session(ctx, token, warden.SessionCLI)
	if err != nil {
		return nil, err
	}
	return ps.Principal(), nil
}

// session returns the active session of token and kind; EUnauthenticated when there is none.
func (s *Service) session(ctx context.Context, token, kind string) (*warden.PersonSession, error) {
	h, err := sessionHash(token)
	if err != nil {
		return nil, err
	}
	ps, err := s.opt.Store.PersonSessionByHash(ctx, h)
	if warden.ErrorCode(err) == warden.ENotFound {
		return nil, warden.Errorf(warden.EUnauthenticated, "unknown or ended session: sign in again (warden login)")
	}
	if err != nil {
		return nil, err
	}
	if ps.Kind != kind || !ps.Active(s.opt.Clock.Now()) {
		return nil, warden.Errorf(warden.EUnauthenticated, "unknown or ended session: sign in again (warden login)")
	}
	if ps.Via == viaAdminToken {
		// A break-glass session is only as good as the admin token it was signed in with:
		// revoking the token ends it (fail closed).
		if err := s.adminTokenLive(ctx, ps.Name); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// sessionHash is the stored form of a session token; EUnauthenticated for what is not one.
func sessionHash(token string) ([]byte, error) {
	if !strings.HasPrefix(token, SessionPrefix) || len(token) > 128 {
		return nil, warden.Errorf(warden.EUnauthenticated, "not a warden session token")
	}
	return identity.HashSecret(token), nil
}

// adminTokenLive is EUnauthenticated unless the named admin token exists and is not revoked.
func (s *Service) adminTokenLive(ctx context.Context, name string) error {
	tokens, err := s.opt.Store.AdminTokens(ctx)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if t.Name == name && !t.Revoked() {
			return nil
		}
	}
	return warden.Errorf(warden.EUnauthenticated, "the admin token %q this session was signed in with is revoked: sign in again", name)
}

// newSession starts a session for p and returns its token, shown once.
func (s *Service) newSession(ctx context.Context, p *warden.Principal, kind, via string) (string, *warden.PersonSession, error) {
	token, hash := identity.NewSecret(SessionPrefix)
	now := s.opt.Clock.Now()
	ttl := s.opt.BrowserTTL
	if kind == warden.SessionCLI {
		ttl = s.opt.CLITTL
	}
	ps := &warden.PersonSession{Hash: hash, Kind: kind, Name: p.Name, Email: p.Email, Role: p.Role, Via: via,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.opt.Store.CreatePersonSession(ctx, ps); err != nil {
		return "", nil, err
	}
	return token, ps, nil
}

// logout ends the session of token, of either kind.
func (s *Service) logout(ctx context.Context, r *http.Request, token string) error {
	h, err := sessionHash(token)
	if err != nil {
		return err
	}
	ps, err := s.opt.Store.PersonSessionByHash(ctx, h)
	if warden.ErrorCode(err) == warden.ENotFound {
		return warden.Errorf(warden.EUnauthenticated, "unknown session")
	}
	if err != nil {
		return err
	}
	if err := s.opt.Store.RevokePersonSession(ctx, h, s.opt.Clock.Now()); err != nil {
		return err
	}
	s.record(ctx, r, warden.EventPersonSignOut, ps.Principal(), ps.Via, ps.Kind, "")
	return nil
}

// record appends a sign-in event: the actor is the person (by verified email or the admin
// token's name), the target what they signed in with. A failed append is logged; the caller
// fails closed where the event must come first.
func (s *Service) record(ctx context.Context, r *http.Request, typ string, p *warden.Principal, via, kind, refusal string) error {
	ev := &warden.AuditEvent{
		Type:   typ,
		Actor:  warden.EventActor{Kind: warden.ActorHuman, Source: r.RemoteAddr},
		Target: warden.EventTarget{Action: via},
	}
	if p != nil {
		ev.Actor.Name, ev.Actor.Role, ev.Actor.Email = p.Name, string(p.Role), p.Email
	}
	if kind != "" {
		ev.Target.Resource = kind
	}
	if refusal != "" {
		ev.Decision = warden.EventDecision{Effect: warden.EffectDeny, Message: refusal}
	} else {
		ev.Decision = warden.EventDecision{Effect: warden.EffectAllow}
	}
	if err := s.opt.Audit.Append(ctx, ev); err != nil {
		s.opt.Log.Error("audit append failed", "type", typ, "err", err)
		return warden.Errorf(warden.EUnavailable, "the audit log is unavailable: try again")
	}
	return nil
}

// createFlow stores a step of a sign-in under the hash of secret.
func (s *Service) createFlow(ctx context.Context, kind, secret string, ttl time.Duration, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	now := s.opt.Clock.Now()
	return s.opt.Store.CreateSignInFlow(ctx, &warden.SignInFlow{Hash: identity.HashSecret(secret), Kind: kind, Data: b, ExpiresAt: now.Add(ttl)}, now)
}

// takeFlow takes the step named by secret and decodes it into v.
func (s *Service) takeFlow(ctx context.Context, kind, secret string, v any) error {
	f, err := s.opt.Store.TakeSignInFlow(ctx, identity.HashSecret(secret), kind, s.opt.Clock.Now())
	if err != nil {
		return err
	}
	return json.Unmarshal(f.Data, v)
}

// getFlow reads the step named by secret into v.
func (s *Service) getFlow(ctx context.Context, kind, secret string, v any) error {
	f, err := s.opt.Store.SignInFlow(ctx, identity.HashSecret(secret), kind, s.opt.Clock.Now())
	if err != nil {
		return err
	}
	return json.Unmarshal(f.Data, v)
}

// provider discovers the OIDC provider on first use, so that warden starts while it is down.
func (s *Service) provider(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.discovered != nil {
		return s.discovered, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.opt.HTTPClient), s.opt.OIDC.Issuer)
	if err != nil {
		s.opt.Log.Error("OIDC discovery failed", "issuer", s.opt.OIDC.Issuer, "err", err)
		return nil, warden.Errorf(warden.EUnavailable, "the sign-in provider %s cannot be reached: try again later", s.opt.OIDC.Issuer)
	}
	s.discovered = p
	return p, nil
}

func (s *Service) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.opt.OIDC.ClientID,
		ClientSecret: s.opt.OIDC.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  s.opt.PublicURL + "/login/callback",
		Scopes:       s.opt.OIDC.Scopes,
	}
}

// randomString is n random bytes, base64url without padding.
func randomString(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

func cryptoRead(b []byte) { rand.Read(b) } // never fails (crypto/rand)
