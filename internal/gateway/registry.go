package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/route"
)

// RegistryStore is what the registry loads from.
type RegistryStore interface {
	Tools(ctx context.Context) ([]*warden.Tool, error)
	PolicySet(ctx context.Context, version int64) (*warden.PolicySet, error)
}

// entry is a registered tool ready for the hot path.
type entry struct {
	tool   *warden.Tool
	routes *route.Table // http tools
	header string       // the canonical name of the injected header, if any
	value  string       // its template, with {{secret}} where the secret goes
	// pins are an MCP server's pinned tool manifests by MCP tool name (nil: none pinned yet):
	// a call checks its tool's with one map lookup (manifestRefusal).
	pins map[string]*warden.ToolManifest
	// labels are the flow labels of the actions known at load (flowLabels).
	labels map[string]warden.FlowLabels
}

// snapshot is the tools and the policy engine in force. It is never changed once published.
type snapshot struct {
	tools  map[string]*entry
	engine *cedar.Engine // nil when no policy set compiles: every call is denied
	err    error         // why engine is nil
	// shadow is the candidate policy set of shadow mode (Shadow), nil when there is none or it
	// does not compile against the tools; it decides nothing that happens.
	shadow        *cedar.Engine
	shadowVersion int64
}

// ManifestStore is where the registry finds the pinned MCP tool manifests; a RegistryStore
// that is not one has none.
type ManifestStore interface {
	ToolManifests(ctx context.Context, tool string) ([]*warden.ToolManifest, error)
}

// ShadowStore is where the registry finds the candidate policy set of shadow mode; a
// RegistryStore that is not one has none.
type ShadowStore interface {
	PolicyShadow(ctx context.Context) (*warden.PolicyShadow, error)
}

// Registry holds the registered tools and the compiled policy set, swapped atomically as one
// snapshot so that a decision never sees tools and policies from different moments.
type Registry struct {
	store RegistryStore
	log   *slog.Logger
	// Kill, when set, learns which tools are disabled on every load.
	Kill *killswitch.State
	mu   sync.Mutex // serialises reloads
	snap atomic.Pointer[snapshot]
	// shadowFailed is the candidate version last found not to compile (under mu), so that a
	// reload every 5 s logs it once rather than each time.
	shadowFailed int64
}

// NewRegistry returns a registry that denies everything until Load succeeds.
func NewRegistry(store RegistryStore, log *slog.Logger) *Registry {
	r := &Registry{store: store, log: log}
	r.snap.Store(&snapshot{tools: map[string]*entry{}, err: errors.New("policies not loaded")})
	return r
}

// Load reads the tools and the latest policy set from the store and publishes them. If the
// policies do not compile against the tools, the tools are published with no engine — every
// call is denied (fail closed) — and the error is returned.
func (r *Registry) Load(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ticket uint64
	if r.Kill != nil {
		ticket = r.Kill.Ticket()
	}
	tools, err := r.store.Tools(ctx)
	if err != nil {
		return fmt.Errorf("loading tools: %w", err)
	}
	files := map[string]string{}
	var version int64
	ps, err := r.store.PolicySet(ctx, 0)
	switch {
	case err == nil:
		files, version = ps.Files, ps.Version
	case warden.ErrorCode(err) != warden.ENotFound:
		return fmt.Errorf("loading policies: %w", err)
	}
	var pins []*warden.ToolManifest
	if ms, ok := r.store.(ManifestStore); ok {
		if pins, err = ms.ToolManifests(ctx, ""); err != nil {
			return fmt.Errorf("loading tool manifests: %w", err)
		}
	}
	if r.Kill != nil {
		r.Kill.SetTools(ticket, tools)
	}
	snap, err := build(WithBuiltins(tools), files, version)
	r.loadShadow(ctx, snap, tools)
	for _, m := range pins {
		if e := snap.tools[m.Tool]; e != nil {
			if e.pins == nil {
				e.pins = map[string]*warden.ToolManifest{}
			}
			e.pins[m.Name] = m
		}
	}
	for _, e := range snap.tools {
		e.resolveLabels()
	}
	schemas, skipped := cedar.ManifestSchemas(pins)
	for _, why := range skipped {
		r.log.Warn("an MCP tool's input schema is not one warden reads; its arguments are judged as sent", "schema", why)
	}
	snap.engine = snap.engine.WithInputSchemas(schemas)
	snap.shadow = snap.shadow.WithInputSchemas(schemas) // the candidate reads arguments as the live set does
	if err != nil {
		r.log.Error("policies do not compile against the registered tools; denying every call", "policy_version", version, "err", err)
	}
	r.snap.Store(snap)
	return err
}

// loadShadow compiles the candidate policy set into snap. The candidate never stops the live
// set from loading: one that cannot be read keeps the candidate in force before, one that no
// longer compiles (a tool it names was removed) is not compared, and both are logged.
func (r *Registry) loadShadow(ctx context.Context, snap *snapshot, tools []*warden.Tool) {
	ss, ok := r.store.(ShadowStore)
	if !ok {
		return
	}
	ps, err := ss.PolicyShadow(ctx)
	switch {
	case warden.ErrorCode(err) == warden.ENotFound:
		return
	case err != nil:
		r.log.Error("loading the shadow policy set; comparing with the one loaded before", "err", err)
		prev := r.current()
		snap.shadow, snap.shadowVersion = prev.shadow, prev.shadowVersion
		return
	}
	engine, err := cedar.Compile(ps.Files, WithBuiltins(tools), ps.Version)
	if err != nil {
		if r.shadowFailed != ps.Version {
			r.shadowFailed = ps.Version
			r.log.Error("the shadow policy set does not compile against the registered tools; no call is compared with it", "shadow_version", ps.Version, "err", err)
		}
		return
	}
	r.shadowFailed = 0
	snap.shadow, snap.shadowVersion = engine, ps.Version
}

// ShadowVersion returns the version of the candidate policy set calls are compared with, 0 when
// none is.
func (r *Registry) ShadowVersion() int64 {
	s := r.current()
	if s.shadow == nil {
		return 0
	}
	return s.shadowVersion
}

// build compiles tools and policy files into a snapshot. The error, if any, is also kept in the
// snapshot, whose engine is then nil.
func build(tools []*warden.Tool, files map[string]string, version int64) (*snapshot, error) {
	snap := &snapshot{tools: make(map[string]*entry, len(tools))}
	for _, t := range tools {
		e, err := newEntry(t)
		if err != nil {
			return &snapshot{tools: map[string]*entry{}, err: err}, err
		}
		snap.tools[t.Name] = e
	}
	engine, err := cedar.Compile(files, tools, version)
	if err != nil {
		snap.err = err
		return snap, err
	}
	snap.engine = engine
	return snap, nil
}

func newEntry(t *warden.Tool) (*entry, error) {
	e := &entry{tool: t}
	if t.Kind == warden.ToolHTTP {
		table, err := route.Compile(t.Routes)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", t.Name, err)
		}
		e.routes = table
	}
	if t.Inject != "" {
		name, value, err := ParseInject(t.Inject)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", t.Name, err)
		}
		e.header, e.value = name, value
	}
	return e, nil
}

// ParseInject parses a header template such as "Authorization: Bearer {{secret}}".
func ParseInject(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	switch {
	case !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || !validHeaderName(name):
		return "", "", warden.Errorf(warden.EInvalid, "inject %q: want 'Header-Name: value with {{secret}}'", s)
	case strings.Count(value, "{{secret}}") != 1:
		return "", "", warden.Errorf(warden.EInvalid, "inject %q: the value must contain {{secret}} exactly once", s)
	case strings.ContainsAny(value, "\r\n\x00"):
		return "", "", warden.Errorf(warden.EInvalid, "inject %q: the value must be one line", s)
	case hopByHop[textproto.CanonicalMIMEHeaderKey(name)] || strings.HasPrefix(strings.ToLower(name), "warden-") || OverrideHeader(name):
		return "", "", warden.Errorf(warden.EInvalid, "inject %q: %s cannot carry a credential", s, name)
	}
	return textproto.CanonicalMIMEHeaderKey(name), value, nil
}

func validHeaderName(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

// hopByHop are the headers that belong to one connection and never travel through a proxy.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true,
}

// WithBuiltins adds the tools every installation has (the egress proxy's) to the registered ones.
func WithBuiltins(tools []*warden.Tool) []*warden.Tool {
	out := make([]*warden.Tool, 0, len(tools)+1)
	out = append(out, tools...)
	for _, t := range tools {
		if t.Name == warden.EgressTool.Name {
			return out
		}
	}
	return append(out, warden.EgressTool)
}

// Check reports whether tools and files would compile together, without publishing anything:
// the admin API calls it before a change so that a change that would leave the gateway denying
// everything is refused instead.
func Check(tools []*warden.Tool, files map[string]string) error {
	_, err := build(WithBuiltins(tools), files, 0)
	return err
}

func (r *Registry) current() *snapshot { return r.snap.Load() }

// Tool returns a registered tool.
func (r *Registry) Tool(name string) (*warden.Tool, bool) {
	e, ok := r.current().tools[name]
	if !ok {
		return nil, false
	}
	return e.tool, true
}

// Manifests returns the pinned manifests of an MCP server by MCP tool name, as the registry
// has them now (nil: none). The map is shared: never change it.
func (r *Registry) Manifests(tool string) map[string]*warden.ToolManifest {
	if e := r.current().tools[tool]; e != nil {
		return e.pins
	}
	return nil
}

// Engine returns the policy engine in force, or an error saying why there is none.
func (r *Registry) Engine() (*cedar.Engine, error) {
	s := r.current()
	if s.engine == nil {
		return nil, s.err
	}
	return s.engine, nil
}
