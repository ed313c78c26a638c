// Package oauthas is warden as the OAuth 2.1 authorization server of interactive MCP clients
// (docs/oauth.md): dynamic client registration (RFC 7591), the authorization code flow with
// PKCE (RFC 7636) and resource indicators (RFC 8707) behind a person's sign-in and consent, and
// rotating refresh tokens. The tokens name the agent the person picked as subject, the person
// as on-behalf-of ("obo"). Machine agents keep client credentials (internal/httpapi).
package oauthas

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/identity"
)

// Paths of the endpoints this package serves, under the server's base URL.
const (
	AuthorizePath = "/oauth2/authorize"
	ConsentPath   = "/oauth2/consent"
	RegisterPath  = "/oauth2/register"
)

// Grant types this package serves at the token endpoint.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// People tells who is signed in (internal/people implements it).
type People interface {
	// Person returns the signed-in person of the request (a cookie), nil and nil when none.
	Person(r *http.Request) (*warden.Principal, error)
	// SignInURL is where to send the browser to sign in, and then back to returnTo.
	SignInURL(returnTo string) string
}

// Roles tells a person's role now, for a refresh of a grant that relied on the person being an
// admin (not the agent's owner). ENotFound or any error refuses the refresh.
type Roles interface {
	Role(ctx context.Context, email string) (warden.Role, error)
}

// Tokens issues access tokens (identity.Service).
type Tokens interface {
	Issue(ctx context.Context, a *warden.Agent, r identity.IssueRequest) (*identity.Issued, error)
}

// Store is what the server keeps and reads.
type Store interface {
	warden.OAuthStore
	AgentByID(ctx context.Context, id string) (*warden.Agent, error)
	Agents(ctx context.Context) ([]*warden.Agent, error)
}

// Config are the server's settings; zero values take the defaults.
type Config struct {
	// Issuer is warden's public URL: the token issuer, the base of the endpoints and of the
	// resources (Issuer/mcp, Issuer/mcp/<tool>).
	Issuer string
	// Key authenticates the consent forms warden hands out (at least 32 bytes, the same on every
	// replica: derived from the master key).
	Key []byte
	// CodeTTL is how long an authorization code may be redeemed; default 1 minute.
	CodeTTL time.Duration
	// RefreshTTL is the absolute lifetime of a grant's refresh tokens, counted from the person's
	// consent; default 30 days. RefreshIdle ends a grant whose refresh token has not been used
	// for that long; default 7 days.
	RefreshTTL  time.Duration
	RefreshIdle time.Duration
	// MaxClients bounds how many clients may register; default 1000.
	MaxClients int
	// ConsentTTL is how long a consent page may be answered; default 10 minutes.
	ConsentTTL time.Duration
	// MetadataPrivateHosts lists the hosts (as written in a client_id URL) whose client ID
	// metadata documents may be fetched although they resolve to a loopback, private or
	// link-local address. Empty: only public addresses.
	MetadataPrivateHosts []string
}

func (c *Config) defaults() {
	if c.CodeTTL <= 0 {
		c.CodeTTL = time.Minute
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.RefreshIdle <= 0 {
		c.RefreshIdle = 7 * 24 * time.Hour
	}
	if c.MaxClients <= 0 {
		c.MaxClients = 1000
	}
	if c.ConsentTTL <= 0 {
		c.ConsentTTL = 10 * time.Minute
	}
	c.Issuer = strings.TrimRight(c.Issuer, "/")
}

// Server is the authorization server. Its fields are set once before use; People may be set
// after New (until it is, no authorization request is served and the metadata advertises none).
type Server struct {
	cfg    Config
	Store  Store
	Tokens Tokens
	People People
	Roles  Roles // nil: a grant that relied on the person's admin role is not refreshed
	Audit  warden.AuditLog
	// Refusals records refusals of callers that proved nothing (a junk code or refresh token),
	// within limits (identity.RefusalLog); nil records them in Audit.
	Refusals warden.AuditLog
	// KnownTool reports whether /mcp/<tool> exists, for a resource naming it.
	KnownTool func(name string) bool
	Log       *slog.Logger
	Clock     clock.Clock
	// MetadataTLS verifies the servers of client ID metadata documents; nil: the system roots.
	MetadataTLS *tls.Config

	metadata metadataFetcher
}

// New returns a server with cfg's defaults applied.
func New(cfg Config) *Server {
	cfg.defaults()
	return &Server{cfg: cfg, Log: slog.Default()}
}

// Enabled reports whether the authorization code flow can be served: someone must sign people in.
func (s *Server) Enabled() bool { return s != nil && s.People != nil }

func (s *Server) now() time.Time { return clock.Or(s.Clock).Now() }

// Extend adds what this server implements to warden's RFC 8414 metadata, with endpoints under
// base; nothing when it is not enabled, so that no client is sent to a dead end.
func (s *Server) Extend(m *identity.ServerMetadata, base string) {
	if !s.Enabled() {
		return
	}
	base = strings.TrimRight(base, "/")
	m.AuthorizationEndpoint = base + AuthorizePath
	m.RegistrationEndpoint = base + RegisterPath
	m.ResponseTypesSupported = []string{"code"}
	m.GrantTypesSupported = append(m.GrantTypesSupported, GrantAuthorizationCode, GrantRefreshToken)
	m.CodeChallengeMethodsSupported = []string{"S256"}
	m.TokenEndpointAuthMethodsSupported = append(m.TokenEndpointAuthMethodsSupported, "none")
	m.AuthorizationResponseIssParameterSupported = true
	m.ClientIDMetadataDocumentSupported = true
}

// resource is the default resource: the aggregate MCP endpoint.
func (s *Server) defaultResource() string { return s.cfg.Issuer + "/mcp" }

// validResource reports whether resource is warden's /mcp or /mcp/<a known tool>.
func (s *Server) validResource(resource string) bool {
	if !identity.MCPResource(s.cfg.Issuer, resource) {
		return false
	}
	tool := strings.TrimPrefix(strings.TrimPrefix(resource, s.cfg.Issuer+"/mcp"), "/")
	return tool == "" || s.KnownTool != nil && s.KnownTool(tool)
}

// mayUse reports whether person may have a client act as agent: the agent's owner is the
// person's email, or the person is an admin.
func mayUse(p *warden.Principal, a *warden.Agent) bool {
	if p == nil || a == nil {
		return false
	}
	if p.Role == warden.RoleAdmin {
		return true
	}
	return p.Email != "" && strings.EqualFold(a.Owner, p.Email)
}

// secret returns a new random value for a code or refresh token, and its hash for the store.
func secret() (value, hash string) {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails
	value = base64.RawURLEncoding.EncodeToString(b[:])
	return value, hashOf(value)
}

func hashOf(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])
}

// appendAudit records ev; a failure is logged and returned, and the caller fails closed.
func (s *Server) appendAudit(ctx context.Context, log warden.AuditLog, ev *warden.AuditEvent) error {
	if log == nil {
		log = s.Audit
	}
	err := log.Append(ctx, ev)
	if err != nil {
		s.Log.Error("audit append failed", "type", ev.Type, "err", err)
	}
	return err
}

func (s *Server) refusals() warden.AuditLog {
	if s.Refusals != nil {
		return s.Refusals
	}
	return s.Audit
}

// Run deletes expired codes and refresh tokens every interval until ctx ends, so that grants
// nobody uses do not pile up in the store.
func (s *Server) Run(ctx context.Context, every time.Duration) error {
	tick := clock.Or(s.Clock).NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
			if n, err := s.Store.PruneOAuth(ctx, s.now()); err != nil {
				s.Log.Warn("pruning expired OAuth grants failed", "err", err)
			} else if n > 0 {
				s.Log.Info("pruned expired OAuth grants", "count", n)
			}
		}
	}
}
