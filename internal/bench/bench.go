package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/loopback"
)

// Paths bench can drive.
const (
	PathMCP       = "mcp"       // tools/call through /mcp (MCP streamable HTTP, the official Go SDK client)
	PathHTTP      = "http"      // GET through /http/<tool>/…
	PathAuthorize = "authorize" // POST /v1/authorize, then the outcome
)

// MaxPolicies bounds the policies scenario.
const MaxPolicies = 10000

// ServerOptions say which server to measure: one that runs (Addr and Token) or, with Self, one
// started in this process.
type ServerOptions struct {
	Addr  string
	Token string
	Self  *SelfOptions
}

// Options configure one run of warden bench.
type Options struct {
	Server      ServerOptions
	Path        string
	Rate        float64       // calls a second to each target; 0 drives them flat out
	Duration    time.Duration // measured time per target (warden, direct, reverse proxy)
	Concurrency int           // workers per target
	Policies    int           // policies in the run's own file: its grant and Policies-1 for other agents
	Budgets     bool          // budgets on the agent and its tools, never reached, all checked on every call
	Progress    io.Writer     // a progress line while it runs; nil: none
}

func (o *Options) validate() error {
	switch {
	case o.Path != PathMCP && o.Path != PathHTTP && o.Path != PathAuthorize:
		return warden.Errorf(warden.EInvalid, "--path %q: use mcp, http or authorize", o.Path)
	case o.Rate < 0 || math.IsNaN(o.Rate) || o.Rate > 1e6:
		return warden.Errorf(warden.EInvalid, "--rate must be between 0 (flat out) and 1000000 calls a second")
	case o.Duration < 100*time.Millisecond || o.Duration > 24*time.Hour:
		return warden.Errorf(warden.EInvalid, "--duration must be between 100ms and 24h")
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return warden.Errorf(warden.EInvalid, "--concurrency must be between 1 and 1024")
	case o.Policies < 1 || o.Policies > MaxPolicies:
		return warden.Errorf(warden.EInvalid, "--policies must be between 1 and %d", MaxPolicies)
	}
	return nil
}

// Scenario is what the run measured under.
type Scenario struct {
	Policies  int    `json:"policies"`
	Budgets   bool   `json:"budgets"`
	AuditSink bool   `json:"audit_sink"`
	Store     string `json:"store"` // sqlite, postgres, or "running server"
	Self      bool   `json:"self"`
}

// Result is what warden bench measured. Each target was driven the same way in the same run,
// interleaved in slices of about a second so that the machine's noise falls on all three alike.
type Result struct {
	Path        string    `json:"path"`
	Mode        string    `json:"mode"` // "rate" or "flat out"
	Rate        float64   `json:"rate,omitempty"`
	Duration    float64   `json:"duration_seconds"` // per target
	Concurrency int       `json:"concurrency"`
	Scenario    Scenario  `json:"scenario"`
	Started     time.Time `json:"started"`
	Machine     Machine   `json:"machine"`

	Warden TargetResult `json:"warden"`
	Direct TargetResult `json:"direct"`
	Proxy  TargetResult `json:"reverse_proxy"`

	// AddedLatencyMS is warden's latency minus the direct call's, at each percentile.
	AddedLatencyMS Latency `json:"added_latency_ms"`
	// ThroughputRatio is warden's throughput over the reverse proxy's: the figure that matters
	// when both are driven flat out.
	ThroughputRatio float64 `json:"throughput_ratio"`

	Cleanup *Cleanup `json:"cleanup"`
}

// connection is the server bench or drill talks to.
type connection struct {
	c    *client
	self *Self
	tr   *transports
}

// connect starts the server in process (--self) or checks the address of a running one.
func connect(ctx context.Context, o ServerOptions) (*connection, error) {
	if o.Self != nil {
		s, err := StartSelf(ctx, *o.Self)
		if err != nil {
			return nil, err
		}
		tr := &transports{}
		return &connection{c: newClient(s.URL, s.Token, tr.new(4)), self: s, tr: tr}, nil
	}
	if err := checkLoopback(o.Addr); err != nil {
		return nil, err
	}
	if o.Token == "" {
		return nil, warden.Errorf(warden.EUnauthenticated, "no admin token: set WARDEN_TOKEN, or run where DATA/admin.token exists, or use --self")
	}
	tr := &transports{}
	return &connection{c: newClient(o.Addr, o.Token, tr.new(4)), tr: tr}, nil
}

func (cn *connection) close() error {
	cn.tr.closeIdle()
	if cn.self != nil {
		return cn.self.Stop()
	}
	return nil
}

// checkLoopback refuses a server that is not on this machine's loopback: the upstream bench and
// drill put behind warden listens on 127.0.0.1 in this process, and all their traffic stays on it.
func checkLoopback(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return warden.Errorf(warden.EInvalid, "server address %q: want http://127.0.0.1:PORT", addr)
	}
	if loopback.Host(u.Hostname()) {
		return nil
	}
	return warden.Errorf(warden.EInvalid, "server %s is not on 127.0.0.1: bench and drill run their upstream on this machine's loopback, so run them on the warden server's machine (or use --self)", addr)
}

// Run measures warden on one path against the same upstream called directly and through a
// plain reverse proxy, and removes what it created.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	res = &Result{
		Path: o.Path, Mode: "flat out", Rate: o.Rate, Duration: o.Duration.Seconds(), Concurrency: o.Concurrency,
		Scenario: Scenario{Policies: o.Policies, Budgets: o.Budgets, Store: "running server", Self: o.Server.Self != nil},
		Started:  time.Now().UTC(), Machine: ThisMachine(),
	}
	if o.Rate > 0 {
		res.Mode = "rate"
	}
	if s := o.Server.Self; s != nil {
		res.Scenario.AuditSink = s.AuditSink
		res.Scenario.Store = "sqlite"
		if s.Store != "" {
			res.Scenario.Store = "postgres"
		}
	}
	cn, err := connect(ctx, o.Server)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := cn.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()
	fx := newFixture(cn.c, "bench")
	defer func() { res.Cleanup = fx.cleanup(ctx) }()
	if err := fx.setup(ctx, up, []string{fx.prefix}, o.Policies, o.Budgets); err != nil {
		return res, err
	}
	ag := fx.Agents[0]
	token, err := newTokenSource(ctx, cn.c, ag.ClientID, ag.Secret)
	if err != nil {
		return res, err
	}
	base := cn.c.base
	var targets []*target // warden, direct, reverse proxy
	switch o.Path {
	case PathHTTP:
		targets = []*target{
			httpTarget("warden", base+"/http/"+fx.HTTPTool+"/echo", cn.tr.new(o.Concurrency), token),
			httpTarget("direct", up.URL+"/api/echo", cn.tr.new(o.Concurrency), nil),
			httpTarget("reverse proxy", up.ProxyURL+"/api/echo", cn.tr.new(o.Concurrency), nil),
		}
	case PathAuthorize:
		targets = []*target{
			authorizeTarget("warden", base+"/v1/authorize", func(id string) string { return base + "/v1/decisions/" + id + "/outcome" }, cn.tr.new(o.Concurrency), token, fx.HTTPTool),
			authorizeTarget("direct", up.URL+"/api/authorize", func(string) string { return up.URL + "/api/outcome" }, cn.tr.new(o.Concurrency), nil, fx.HTTPTool),
			authorizeTarget("reverse proxy", up.ProxyURL+"/api/authorize", func(string) string { return up.ProxyURL + "/api/outcome" }, cn.tr.new(o.Concurrency), nil, fx.HTTPTool),
		}
	case PathMCP:
		targets = []*target{
			mcpTarget("warden", base+"/mcp", fx.MCPTool+".echo", cn.tr, token),
			mcpTarget("direct", up.URL+"/mcp", "echo", cn.tr, nil),
			mcpTarget("reverse proxy", up.ProxyURL+"/mcp", "echo", cn.tr, nil),
		}
	}
	defer func() {
		for _, t := range targets {
			t.close()
		}
	}()
	for _, t := range targets {
		if err := t.open(ctx, o.Concurrency); err != nil {
			return res, err
		}
	}
	if err := drive(ctx, targets, o, token); err != nil {
		return res, err
	}
	res.Warden, res.Direct, res.Proxy = targets[0].result(), targets[1].result(), targets[2].result()
	res.AddedLatencyMS = res.Warden.LatencyMS.minus(res.Direct.LatencyMS)
	if res.Proxy.Throughput > 0 {
		res.ThroughputRatio = res.Warden.Throughput / res.Proxy.Throughput
	}
	return res, nil
}

// drive warms each target up, then runs them in turn in slices of about a second, rotating
// the order every round.
func drive(ctx context.Context, targets []*target, o Options, token *tokenSource) error {
	slices := max(1, int(math.Round(o.Duration.Seconds())))
	slice := o.Duration / time.Duration(slices)
	warmup := min(time.Second, max(o.Duration/10, 100*time.Millisecond))
	live := &progress{}
	var current atomic.Pointer[string]
	stop := startProgress(o.Progress, func() string {
		name := current.Load()
		if name == nil {
			return ""
		}
		return *name
	}, live)
	defer stop()
	for _, t := range targets {
		name := t.name + " (warm-up)"
		current.Store(&name)
		t.slice(ctx, warmup, o.Rate, false, live)
	}
	for i := range slices {
		if err := token.fresh(ctx); err != nil {
			return err
		}
		for j := range targets {
			t := targets[(i+j)%len(targets)]
			name := fmt.Sprintf("%s, slice %d/%d", t.name, i+1, slices)
			current.Store(&name)
			t.slice(ctx, slice, o.Rate, true, live)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// startProgress writes a progress line to w every second until stop is called: rewritten in
// place on a terminal, a line every five seconds otherwise.
func startProgress(w io.Writer, what func() string, live *progress) (stop func()) {
	if w == nil {
		return func() {}
	}
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start := time.Now()
		var lastCalls int64
		for n := 1; ; n++ {
			select {
			case <-done:
				if tty {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-t.C:
			}
			calls := live.calls.Load()
			line := fmt.Sprintf("warden: %4.0fs  %-28s %8.0f calls/s  %d calls  %d errors",
				time.Since(start).Seconds(), what(), float64(calls-lastCalls), calls, live.errors.Load())
			lastCalls = calls
			switch {
			case tty:
				fmt.Fprint(w, "\r\033[K"+strings.TrimSpace(line))
			case n%5 == 0:
				fmt.Fprintln(w, strings.TrimSpace(line))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
