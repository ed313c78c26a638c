// Package config reads warden's server configuration: defaults, then an optional YAML file, then
// environment variables and flags; then validation. An unknown key is an error naming the key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/yamldoc"
)

// Defaults.
const (
	DefaultListen = "127.0.0.1:8787"
	DefaultData   = "./warden-data"
	maxFileSize   = 1 << 20
)

// Config is the server's configuration.
type Config struct {
	Listen    string `yaml:"listen"`
	Data      string `yaml:"data"`
	Store     string `yaml:"store"`      // sqlite:PATH or a postgres:// URL; default sqlite:DATA/warden.db
	PublicURL string `yaml:"public_url"` // how agents reach this server; the token issuer; default http://LISTEN
	ReplicaID string `yaml:"replica_id"` // names this server in audit events and the fleet; default host name:listen port
	Log       Log    `yaml:"log"`
	Tokens    Tokens `yaml:"tokens"`
	// TokenExchange lists the identity providers whose tokens an agent may present as the
	// person it acts for (RFC 8693).
	TokenExchange TokenExchange `yaml:"token_exchange"`
	Gateway       Gateway       `yaml:"gateway"`
	Audit         Audit         `yaml:"audit"`
	Approvals     Approvals     `yaml:"approvals"`
	MCP           MCP           `yaml:"mcp"`
	KillSwitch    KillSwitch    `yaml:"killswitch"`
	SupplyChain   SupplyChain   `yaml:"supply_chain"`
	Flow          Flow          `yaml:"flow"`
	OAuth         OAuth         `yaml:"oauth"`
	People        People        `yaml:"people"`
	Telemetry     Telemetry     `yaml:"telemetry"`
	Detect        Detect        `yaml:"detect"`
}

// OAuth configures warden as the authorization server of interactive MCP clients
// (docs/oauth.md). Zero values take the defaults.
type OAuth struct {
	// RefreshTTL is the absolute lifetime of a grant, counted from the person's consent. Default 720h.
	RefreshTTL Duration `yaml:"refresh_ttl"`
	// RefreshIdle ends a grant whose refresh token went unused that long. Default 168h.
	RefreshIdle Duration `yaml:"refresh_idle"`
	// MaxClients bounds how many clients may register themselves. Default 1000.
	MaxClients int `yaml:"max_clients"`
	// MetadataPrivateHosts lists hosts whose client ID metadata documents may be fetched
	// although they resolve to a loopback, private or link-local address (SSRF guard).
	MetadataPrivateHosts []string `yaml:"metadata_private_hosts"`
}

// Flow bounds what each replica keeps of its sessions for flow facts (docs/flow.md): what each
// session read and the values of its untrusted output.
type Flow struct {
	// SessionMemory bounds the values of untrusted output a session keeps (16 bytes each); a
	// session that must evict some is decided from then on as if every argument were tainted.
	// Default 1MiB.
	SessionMemory Size `yaml:"session_memory"`
	// TotalMemory bounds every session together; beyond it the least recently used sessions are
	// dropped, and a dropped session counts every argument as tainted. Default 256MiB.
	TotalMemory Size `yaml:"total_memory"`
	// SessionIdle ends a session unused for so long (an MCP session ends when it closes).
	// Default 24h.
	SessionIdle Duration `yaml:"session_idle"`
	// MaxObserveBody is how much of an HTTP gateway response is read, before the agent gets any
	// of it, to be observed when its action's output is untrusted or private. Default 4MiB.
	MaxObserveBody Size `yaml:"max_observe_body"`
}

// KillSwitch configures how the kill state reaches every replica of a fleet on PostgreSQL.
type KillSwitch struct {
	// MaxStaleness is how old this replica's view of the kill state may be when its change
	// feed (LISTEN/NOTIFY) is down before it refuses every call with stale_state. Default 2s.
	MaxStaleness Duration `yaml:"max_staleness"`
	// AckTimeout bounds how long a kill, lockdown, tool disable or quarantine waits for every
	// live replica to acknowledge it; the report names those that did not. Default 1s.
	AckTimeout Duration `yaml:"ack_timeout"`
	// Heartbeat is how often this replica records that it is alive; a replica whose heartbeat
	// is older than three of these is not live. Default 1s.
	Heartbeat Duration `yaml:"heartbeat"`
}

// MCP configures the MCP gateway's local servers (tools added with --mcp-command).
type MCP struct {
	// Sandbox is required (default: each local server runs in warden's Linux sandbox, and on
	// other systems does not start) or off (plain processes, with a warning at each start).
	Sandbox string `yaml:"sandbox"`
}

// Gateway limits what passes the gateway.
type Gateway struct {
	MaxRequestBody  Size `yaml:"max_request_body"`  // HTTP gateway request bodies; default 10MiB
	MaxResponseBody Size `yaml:"max_response_body"` // HTTP gateway response bodies; default 100MiB
	// MaxInspectBody is the largest JSON request body policy sees as args.body; a larger JSON
	// body (by label or by content) is refused with 413, never forwarded unjudged. Default 1MiB.
	MaxInspectBody Size `yaml:"max_inspect_body"`
}

// Size is a byte count written as 512, 64KiB, 10MiB or 1GiB in YAML.
type Size int64

// UnmarshalYAML parses a size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a size (use e.g. 65536, 64KiB, 10MiB)", n.Line, n.Value)
	}
	*s = Size(v)
	return nil
}

// ParseSize reads a byte count with an optional KiB, MiB or GiB suffix.
func ParseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// Log configures the server's own log (not the audit log).
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (JSON unless on a terminal), json, text
}

// Tokens configures access tokens.
type Tokens struct {
	TTL       Duration `yaml:"ttl"`
	MaxTTL    Duration `yaml:"max_ttl"`
	ClockSkew Duration `yaml:"clock_skew"`
	Audience  string   `yaml:"audience"`
	// RefreshInterval is how often the agent-state snapshot is reloaded from the store: with
	// killswitch.max_staleness/2, it sets the safety-net poll under the fleet's announcements.
	RefreshInterval Duration `yaml:"refresh_interval"`
}

// TokenExchange configures RFC 8693 subject token issuers.
type TokenExchange struct {
	Issuers []TrustedIssuer `yaml:"issuers"`
}

// TrustedIssuer is an identity provider whose JWTs name the person an agent acts for.
type TrustedIssuer struct {
	Issuer   string `yaml:"issuer"`
	JWKSFile string `yaml:"jwks_file"`
	JWKSURL  string `yaml:"jwks_url"`
	Audience string `yaml:"audience"`
}

// Audit configures the audit log: its checkpoints, its retention and the sinks it is shipped to.
// docs/audit.md describes each key.
type Audit struct {
	// Origin names the log in its signed checkpoints; it is fixed when the first checkpoint key
	// is created. Default: the host of public_url followed by /audit.
	Origin     string          `yaml:"origin"`
	Checkpoint AuditCheckpoint `yaml:"checkpoint"`
	// Retention deletes events older than this, keeping the log verifiable from the newest
	// checkpoint below them; 0 keeps every event. Also --retention on `warden serve`.
	Retention Duration    `yaml:"retention"`
	Sinks     []AuditSink `yaml:"sinks"`

	// Refusals bounds how many unauthenticated refusals (junk tokens, wrong client secrets)
	// are recorded one by one; the rest are counted in token.refuse.summary events.
	Refusals AuditRefusals `yaml:"refusals"`
	// DiskWarnFree: while the free space where the SQLite store is kept (with PostgreSQL, the
	// data directory) is under this, warden warns in its log, in /readyz and by a
	// system.disk.low event. Default 1GiB.
	DiskWarnFree Size `yaml:"disk_warn_free"`
}

// AuditRefusals limits the recording of refusals of callers that proved no identity. Within
// the limits each is a token.refuse event; over them, a count in the next token.refuse.summary.
type AuditRefusals struct {
	PerSource       int      `yaml:"per_source"`       // a minute from one IPv4 address or IPv6 /64; default 30; 0: only summaries
	Total           int      `yaml:"total"`            // a minute from all sources together; default 300
	SummaryInterval Duration `yaml:"summary_interval"` // default 1m
	MaxSources      int      `yaml:"max_sources"`      // sources remembered at once; default 10000
}

// AuditCheckpoint says how often checkpoints are signed: every Every events, or Interval after
// the last if an event came since, whichever is first.
type AuditCheckpoint struct {
	Every    int64    `yaml:"every"`
	Interval Duration `yaml:"interval"`
}

// AuditSink is one destination the audit log is shipped to, at least once and in order.
type AuditSink struct {
	Name   string `yaml:"name"`   // names the sink's cursor; default its type
	Type   string `yaml:"type"`   // file, syslog or webhook
	Format string `yaml:"format"` // jsonl (warden's events) or ocsf; default jsonl

	// file
	Path     string `yaml:"path"`      // relative paths are under the data directory
	MaxSize  int64  `yaml:"max_size"`  // bytes before the file is rotated; default 100 MiB
	MaxFiles int    `yaml:"max_files"` // rotated files kept; default 5

	// syslog (RFC 5424)
	Network  string `yaml:"network"`  // tcp or udp
	Address  string `yaml:"address"`  // HOST:PORT
	Facility string `yaml:"facility"` // default local0

	// webhook
	URL       string            `yaml:"url"`
	Headers   map[string]string `yaml:"headers"`    // a value "env:NAME" is read from the environment
	BatchSize int               `yaml:"batch_size"` // events per POST; default 100
	Timeout   Duration          `yaml:"timeout"`    // per POST; default 10s
}

// Duration is a time.Duration written as "10m" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 10m, 1h, 30s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Default returns the configuration with every default set.
func Default() Config {
	return Config{
		Listen:  DefaultListen,
		Data:    DefaultData,
		Log:     Log{Level: "info", Format: "auto"},
		Gateway: Gateway{MaxRequestBody: 10 << 20, MaxResponseBody: 100 << 20, MaxInspectBody: 1 << 20},
		Tokens: Tokens{
			TTL:             Duration(10 * time.Minute),
			MaxTTL:          Duration(time.Hour),
			ClockSkew:       Duration(30 * time.Second),
			RefreshInterval: Duration(2 * time.Second),
		},
		Audit: Audit{
			Checkpoint:   AuditCheckpoint{Every: 1000, Interval: Duration(time.Minute)},
			Refusals:     AuditRefusals{PerSource: 30, Total: 300, SummaryInterval: Duration(time.Minute), MaxSources: 10_000},
			DiskWarnFree: 1 << 30,
		},
		MCP:        MCP{Sandbox: "required"},
		KillSwitch: KillSwitch{MaxStaleness: Duration(2 * time.Second), AckTimeout: Duration(time.Second), Heartbeat: Duration(time.Second)},
		Flow:       Flow{SessionMemory: 1 << 20, TotalMemory: 256 << 20, SessionIdle: Duration(24 * time.Hour), MaxObserveBody: 4 << 20},
	}
}

// Parse reads a YAML configuration over c. Unknown keys are errors naming the key and line; a
// value of the wrong kind names its field and line.
func (c *Config) Parse(name string, data []byte) error {
	if len(data) > maxFileSize {
		return fmt.Errorf("config %s: file is larger than %d bytes", name, maxFileSize)
	}
	err := yamldoc.Decode(data, c)
	if err == nil || errors.Is(err, yamldoc.ErrEmpty) { // an empty file is an empty configuration
		return nil
	}
	prefix := "config " + name + ": "
	return errors.New(prefix + strings.ReplaceAll(err.Error(), "\n", "\n"+prefix))
}

// Load reads the YAML file at path over c.
func (c *Config) Load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return c.Parse(path, data)
}

// ApplyEnv sets what the environment sets: WARDEN_LISTEN, WARDEN_DATA, WARDEN_STORE,
// WARDEN_PUBLIC_URL, WARDEN_REPLICA_ID.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for env, field := range map[string]*string{
		"WARDEN_LISTEN":     &c.Listen,
		"WARDEN_DATA":       &c.Data,
		"WARDEN_STORE":      &c.Store,
		"WARDEN_PUBLIC_URL": &c.PublicURL,
		"WARDEN_REPLICA_ID": &c.ReplicaID,
	} {
		if v := getenv(env); v != "" {
			*field = v
		}
	}
}

// Validate checks the configuration and fills in the defaults that depend on other fields.
func (c *Config) Validate() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: want HOST:PORT, e.g. 127.0.0.1:8787", c.Listen)
	}
	if c.Data == "" {
		return errors.New("data: a directory is required")
	}
	if c.Store == "" {
		c.Store = "sqlite:" + filepath.Join(c.Data, "warden.db")
	}
	if _, _, err := c.StoreKind(); err != nil {
		return err
	}
	if err := c.Detect.Validate(); err != nil {
		return err
	}
	if c.PublicURL == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		c.PublicURL = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("public_url %q: want an http(s) URL such as https://warden.example.com", c.PublicURL)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.ReplicaID == "" {
		// The port too: several replicas on one host share its name, and the fleet refuses two
		// live replicas with one ID.
		hostname, _ := os.Hostname()
		c.ReplicaID = hostname + ":" + port
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		return fmt.Errorf("log.format %q: use auto, json or text", c.Log.Format)
	}
	t := c.Tokens
	switch {
	case t.TTL <= 0 || t.MaxTTL <= 0:
		return errors.New("tokens.ttl and tokens.max_ttl must be positive")
	case t.TTL > t.MaxTTL:
		return fmt.Errorf("tokens.ttl %s is over tokens.max_ttl %s", time.Duration(t.TTL), time.Duration(t.MaxTTL))
	case t.MaxTTL > Duration(24*time.Hour):
		return errors.New("tokens.max_ttl must be at most 24h: agent tokens are short-lived")
	case t.ClockSkew < 0 || t.ClockSkew > Duration(5*time.Minute):
		return errors.New("tokens.clock_skew must be between 0 and 5m")
	case t.RefreshInterval < Duration(100*time.Millisecond):
		return errors.New("tokens.refresh_interval must be at least 100ms")
	}
	ks := c.KillSwitch
	switch {
	case ks.MaxStaleness < Duration(100*time.Millisecond) || ks.MaxStaleness > Duration(time.Minute):
		return errors.New("killswitch.max_staleness must be between 100ms and 1m")
	case ks.AckTimeout < Duration(10*time.Millisecond) || ks.AckTimeout > Duration(30*time.Second):
		return errors.New("killswitch.ack_timeout must be between 10ms and 30s")
	case ks.Heartbeat < Duration(100*time.Millisecond) || ks.Heartbeat > Duration(10*time.Second):
		return errors.New("killswitch.heartbeat must be between 100ms and 10s")
	}
	fl := c.Flow
	switch {
	case fl.SessionMemory < 4<<10 || fl.SessionMemory > 64<<20:
		return errors.New("flow.session_memory must be between 4KiB and 64MiB")
	case fl.TotalMemory < fl.SessionMemory || fl.TotalMemory > 64<<30:
		return errors.New("flow.total_memory must be at least flow.session_memory and at most 64GiB")
	case fl.SessionIdle < Duration(time.Minute) || fl.SessionIdle > Duration(30*24*time.Hour):
		return errors.New("flow.session_idle must be between 1m and 720h")
	case fl.MaxObserveBody < 4<<10 || fl.MaxObserveBody > c.Gateway.MaxResponseBody:
		return errors.New("flow.max_observe_body must be at least 4KiB and at most gateway.max_response_body")
	}
	if c.Gateway.MaxInspectBody > c.Gateway.MaxRequestBody {
		return errors.New("gateway.max_inspect_body cannot be over gateway.max_request_body")
	}
	for i, ti := range c.TokenExchange.Issuers {
		if ti.Issuer == "" {
			return fmt.Errorf("token_exchange.issuers[%d]: issuer is required", i)
		}
		if (ti.JWKSFile == "") == (ti.JWKSURL == "") {
			return fmt.Errorf("token_exchange.issuers[%d] (%s): set exactly one of jwks_file and jwks_url", i, ti.Issuer)
		}
	}
	switch c.MCP.Sandbox {
	case "":
		c.MCP.Sandbox = "required"
	case "required", "off":
	default:
		return fmt.Errorf("mcp.sandbox %q: use required or off", c.MCP.Sandbox)
	}
	if c.Audit.Origin == "" {
		c.Audit.Origin = u.Host + "/audit"
	}
	if err := c.SupplyChain.validate(); err != nil {
		return err
	}
	if err := c.Approvals.validate(); err != nil {
		return err
	}
	if err := c.People.validate(); err != nil {
		return err
	}
	if err := c.Telemetry.validate(c.Listen); err != nil {
		return err
	}
	return c.Audit.validate()
}

func (a *Audit) validate() error {
	if strings.ContainsAny(a.Origin, " \t\r\n+") {
		return fmt.Errorf("audit.origin %q: no spaces or '+' (it is a signed-note key name)", a.Origin)
	}
	switch {
	case a.Checkpoint.Every < 1:
		return errors.New("audit.checkpoint.every must be at least 1 event")
	case a.Checkpoint.Interval < Duration(time.Second):
		return errors.New("audit.checkpoint.interval must be at least 1s")
	case a.Retention < 0 || a.Retention > 0 && a.Retention < Duration(time.Hour):
		return errors.New("audit.retention must be 0 (keep everything) or at least 1h")
	case a.Refusals.PerSource < 0 || a.Refusals.PerSource > 100_000:
		return errors.New("audit.refusals.per_source must be between 0 and 100000 a minute")
	case a.Refusals.Total < 0 || a.Refusals.Total > 1_000_000:
		return errors.New("audit.refusals.total must be between 0 and 1000000 a minute")
	case a.Refusals.SummaryInterval < Duration(time.Second) || a.Refusals.SummaryInterval > Duration(time.Hour):
		return errors.New("audit.refusals.summary_interval must be between 1s and 1h")
	case a.Refusals.MaxSources < 100 || a.Refusals.MaxSources > 1_000_000:
		return errors.New("audit.refusals.max_sources must be between 100 and 1000000")
	case a.DiskWarnFree <= 0:
		return errors.New("audit.disk_warn_free must be a positive size, e.g. 1GiB")
	}
	names := map[string]bool{}
	for i := range a.Sinks {
		s := &a.Sinks[i]
		if s.Name == "" {
			s.Name = s.Type
		}
		where := fmt.Sprintf("audit.sinks[%d] (%s)", i, s.Name)
		if names[s.Name] {
			return fmt.Errorf("%s: another sink has this name; give each a name, which keys its delivery cursor", where)
		}
		names[s.Name] = true
		switch s.Format {
		case "":
			s.Format = "jsonl"
		case "jsonl", "ocsf":
		default:
			return fmt.Errorf("%s: format %q: use jsonl or ocsf", where, s.Format)
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(10 * time.Second)
		}
		if err := s.validate(where); err != nil {
			return err
		}
	}
	return nil
}

// SyslogFacilities are the RFC 5424 facility codes by name.
var SyslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
	"cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

func (s *AuditSink) validate(where string) error {
	switch s.Type {
	case "file":
		if s.Path == "" {
			return fmt.Errorf("%s: path is required", where)
		}
		if s.MaxSize == 0 {
			s.MaxSize = 100 << 20
		}
		if s.MaxFiles == 0 {
			s.MaxFiles = 5
		}
		if s.MaxSize < 4096 || s.MaxFiles < 1 {
			return fmt.Errorf("%s: max_size must be at least 4096 bytes and max_files at least 1", where)
		}
	case "syslog":
		if s.Network != "tcp" && s.Network != "udp" {
			return fmt.Errorf("%s: network %q: use tcp or udp", where, s.Network)
		}
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return fmt.Errorf("%s: address %q: want HOST:PORT", where, s.Address)
		}
		if s.Facility == "" {
			s.Facility = "local0"
		}
		if _, ok := SyslogFacilities[s.Facility]; !ok {
			return fmt.Errorf("%s: facility %q: use a syslog facility name such as auth, authpriv or local0", where, s.Facility)
		}
	case "webhook":
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: url %q: want an http(s) URL", where, s.URL)
		}
		if s.BatchSize == 0 {
			s.BatchSize = 100
		}
		if s.BatchSize < 1 || s.BatchSize > 1000 {
			return fmt.Errorf("%s: batch_size must be between 1 and 1000", where)
		}
		if s.Timeout < Duration(100*time.Millisecond) {
			return fmt.Errorf("%s: timeout must be at least 100ms", where)
		}
	default:
		return fmt.Errorf("%s: type %q: use file, syslog or webhook", where, s.Type)
	}
	return nil
}

// StoreKind splits Store into "sqlite" and a file path, or "postgres" and a URL.
func (c *Config) StoreKind() (kind, location string, err error) {
	switch {
	case strings.HasPrefix(c.Store, "sqlite:"):
		path := strings.TrimPrefix(c.Store, "sqlite:")
		if path == "" {
			return "", "", errors.New("store: sqlite: needs a file path, e.g. sqlite:./warden-data/warden.db")
		}
		return "sqlite", path, nil
	case strings.HasPrefix(c.Store, "postgres://"), strings.HasPrefix(c.Store, "postgresql://"):
		return "postgres", c.Store, nil
	}
	return "", "", warden.Errorf(warden.EInvalid, "store %q: use sqlite:PATH or a postgres:// URL", redactURL(c.Store))
}

// redactURL hides a password in a URL so it can go into an error message.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
