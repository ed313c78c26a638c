// Package httpapi is warden's HTTP API: the OAuth 2.0 endpoints agents use, the admin API people
// use (through the CLI), and health checks. Every route checks who calls and answers errors as JSON.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/detect"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/oauthas"
	"github.com/wardenhq/warden/internal/people"
	"github.com/wardenhq/warden/internal/skills"
)

// Body limits: OAuth requests are small forms; admin requests are small JSON documents.
const (
	maxOAuthBody = 64 << 10
	maxAdminBody = 1 << 20
	// maxReplayBody bounds a replay's sessions: recorded tool results are larger than admin
	// documents (apitype.MaxReplayResultBytes each).
	maxReplayBody = 64 << 20
)

// Tokens is the token service the API fronts.
type Tokens interface {
	warden.TokenVerifier
	AuthenticateClient(ctx context.Context, clientID, secret string) (*warden.Agent, error)
	Issue(ctx context.Context, a *warden.Agent, r identity.IssueRequest) (*identity.Issued, error)
	VerifySubjectToken(ctx context.Context, token string) (subject, issuer string, err error)
	Revoke(ctx context.Context, token, by string) (*warden.Claims, error)
	RotateKeys(ctx context.Context) (*warden.SigningKey, error)
	JWKS() []byte
	Metadata(baseURL string) any
	Ready() bool
}

// Store is the part of the store the API reads directly.
type Store interface {
	AgentByID(ctx context.Context, id string) (*warden.Agent, error)
	SigningKeys(ctx context.Context) ([]*warden.SigningKey, error)
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
	CountAuditEvents(ctx context.Context, f warden.AuditFilter, upTo int64) (int64, error)
	Ping(ctx context.Context) error
}

// API serves warden's HTTP API.
type API struct {
	Tokens  Tokens
	Admin   *admin.Service
	Store   Store
	Audit   warden.AuditLog
	Log     *slog.Logger
	BaseURL string // the public URL of this server, e.g. http://127.0.0.1:8787

	// The gateway's entry points, mounted when set.
	HTTPGateway       http.Handler // /http/<tool>/<path>
	Authorize         http.Handler // POST /v1/authorize
	Outcome           http.Handler // POST /v1/decisions/{id}/outcome
	MCP               http.Handler // /mcp and /mcp/<tool>
	ProtectedResource http.Handler // /.well-known/oauth-protected-resource[/...]

	// OAuth is the authorization code flow of interactive MCP clients; its routes are mounted
	// when set, and it advertises itself in the metadata once it is enabled.
	OAuth *oauthas.Server

	// Kill is the kill switch; its routes are mounted when set.
	Kill *killswitch.Service
	// Approvals takes people's decisions on held calls; its routes are mounted when set.
	Approvals *approval.Service
	// Detect shows detection's findings and baselines; its routes are mounted when set.
	Detect *detect.Service
	// Skills registers and serves Agent Skills; its routes are mounted when set.
	Skills *skills.Service
	// People signs people in (/login, /logout, `warden login`); its routes are mounted, and
	// its CLI sessions (wps_…) accepted beside admin tokens, when set.
	People *people.Service

	// Refusals records unauthenticated refusals (token.refuse of a caller that proved no
	// identity) within per-source limits (identity.RefusalLog); nil records them in Audit.
	Refusals warden.AuditLog
	// Disk reports the free space where the audit log is kept, for /readyz; nil: not watched.
	Disk DiskStatus
	// Fleet is this replica's view of the others (fleet.Bus): GET /v1/replicas lists them, and
	// /readyz is not ready while this replica's kill state is stale. nil: no such route or check.
	Fleet Fleet
	// Console is the web console (internal/console), mounted at /ui/ when set.
	Console http.Handler
	// Metrics serves the Prometheus metrics (internal/metrics) at GET /metrics, to a person of
	// role auditor, operator or admin. nil: no such route.
	Metrics http.Handler
}

// Fleet is the part of fleet.Bus the API shows.
type Fleet interface {
	Stale(now time.Time) bool
	Replicas(ctx context.Context) (apitype.Replicas, error)
}

// DiskStatus is the part of audit.DiskGuard that /readyz shows.
type DiskStatus interface {
	// Status is "ok", or a sentence saying how little space is left.
	Status() string
}

// Handler returns the routes of the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)

	mux.HandleFunc("POST /oauth2/token", a.token)
	mux.HandleFunc("POST /oauth2/introspect", a.introspect)
	mux.HandleFunc("POST /oauth2/revoke", a.revoke)
	mux.HandleFunc("GET /.well-known/jwks.json", a.jwks)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", a.metadata)

	mux.Handle("GET /v1/agent/self", a.agentRoute(a.agentSelf))

	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	adminOnly := warden.RoleSet{}
	mux.Handle("GET /v1/whoami", a.adminRoute(warden.RoleSet(warden.Roles), a.whoami))
	if a.Fleet != nil {
		mux.Handle("GET /v1/replicas", a.adminRoute(read, a.replicas))
	}
	mux.Handle("GET /v1/agents", a.adminRoute(read, a.listAgents))
	mux.Handle("POST /v1/agents", a.adminRoute(adminOnly, a.createAgent))
	mux.Handle("GET /v1/agents/{name}", a.adminRoute(read, a.getAgent))
	mux.Handle("DELETE /v1/agents/{name}", a.adminRoute(adminOnly, a.deleteAgent))
	mux.Handle("POST /v1/agents/{name}/suspend", a.adminRoute(warden.RoleSet{warden.RoleOperator}, a.suspendAgent))
	mux.Handle("POST /v1/agents/{name}/resume", a.adminRoute(adminOnly, a.resumeAgent))
	mux.Handle("POST /v1/agents/{name}/renew", a.adminRoute(adminOnly, a.renewAgent))
	mux.Handle("POST /v1/agents/{name}/rotate-secret", a.adminRoute(adminOnly, a.rotateSecret))

	mux.Handle("GET /v1/admin/tokens", a.adminRoute(adminOnly, a.listAdminTokens))
	mux.Handle("POST /v1/admin/tokens", a.adminRoute(adminOnly, a.createAdminToken))
	mux.Handle("DELETE /v1/admin/tokens/{name}", a.adminRoute(adminOnly, a.revokeAdminToken))

	if a.Metrics != nil {
		mux.Handle("GET /metrics", a.adminRoute(read, func(w http.ResponseWriter, r *http.Request, _ *warden.Principal) error {
			a.Metrics.ServeHTTP(w, r)
			return nil
		}))
	}

	mux.Handle("GET /v1/keys", a.adminRoute(warden.RoleSet{warden.RoleAuditor}, a.listKeys))
	mux.Handle("POST /v1/keys/rotate", a.adminRoute(adminOnly, a.rotateKeys))

	a.auditRoutes(mux)
	a.toolRoutes(mux)
	a.setRoutes(mux)
	a.applyRoutes(mux)
	a.killRoutes(mux)
	a.approvalRoutes(mux)
	a.detectRoutes(mux)
	a.skillRoutes(mux)
	a.oauthASRoutes(mux)
	a.peopleRoutes(mux)
	a.suggestRoutes(mux)
	a.policyShadowRoutes(mux)

	mount := func(pattern string, h http.Handler) {
		if h != nil {
			mux.Handle(pattern, h)
		}
	}
	mount("POST /v1/authorize", a.Authorize)
	mount("POST /v1/decisions/{id}/outcome", a.Outcome)
	mount("/mcp", a.MCP)
	mount("/mcp/", a.MCP)
	mount("GET /.well-known/oauth-protected-resource", a.ProtectedResource)
	mount("GET /.well-known/oauth-protected-resource/", a.ProtectedResource)
	mount("/ui/", a.Console)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, warden.Errorf(warden.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	var h http.Handler = mux
	if a.HTTPGateway != nil {
		// The HTTP gateway sees the request before ServeMux, which would answer a path with
		// "..", "//" or their encodings with a redirect to a cleaned path; the gateway refuses such
		// paths outright instead.
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/http/") {
				a.HTTPGateway.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	return a.recoverer(h)
}

// recoverer turns a panic in a handler into a 500 without a stack trace in the response; the
// stack goes to the log. A panic is a bug, never the caller's fault.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, warden.Errorf(warden.EInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// replicas lists the fleet as this replica sees it.
func (a *API) replicas(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	return answer(w, http.StatusOK)(a.Fleet.Replicas(r.Context()))
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"store": "ok", "keys": "ok"}
	ready := true
	if err := a.Store.Ping(ctx); err != nil {
		a.Log.Warn("readiness: store unreachable", "err", err)
		checks["store"] = "unreachable"
		ready = false
	}
	if !a.Tokens.Ready() {
		checks["keys"] = "not loaded"
		ready = false
	}
	if a.Fleet != nil {
		checks["kill_state"] = "ok"
		if a.Fleet.Stale(time.Now()) {
			// The gateway refuses every call with stale_state: send the traffic elsewhere.
			checks["kill_state"] = "stale: the link to the other replicas is down and the last reload is too old"
			ready = false
		}
	}
	if a.Disk != nil {
		// A warning, not unreadiness: the log still writes; the operator has time to act.
		checks["disk"] = a.Disk.Status()
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code string) int { return warden.HTTPStatus(&warden.Error{Code: code}) }

// ErrorBody is the wire type apitype.ErrorBody; see there.
type ErrorBody = apitype.ErrorBody

func writeError(w http.ResponseWriter, err error) {
	var body ErrorBody
	body.Error.Code = warden.ErrorCode(err)
	body.Error.Message = warden.ErrorMessage(err)
	if body.Error.Code == warden.EUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
	}
	writeJSON(w, StatusOf(body.Error.Code), body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client may be gone; nothing useful to do about it
}

// decodeJSON decodes exactly one JSON object into v, rejecting unknown fields, trailing data and
// bodies over the limit.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSONLimit(w, r, v, maxAdminBody)
}

// decodeJSONLimit is decodeJSON with another limit on the body, for the few routes that take
// more than a small document.
func decodeJSONLimit(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return warden.Errorf(warden.EInvalid, "content type must be application/json")
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if err := DecodeStrict(body, v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return warden.Errorf(warden.ETooLarge, "request body is over %d bytes", limit)
		}
		return err
	}
	return nil
}

// DecodeStrict decodes exactly one JSON value from rd into v: unknown fields and trailing data
// are errors, so a misspelt field is never silently ignored.
func DecodeStrict(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return warden.Errorf(warden.EInvalid, "request body is empty; expected a JSON object")
		}
		return warden.Errorf(warden.EInvalid, "invalid JSON body: %s", apitype.JSONErrorMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return warden.Errorf(warden.EInvalid, "invalid JSON body: unexpected data after the object")
	}
	return nil
}
