// Package server assembles a warden server from its parts (store, keys, token service, admin
// service, HTTP API) and runs it until its context ends.
package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/approval"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/auditsink"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/checkpoint"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/detect"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/httpapi"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/mcpgw"
	"github.com/wardenhq/warden/internal/metrics"
	"github.com/wardenhq/warden/internal/oauthas"
	"github.com/wardenhq/warden/internal/postgres"
	"github.com/wardenhq/warden/internal/seal"
	"github.com/wardenhq/warden/internal/secrets"
	"github.com/wardenhq/warden/internal/sqlite"
	"github.com/wardenhq/warden/internal/taint"
	"github.com/wardenhq/warden/internal/tracing"
)

// Version is the server's version, reported to MCP clients; set at build time.
var Version = "dev"

// AdminTokenFile is the file in the data directory that holds the first admin token.
const AdminTokenFile = "admin.token"

// Server is a running warden's parts.
type Server struct {
	Config   config.Config
	Store    warden.Store
	Audit    *audit.Log
	Identity *identity.Service
	Admin    *admin.Service
	Pipeline *gateway.Pipeline
	MCP      *mcpgw.Server
	Kill     *killswitch.Service
	Budgets  *budget.Budgets
	API      *httpapi.API
	// Fleet carries this replica's changes to the others and theirs to this one.
	Fleet fleet.Bus
	log   *slog.Logger

	Approvals *approval.Service

	// Tracing exports the pipeline's spans; nil without telemetry.otlp_endpoint.
	Tracing *tracing.Provider

	auditSinks *auditsink.Set
	detector   *detect.Runner // nil when detect.disabled
	refusals   *identity.RefusalLog
	console    *console.Console
	disk       *audit.DiskGuard
	metrics    *metrics.Metrics
	metricsLn  net.Listener // telemetry.metrics_listen; nil when not set
}

// Open builds a server from a validated configuration: it creates the data directory, opens
// the store (applying migrations), loads or creates the master key and signing keys.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, getenv func(string) string) (*Server, error) {
	return OpenClock(ctx, cfg, log, getenv, clock.Real{})
}

// OpenClock is Open with the clock that every part of the server tells the time by and waits
// on (token lifetimes, approvals, budgets, the kill state's reloads, audit checkpoints and
// retention, refusal summaries, the pipeline's decisions and decision expiry, MCP session idle
// timeouts, tool-list age and local servers' restart backoff): the real clock in production, a
// clock.Fake in tests. (Call latency is measured on the real monotonic clock.)
func OpenClock(ctx context.Context, cfg config.Config, log *slog.Logger, getenv func(string) string, clk clock.Clock) (*Server, error) {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	s, err := assemble(ctx, cfg, store, log, getenv, clk)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := s.listenMetrics(); err != nil {
		s.Close()
		return nil, fmt.Errorf("telemetry.metrics_listen: %w", err)
	}
	return s, nil
}

func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (warden.Store, error) {
	kind, location, err := cfg.StoreKind()
	if err != nil {
		return nil, err
	}
	// Each branch returns a nil interface on error, never a typed nil pointer in one.
	if kind == "sqlite" {
		s, err := sqlite.OpenLog(ctx, location, log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := postgres.Open(ctx, location)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func assemble(ctx context.Context, cfg config.Config, store warden.Store, log *slog.Logger, getenv func(string) string, clk clock.Clock) (_ *Server, err error) {
	assembled := false // the fleet is closed unless the server is built and will close it
	masterKey, err := seal.LoadOrCreateMasterKey(cfg.Data, getenv("WARDEN_MASTER_KEY"))
	if err != nil {
		return nil, err
	}
	meters := metrics.New()
	auditLog, sinks, err := openAudit(ctx, cfg, store, masterKey, log, getenv, clk, meters)
	if err != nil {
		return nil, err
	}
	issuers := make([]identity.TrustedIssuer, 0, len(cfg.TokenExchange.Issuers))
	for _, ti := range cfg.TokenExchange.Issuers {
		issuers = append(issuers, identity.TrustedIssuer{Issuer: ti.Issuer, JWKSFile: ti.JWKSFile, JWKSURL: ti.JWKSURL, Audience: ti.Audience})
	}
	kill := killswitch.NewState()
	bus, err := openFleet(ctx, cfg, clk, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !assembled {
			closeFleet(bus)
		}
	}()
	ids, err := identity.New(ctx, store, masterKey, identity.Config{
		Kill:            kill,
		Issuer:          cfg.PublicURL,
		Audience:        cfg.Tokens.Audience,
		TokenTTL:        time.Duration(cfg.Tokens.TTL),
		MaxTokenTTL:     time.Duration(cfg.Tokens.MaxTTL),
		ClockSkew:       time.Duration(cfg.Tokens.ClockSkew),
		RefreshInterval: time.Duration(cfg.Tokens.RefreshInterval),
		TrustedIssuers:  issuers,
		Clock:           clk,
		Fleet:           bus,
	}, log)
	if err != nil {
		return nil, err
	}
	sec := secrets.New(store, masterKey)
	sec.Clock = clk
	registry := gateway.NewRegistry(store, log)
	registry.Kill = kill
	auditLog.RateTools(registry.Tool)
	if err := registry.Load(ctx); err != nil {
		// Fail closed but keep serving: the gateway denies every call until an admin fixes the
		// policies, and the admin API must be up for that.
		log.Error("the gateway denies every call until the policies compile", "err", err)
	}
	// Replicas on one PostgreSQL share their budgets' counters in it; SQLite keeps them in memory.
	_, shared := store.(*postgres.Store)
	budgets, err := budget.New(ctx, store, log, budget.Options{Clock: clk, Shared: shared, Replica: cfg.ReplicaID})
	if err != nil {
		return nil, err
	}
	// Anyone can send junk credentials: their refusals are recorded within limits, the excess
	// in summaries, so that nobody can fill the disk the audit log needs.
	refusals := identity.NewRefusalLog(auditLog, identity.RefusalLimits{
		PerSource:  cfg.Audit.Refusals.PerSource,
		Total:      cfg.Audit.Refusals.Total,
		Interval:   time.Duration(cfg.Audit.Refusals.SummaryInterval),
		MaxSources: cfg.Audit.Refusals.MaxSources,
		Clock:      clk,
	}, log)
	gw := &gateway.Pipeline{Registry: registry, Tokens: ids, Kill: kill, Budgets: budgetAdapter{budgets}, Secrets: sec, Audit: auditLog, Log: log, Refusals: refusals, Clock: clk, Fresh: bus,
		Flow: newFlow(cfg, store, masterKey, clk), Observer: meters}
	// Shadow mode: every call is also decided by the candidate policy set, if there is one; the
	// differences are appended off the call's path.
	gw.Shadow = gateway.NewShadow(auditLog, log, clk, meters, 0)
	tp, err := newTracing(cfg, getenv)
	if err != nil {
		return nil, err
	}
	if tp != nil {
		gw.Tracer = tp.Tracer()
		defer func() {
			if !assembled {
				_ = tp.Shutdown(context.WithoutCancel(ctx))
			}
		}()
	}
	// Approvals: calls held for a person, decided through the API; a kill, suspension or
	// lockdown rejects them (killer.Approvals).
	approvals, err := newApprovals(cfg, store, auditLog, log, getenv, clk)
	if err != nil {
		return nil, err
	}
	gw.Approvals = approvals
	sandboxMode, err := mcpgw.ParseSandboxMode(cfg.MCP.Sandbox)
	if err != nil {
		return nil, err
	}
	pins := &manifestObserver{} // the admin service, once built below
	npm := newNPM(cfg, store, auditLog, log)
	mcp := mcpgw.New(gw, log, mcpgw.Options{BaseURL: cfg.PublicURL, Issuer: cfg.PublicURL, Version: Version, Clock: clk, Manifests: pins,
		Packages: npm.Installer, Sandbox: mcpgw.SandboxOptions{Mode: sandboxMode, Dir: npm.Workspaces, Audit: auditLog}})
	killer := &killswitch.Service{
		Store: store, State: kill, Audit: auditLog, Calls: gw, Sessions: mcp, Tokens: ids, Registry: registry,
		Runners: killswitch.NewRunners(), Approvals: approvals, Log: log, Clock: clk, Artifacts: artifacts{gw, mcp, log},
		Agents: ids, Fleet: bus, AckTimeout: time.Duration(cfg.KillSwitch.AckTimeout),
	}
	if err := killer.Load(ctx); err != nil {
		return nil, err
	}
	// Agents, tools, lockdown and quarantine are loaded: what they forbid was ended before this
	// process started, and the reconciler ends what changes from here.
	killer.Baseline()
	// Everything the kill state holds was just read from the store: this replica's view is
	// current now, and stays so while its feed connects (fleet.Bus.Stale).
	bus.Reloaded(clk.Now())
	// The Sigstore trusted root is read once: skills verify bundles with it, admin npm provenance.
	sigstore, err := cfg.SupplyChain.Sigstore()
	if err != nil {
		return nil, err
	}
	if sigstore != nil { // never a typed nil in the interface: no root means attestations are refused
		npm.Registry.Provenance = sigstore
	}
	adm := admin.New(admin.Deps{
		Store: store, Audit: auditLog, Observer: ids, Secrets: sec, Registry: registry, Calls: gw, Budgets: budgets,
		Kill: killer, Fleet: bus, Packages: mcp, Lister: mcp, NPM: npm, Log: log, Sigstore: sigstore, Events: store, Shadow: gw.Shadow,
	})
	pins.adm = adm
	// Detection (docs/detect.md): the runner reads the audit log off every call's path; the
	// holds its findings put are asked by the pipeline's approval step.
	holds := detect.NewHolds()
	gw.Holds = holds
	detectCfg := detect.FromConfig(cfg.Detect)
	var detector *detect.Runner
	if !cfg.Detect.Disabled {
		detector = &detect.Runner{Store: store, Notifier: auditLog, Audit: auditLog, Suspend: adm, Kill: killer, Holds: holds,
			Config: detectCfg, Replica: cfg.ReplicaID, Clock: clk, Log: log}
		if approvals != nil {
			detector.Findings = approvals // the approval webhooks hear of findings too
		}
	}
	skillService, err := newSkills(cfg, store, auditLog, kill, clk, sigstore)
	if err != nil {
		return nil, err
	}
	oauth := oauthas.New(oauthas.Config{
		Issuer:               cfg.PublicURL,
		Key:                  oauthKey(masterKey),
		RefreshTTL:           time.Duration(cfg.OAuth.RefreshTTL),
		RefreshIdle:          time.Duration(cfg.OAuth.RefreshIdle),
		MaxClients:           cfg.OAuth.MaxClients,
		MetadataPrivateHosts: cfg.OAuth.MetadataPrivateHosts,
	})
	oauth.Store, oauth.Tokens, oauth.Audit, oauth.Refusals, oauth.Log, oauth.Clock = store, ids, auditLog, refusals, log, clk
	oauth.KnownTool = func(name string) bool { _, ok := registry.Tool(name); return ok }
	signIn, err := newPeople(cfg, store, auditLog, adm, log, getenv, clk)
	if err != nil {
		return nil, err
	}
	// A person authorizes an interactive client by signing in to warden: through OIDC, or with
	// an admin token (break-glass) when people.oidc is not set.
	oauth.People, oauth.Roles = signIn, signIn
	disk := &audit.DiskGuard{Path: diskPath(cfg), WarnFree: int64(cfg.Audit.DiskWarnFree), Audit: auditLog, Log: log, Clock: clk}
	s := &Server{
		Config:    cfg,
		Store:     store,
		Audit:     auditLog,
		Identity:  ids,
		Admin:     adm,
		Pipeline:  gw,
		MCP:       mcp,
		Kill:      killer,
		Budgets:   budgets,
		Approvals: approvals,
		Fleet:     bus,
		API: &httpapi.API{
			Tokens: ids, Admin: adm, Store: store, Audit: auditLog, Log: log, BaseURL: cfg.PublicURL,
			HTTPGateway: gw.HTTPHandler(gateway.HTTPOptions{
				MaxRequestBody:  int64(cfg.Gateway.MaxRequestBody),
				MaxResponseBody: int64(cfg.Gateway.MaxResponseBody),
				MaxInspectBody:  int64(cfg.Gateway.MaxInspectBody),
				MaxObserveBody:  int64(cfg.Flow.MaxObserveBody),
			}),
			Authorize:         gw.AuthorizeHandler(),
			Outcome:           gw.OutcomeHandler(),
			MCP:               mcp.Handler(),
			ProtectedResource: mcp.ProtectedResourceMetadata(),
			Kill:              killer,
			Approvals:         approvals,
			Skills:            skillService,
			People:            signIn,
			Refusals:          refusals,
			Disk:              disk,
			Fleet:             bus,
			OAuth:             oauth,
			Metrics:           meters.Handler(),
			Detect:            &detect.Service{Store: store, Audit: auditLog, Config: detectCfg, Clock: clk},
		},
		Tracing:    tp,
		detector:   detector,
		log:        log,
		auditSinks: sinks,
		refusals:   refusals,
		disk:       disk,
		metrics:    meters,
	}
	if s.console, err = mountConsole(s.API, auditLog, cfg.PublicURL, masterKey, time.Duration(cfg.People.ConsoleIdleTimeout), log, clk); err != nil {
		return nil, err
	}
	assembled = true
	s.watch(meters)
	return s, nil
}

// oauthKey authenticates the consent forms of internal/oauthas: derived from the master key, so
// that every replica accepts the forms of every other.
func oauthKey(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("warden oauthas consent key v1"))
	return m.Sum(nil)
}

// newFlow is this replica's flow state of sessions (docs/flow.md): on PostgreSQL shared with the
// fleet through the store, every observation recorded and read back by the other replicas; on
// SQLite in memory, with a marker per session in the store so that a restart decides the
// sessions it lost as dropped. Values are hashed under a key the replicas derive from the
// master key they share.
func newFlow(cfg config.Config, store warden.Store, masterKey []byte, clk clock.Clock) *taint.Sessions {
	kind, _, _ := cfg.StoreKind()
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("warden flow values v1"))
	return taint.New(taint.Config{
		SessionBytes: int(cfg.Flow.SessionMemory), TotalBytes: int64(cfg.Flow.TotalMemory), Idle: time.Duration(cfg.Flow.SessionIdle),
		Store: store, Shared: kind == "postgres", Key: mac.Sum(nil)[:16],
	}, clk.Now)
}

// openFleet returns this replica's view of the fleet: with PostgreSQL the fleet of replicas
// sharing the database (LISTEN/NOTIFY on one channel, acknowledgements, heartbeats, strict
// freshness), with SQLite the fleet of this one replica.
func openFleet(ctx context.Context, cfg config.Config, clk clock.Clock, log *slog.Logger) (fleet.Bus, error) {
	kind, location, err := cfg.StoreKind()
	if err != nil {
		return nil, err
	}
	if kind != "postgres" {
		return fleet.NewLocal(cfg.ReplicaID, cfg.PublicURL, Version, clk.Now()), nil
	}
	return fleet.OpenPostgres(ctx, location, fleet.Options{
		ID: cfg.ReplicaID, Address: cfg.PublicURL, Version: Version,
		MaxStaleness: time.Duration(cfg.KillSwitch.MaxStaleness), Heartbeat: time.Duration(cfg.KillSwitch.Heartbeat),
		Clock: clk, Log: log,
	})
}

// closeFleet ends this replica's membership of the fleet (its heartbeat row goes, so nobody
// waits for its acknowledgements) once its Run has returned.
func closeFleet(bus fleet.Bus) error {
	if c, ok := bus.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// safetyNetInterval is how often the kill switch reloads the whole kill state under the fleet's
// announcements: the token refresh interval, or half the maximum staleness if that is shorter,
// so that a replica whose feed is down stays fresh on its polls alone while the store answers.
func safetyNetInterval(cfg config.Config) time.Duration {
	return min(time.Duration(cfg.Tokens.RefreshInterval), time.Duration(cfg.KillSwitch.MaxStaleness)/2)
}

// diskPath is the directory the disk guard watches: the SQLite database's, where the audit log
// is written. With PostgreSQL the log is on the database's disk, which warden cannot see; the
// data directory is watched for what warden keeps there (file sinks, local MCP workspaces).
func diskPath(cfg config.Config) string {
	if kind, location, err := cfg.StoreKind(); err == nil && kind == "sqlite" {
		return filepath.Dir(location)
	}
	return cfg.Data
}

// openAudit opens the audit log with its checkpoint key, and the sinks it is shipped to.
func openAudit(ctx context.Context, cfg config.Config, store warden.Store, masterKey []byte, log *slog.Logger, getenv func(string) string, clk clock.Clock, meters *metrics.Metrics) (*audit.Log, *auditsink.Set, error) {
	keys, err := checkpoint.LoadOrCreate(ctx, store, masterKey, cfg.Audit.Origin, clk.Now())
	if err != nil {
		return nil, nil, err
	}
	auditLog := audit.New(store, audit.Options{Replica: cfg.ReplicaID, Keys: keys, Logger: log, Clock: clk, Committed: meters.Committed})
	sinks, err := auditsink.New(cfg.Audit.Sinks, auditsink.Deps{
		Source: store, Notifier: auditLog, Log: log, Data: cfg.Data, Replica: cfg.ReplicaID, Getenv: getenv,
	})
	if err != nil {
		return nil, nil, err
	}
	return auditLog, sinks, nil
}

// Bootstrap creates the first admin token if the store has none, writes it to DATA/admin.token
// (mode 0600) and prints it once to out. Later starts do nothing.
func (s *Server) Bootstrap(ctx context.Context, out io.Writer) error {
	token, err := s.Admin.Bootstrap(ctx)
	if err != nil || token == "" {
		return err
	}
	path := filepath.Join(s.Config.Data, AdminTokenFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing the first admin token: %w", err)
	}
	_, err = fmt.Fprintln(f, token)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the first admin token: %w", err)
	}
	fmt.Fprintf(out, "\nWarden created the first admin token (role admin). It is shown this once and saved to %s (mode 0600):\n\n    %s\n\nThe CLI reads it from there, or from WARDEN_TOKEN. Create named tokens for people with\n'warden admin token create NAME --role ROLE'.\n\n", path, token)
	return nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.API.Handler() }

// Serve serves on ln until ctx ends, then shuts down gracefully: in-flight requests get up to
// grace to finish. Background work (the token service's refresh loop) stops with it.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	silent := trackSilentConns(srv)
	start := &warden.AuditEvent{
		Type:     warden.EventServerStart,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Decision: warden.EventDecision{Message: "listening on " + ln.Addr().String()},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	}
	if err := s.Audit.Append(ctx, start); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Identity.Run(gctx) })
	g.Go(func() error {
		return s.Audit.Run(gctx, audit.Background{
			CheckpointEvery:    s.Config.Audit.Checkpoint.Every,
			CheckpointInterval: time.Duration(s.Config.Audit.Checkpoint.Interval),
			Retention:          time.Duration(s.Config.Audit.Retention),
		})
	})
	g.Go(func() error { return s.auditSinks.Run(gctx) })
	if s.detector != nil {
		g.Go(func() error { return s.detector.Run(gctx) })
	}
	g.Go(func() error { return s.refusals.Run(gctx) })
	g.Go(func() error { return s.console.RunVerifications(gctx) })
	g.Go(func() error { return s.disk.Run(gctx, audit.DiskCheckInterval) })
	g.Go(func() error { return s.Pipeline.Run(gctx, 5*time.Second) })
	g.Go(func() error { return s.Pipeline.Shadow.Run(gctx) })
	g.Go(func() error { return s.Budgets.Run(gctx) })
	g.Go(func() error { return s.API.OAuth.Run(gctx, 10*time.Minute) })
	g.Go(func() error { return s.Approvals.Run(gctx) })
	g.Go(func() error { return s.Kill.Run(gctx, safetyNetInterval(s.Config)) })
	g.Go(func() error { return s.Fleet.Run(gctx, s.Kill.Handler(s.Identity, s.Budgets)) })
	if s.metricsLn != nil {
		msrv := s.metricsServer()
		g.Go(func() error { return s.serveMetrics(msrv) })
		g.Go(func() error { <-gctx.Done(); return msrv.Close() })
	}
	g.Go(func() error {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("warden stopping", "grace", grace)
		// Open MCP streams keep their requests alive until their sessions end; end them first,
		// and stop the local MCP servers warden started (each within its own stop grace). The
		// requests left then have the whole grace to finish.
		if err := s.MCP.Close(); err != nil {
			s.log.Warn("closing MCP sessions", "err", err)
		}
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(gctx), grace)
		defer cancel()
		// Shutdown waits for a connection that never sent a request as if it were busy, for
		// its first 5 s; such a connection has nothing to finish, so close it at once.
		stopSilent := silent.closeWhile(shutdownCtx)
		defer stopSilent()
		return srv.Shutdown(shutdownCtx)
	})
	s.log.Info("warden serving", "listen", ln.Addr().String(), "public_url", s.Config.PublicURL, "data", s.Config.Data, "replica", s.Config.ReplicaID)
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	// Requests still served during the shutdown grace may have counted refusals after the
	// refusal log's own last summary: summarise them once no request is left.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := s.refusals.Flush(final); ferr != nil {
		s.log.Error("recording the last refusal summary failed", "err", ferr)
	}
	// Likewise the shadow differences of calls decided during the grace.
	s.Pipeline.Shadow.Flush(final)
	return err
}

// Close releases the store.
func (s *Server) Close() error {
	var metricsErr error
	if s.metricsLn != nil {
		if err := s.metricsLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			metricsErr = err
		}
	}
	err := errors.Join(s.Audit.Close(), s.auditSinks.Close(), closeFleet(s.Fleet), s.Store.Close(), metricsErr)
	s.closeTracing()
	return err
}

// closeTracing exports the spans still held, for at most a few seconds: a collector that is
// down does not hold up the server's exit.
func (s *Server) closeTracing() {
	if s.Tracing == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Tracing.Shutdown(ctx); err != nil {
		s.log.Warn("exporting the last spans failed", "err", err)
	}
}

// budgetAdapter lets the gateway consume budgets in its own terms.
type budgetAdapter struct{ b *budget.Budgets }

func (a budgetAdapter) Consume(agent, tool, action string, args map[string]any, now time.Time) (func(), float64, *gateway.BudgetDenial, error) {
	release, burn, d, err := a.b.Charge(context.Background(), budget.Usage{Agent: agent, Tool: tool, Action: action, Args: args, Now: now})
	if err != nil || d == nil {
		return release, burn, nil, err
	}
	return release, 0, &gateway.BudgetDenial{Reason: d.Reason, Message: d.Message, RetryAfter: d.RetryAfter}, nil
}

// manifestObserver passes the MCP gateway's tool lists to the admin service, which is built
// after the gateway (it needs the kill switch, which needs the gateway's sessions).
type manifestObserver struct{ adm *admin.Service }

func (o *manifestObserver) ObserveManifests(ctx context.Context, tool string, entries []json.RawMessage) error {
	return o.adm.ObserveManifests(ctx, tool, entries)
}

// artifacts is the kill switch's Artifacts on this replica: a digest newly quarantined
// cancels the calls in flight to the tool manifests and server packages that have it (the
// pipeline), then stops the local MCP servers that run the package (the MCP gateway).
type artifacts struct {
	calls   *gateway.Pipeline
	servers *mcpgw.Server
	log     *slog.Logger
}

var (
	_ killswitch.Artifacts      = artifacts{}
	_ killswitch.ManifestFinder = artifacts{}
	_ killswitch.PackageFinder  = artifacts{}
)

// StopDigest returns the calls it cancelled; the servers it stopped are named in the log here
// and in the quarantine's report (PackagesOf).
func (a artifacts) StopDigest(ctx context.Context, digest, reason string) int {
	n := a.calls.StopDigest(ctx, digest, reason)
	if stopped := a.servers.StopPackage(digest); len(stopped) > 0 {
		a.log.Info("local mcp servers stopped: their package is "+reason, "digest", digest, "tools", stopped)
	}
	return n
}

func (a artifacts) ManifestsOf(digest string) []string { return a.calls.ManifestsOf(digest) }
func (a artifacts) PackagesOf(digest string) []string  { return a.calls.PackagesOf(digest) }
