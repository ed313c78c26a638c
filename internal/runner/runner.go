// Package runner is the outside half of `warden run`: it authenticates as the agent, registers
// the sandbox with the server and holds its control channel, serves the sandbox's forwarders
// (the gateway with the agent's token added, and the egress proxy), and kills the sandbox when
// the server says so or goes silent for longer than the lease.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/connect"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/sandbox"
)

// In-sandbox ports of the forwarders, on 127.0.0.1 in the sandbox's own network namespace
// (nothing else listens there, so fixed ports cannot clash).
const (
	GatewayPort = 4747
	ProxyPort   = egress.SandboxPort
)

// Lease-loss policies.
const (
	OnLeaseLossKill   = "kill"
	OnLeaseLossFreeze = "freeze"
)

// Options configure one run.
type Options struct {
	Server      string
	Agent       string
	Credentials connect.Credentials
	// Spec is the sandbox; the runner adds the forwarders' listeners and environment.
	Spec       sandbox.Spec
	AllowHosts []egress.HostPattern
	// Skills are mounted read-only at SkillsDir/NAME once fetched and verified; the command's
	// WARDEN_SKILLS lists them.
	Skills      []Skill
	Timeout     time.Duration // 0: none
	OnLeaseLoss string        // kill (default) or freeze
	Log         *slog.Logger
	HTTP        *http.Client // for the token endpoint and decisions; default with a 30 s timeout
	// Proxy overrides parts of the egress proxy (tests); its Decider is always the server's.
	Proxy *egress.Proxy
	// Started, when set, is called once the command runs.
	Started func(*sandbox.Sandbox)
}

// Result is how a run ended.
type Result struct {
	Exit sandbox.Exit
	// Ended says why warden ended the sandbox ("" when the command ended on its own):
	// terminated by the server, lease lost, or timeout.
	Ended    string
	Timeout  bool
	Weakened []sandbox.Problem
}

// Run runs the command in a sandbox for the agent and returns how it ended. An error means
// the command did not run (or warden lost track of it).
func Run(ctx context.Context, o Options) (*Result, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	server, err := url.Parse(o.Server)
	if err != nil || server.Host == "" {
		return nil, warden.Errorf(warden.EInvalid, "server address %q must be an http(s) URL", o.Server)
	}
	sc, err := connect.New(o.Server, o.Credentials, log)
	if err != nil {
		return nil, err
	}
	// The agent must be able to act now: a suspended, killed or expired agent gets no token.
	name, err := sc.AgentName(ctx)
	if err != nil {
		return nil, err
	}
	if name != o.Agent {
		return nil, warden.Errorf(warden.EInvalid, "the credentials are agent %q's, not %q's", name, o.Agent)
	}
	// One client of warden's API for the run, as the agent: the control channel through it has
	// no timeout, since the stream lasts as long as the run.
	api := &apiclient.Client{Base: server.String(), Token: sc.Token, UserAgent: "warden-runner"}
	ctl := &Control{API: api}
	// The skills first: the registration names the digests the sandbox will mount.
	skills, err := fetchSkills(ctx, api, o.Skills, o.Spec.Workspace)
	if err != nil {
		return nil, err
	}
	defer skills.remove()
	hostname, _ := os.Hostname()
	req := apitype.RunnerRequest{Hostname: hostname, PID: os.Getpid(), Command: strings.Join(o.Spec.Command, " "), Skills: skills.skills}
	reg, err := ctl.Register(ctx, req)
	if err != nil {
		if msg, _, refused := refusal(err); refused {
			return nil, warden.Errorf(warden.EForbidden, "warden will not let agent %q run a sandbox: %s", o.Agent, msg)
		}
		return nil, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	w := &watch{req: req, reg: reg, ctl: ctl, log: log, terminate: make(chan string, 1), alive: make(chan struct{}, 1), opened: make(chan error, 1)}
	w.touch(leaseOf(reg))
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancel() // before bg.Wait: it stops the goroutines bg waits for
	bg.Add(1)
	go func() { defer bg.Done(); w.run(runCtx) }()
	// Fail closed from the start: no control channel, no sandbox.
	select {
	case err := <-w.opened:
		if err != nil {
			deregister(ctl, w.registration(), log)
			return nil, err
		}
	case reason := <-w.terminate:
		deregister(ctl, w.registration(), log)
		return nil, warden.Errorf(warden.EForbidden, "warden terminated the run before it started: %s", reason)
	case <-ctx.Done():
		deregister(ctl, w.registration(), log)
		return nil, ctx.Err()
	}

	spec := o.Spec
	spec.Listeners = append(spec.Listeners, sandbox.Listener{Name: "gateway", Port: GatewayPort}, sandbox.Listener{Name: "proxy", Port: ProxyPort})
	spec.Env = append(spec.Env, ForwarderEnv()...)
	if len(skills.skills) > 0 {
		spec.Binds = append(spec.Binds, skills.binds...)
		spec.Env = append(spec.Env, skills.env())
	}
	sb, err := sandbox.Start(ctx, &spec)
	if err != nil {
		_ = ctl.SendReport(context.WithoutCancel(ctx), w.registration(), Report{Event: "exited", Reason: "the sandbox did not start", ExitCode: -1})
		deregister(ctl, w.registration(), log)
		return nil, err
	}
	proxy := &egress.Proxy{}
	if o.Proxy != nil {
		proxy = o.Proxy
	}
	decisions := *api
	decisions.HTTP = o.HTTP
	proxy.Decider = &egress.DecisionAPI{API: &decisions}
	proxy.AllowHosts = o.AllowHosts
	if proxy.Log == nil {
		proxy.Log = log
	}
	bg.Add(2)
	go func() {
		defer bg.Done()
		srv := &http.Server{Handler: GatewayHandler(sc.Handler()), ReadHeaderTimeout: 10 * time.Second}
		stop := context.AfterFunc(runCtx, func() { _ = srv.Close() })
		defer stop()
		_ = srv.Serve(sb.Listeners["gateway"])
	}()
	go func() { defer bg.Done(); _ = proxy.Serve(runCtx, sb.Listeners["proxy"]) }()
	if o.Started != nil {
		o.Started(sb)
	}

	res := &Result{Weakened: sb.Weakened}
	done := make(chan struct{})
	var exit sandbox.Exit
	var waitErr error
	go func() { exit, waitErr = sb.Wait(); close(done) }()
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	leaseCheck := time.NewTicker(250 * time.Millisecond)
	defer leaseCheck.Stop()
	frozen := false
	interrupted := ctx.Done()
	var grace <-chan time.Time
	kill := func(why string) {
		if res.Ended == "" {
			res.Ended = why
		}
		n := sb.Kill()
		log.Warn("sandbox killed", "reason", why, "processes", n)
	}
loop:
	for {
		select {
		case <-done:
			break loop
		case reason := <-w.terminate:
			kill("terminated by warden: " + reason)
		case <-timeout:
			res.Timeout = true
			kill(fmt.Sprintf("timeout after %s", o.Timeout))
		case <-interrupted:
			interrupted = nil
			_ = sb.Signal(syscall.SIGTERM)
			grace = time.After(10 * time.Second)
		case <-grace:
			kill("interrupted")
		case <-w.alive:
			if frozen && sb.Freeze(false) == nil {
				frozen = false
				log.Info("lease regained; sandbox thawed")
			}
		case <-leaseCheck.C:
			if frozen || !w.expired() {
				continue
			}
			if o.OnLeaseLoss == OnLeaseLossFreeze && sb.CanFreeze() && sb.Freeze(true) == nil {
				frozen = true
				log.Warn("lease lost; sandbox frozen until warden answers again")
				continue
			}
			kill(fmt.Sprintf("lease lost: no word from warden for %s", w.lease()))
		}
	}
	res.Exit = exit
	cancel()

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	rep := Report{Event: "exited", ExitCode: exit.Code}
	if exit.Kind == sandbox.ExitedKilled {
		rep = Report{Event: "terminated", Reason: res.Ended, ProcessesKilled: exit.Killed, ExitCode: exit.Code}
	}
	// The registration in force: after a server restart the runner registered again.
	cur := w.registration()
	if err := ctl.SendReport(rctx, cur, rep); err != nil {
		log.Warn("could not report the sandbox's end", "err", err)
	}
	deregister(ctl, cur, log)
	return res, waitErr
}

func deregister(ctl *Control, reg Registration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ctl.Deregister(ctx, reg); err != nil {
		log.Warn("could not deregister the runner", "err", err)
	}
}

// ForwarderEnv is what the command finds in its environment: the gateway at WARDEN_URL (the
// forwarder adds the agent's token) and the egress proxy in the usual proxy variables, which
// the gateway's loopback address bypasses.
func ForwarderEnv() []string {
	return append([]string{fmt.Sprintf("WARDEN_URL=http://127.0.0.1:%d", GatewayPort)}, egress.ProxyEnv(ProxyPort)...)
}

// gatewayPaths are what the sandbox may reach through WARDEN_URL: the gateway's entry points
// and what an agent needs to find them. The token endpoint and the runner API are not among
// them: the sandbox must neither mint tokens nor speak for its runner.
var gatewayPaths = []string{"/mcp", "/mcp/", "/http/", "/v1/authorize", "/v1/decisions/", "/v1/agent/self", "/.well-known/"}

// GatewayHandler restricts the forwarder to the gateway's paths.
func GatewayHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		for _, allowed := range gatewayPaths {
			if p == allowed || (strings.HasSuffix(allowed, "/") && strings.HasPrefix(p, allowed)) {
				if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
					break
				}
				next.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":"forbidden","message":"the sandbox reaches only warden's gateway through WARDEN_URL"}}` + "\n"))
	})
}

// watch keeps the control channel: it reconnects when the stream drops, re-registers when the
// server forgot the runner, and tracks when the server was last heard from.
type watch struct {
	req       apitype.RunnerRequest // what a re-registration says again
	ctl       *Control
	log       *slog.Logger
	terminate chan string
	alive     chan struct{}
	opened    chan error // the first stream's opening (nil) or why it could not open

	mu       sync.Mutex
	reg      Registration
	deadline time.Time
	leaseDur time.Duration
	once     sync.Once
}

func (w *watch) registration() Registration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reg
}

func (w *watch) touch(lease time.Duration) {
	w.mu.Lock()
	w.leaseDur = lease
	w.deadline = time.Now().Add(lease)
	w.mu.Unlock()
	select {
	case w.alive <- struct{}{}:
	default:
	}
}

func (w *watch) expired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().After(w.deadline)
}

func (w *watch) lease() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leaseDur
}

func (w *watch) open(err error) {
	w.once.Do(func() { w.opened <- err })
}

func (w *watch) stop(reason string) {
	select {
	case w.terminate <- reason:
	default:
	}
}

func (w *watch) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	opened, terminated := false, false
	for ctx.Err() == nil && !terminated {
		w.mu.Lock()
		id := w.reg.ID
		w.mu.Unlock()
		err := w.ctl.Stream(ctx, id, func() {
			opened = true
			w.touch(w.lease())
			w.open(nil)
			backoff = 100 * time.Millisecond
		}, func(ev apiclient.ControlEvent) bool {
			switch ev.Name {
			case "terminate":
				w.stop(ev.Reason)
				terminated = true
				return false
			case "lease":
				lease := w.lease()
				if ev.LeaseSeconds > 0 {
					lease = time.Duration(ev.LeaseSeconds) * time.Second
				}
				w.touch(lease)
			default:
				w.touch(w.lease())
			}
			return true
		})
		if ctx.Err() != nil {
			w.open(ctx.Err())
			return
		}
		msg, status, refused := refusal(err)
		if refused && status == http.StatusNotFound && opened {
			// The server forgot the runner (it restarted): register again.
			reg, rerr := w.ctl.Register(ctx, w.req)
			if rerr == nil {
				w.mu.Lock()
				w.reg = reg
				w.mu.Unlock()
				continue
			}
			err = rerr
			msg, _, refused = refusal(err)
		}
		if refused {
			w.open(warden.Errorf(warden.EForbidden, "warden will not keep the sandbox: %s", msg))
			w.stop(msg)
			return
		}
		if !opened {
			// No control channel, no sandbox.
			if err == nil {
				err = errors.New("the stream closed at once")
			}
			w.open(warden.WrapError(warden.EUnavailable, "cannot open warden's control channel for the sandbox", err))
			return
		}
		if err != nil {
			w.log.Warn("control channel lost; reconnecting", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
