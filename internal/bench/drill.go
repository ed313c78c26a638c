package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// Drills.
const (
	DrillKill     = "kill"
	DrillLockdown = "lockdown"
)

// Targets of the kill switch (issue 5): reported beside the drill's figures. They are
// performance targets, not guarantees: missing one does not fail the drill.
const (
	TargetKillReturn = 50 * time.Millisecond
	TargetCancel     = 100 * time.Millisecond
)

// SandboxSpec is what a drill asks of a sandbox: run Command as Agent through the server at Addr.
type SandboxSpec struct {
	Addr                   string
	Agent                  string
	ClientID, ClientSecret string
	Workspace              string // an empty temporary directory the drill removes
	Command                []string
}

// SandboxStarter starts `warden run` for a canary and returns the started process, which the
// drill waits for. The CLI provides one when the run command exists.
type SandboxStarter func(ctx context.Context, s SandboxSpec) (*exec.Cmd, error)

// DrillOptions configure a fire drill.
type DrillOptions struct {
	Server   ServerOptions
	Kind     string        // DrillKill or DrillLockdown
	Agents   int           // canaries (a kill drill has one)
	Sessions int           // tokens (live sessions) per canary
	Rate     float64       // steady calls a second through the HTTP gateway, over all canaries
	Before   time.Duration // load before the kill
	After    time.Duration // load after the kill returned
	// Restart stops and starts the in-process server after the kill and checks that the canary's
	// token is still refused. Only with Self.
	Restart bool
	// Confirm allows a lockdown drill against a running server, where it denies every agent of
	// the fleet until it lifts the lockdown.
	Confirm     bool
	Sandbox     SandboxStarter // nil: no sandbox, for the reason SandboxNote gives
	SandboxNote string
	Progress    io.Writer // a line per step; nil: none
	// Replicas are the URLs of every replica of a fleet on one PostgreSQL, the first of them
	// Server.Addr: the canaries' sessions, calls in flight and load are spread over all of them,
	// the kill is sent through the first, and every guarantee is checked on each.
	Replicas []string
}

func (o *DrillOptions) validate() error {
	switch {
	case o.Kind != DrillKill && o.Kind != DrillLockdown:
		return warden.Errorf(warden.EInvalid, "unknown drill %q: use kill or lockdown", o.Kind)
	case o.Kind == DrillKill && o.Agents != 1:
		return warden.Errorf(warden.EInvalid, "a kill drill has one canary")
	case o.Agents < 1 || o.Agents > 100:
		return warden.Errorf(warden.EInvalid, "--agents must be between 1 and 100")
	case o.Sessions < 1 || o.Sessions > 10000:
		return warden.Errorf(warden.EInvalid, "--sessions must be between 1 and 10000")
	case o.Rate < 1 || o.Rate > 100000:
		return warden.Errorf(warden.EInvalid, "--rate must be between 1 and 100000 calls a second: a drill needs load to prove anything")
	case o.Before < 100*time.Millisecond || o.After < 100*time.Millisecond || o.Before > time.Hour || o.After > time.Hour:
		return warden.Errorf(warden.EInvalid, "--before and --after must be between 100ms and 1h")
	case o.Restart && o.Server.Self == nil:
		return warden.Errorf(warden.EInvalid, "--restart needs --self: the drill can restart only a server it runs itself")
	case o.Kind == DrillLockdown && o.Server.Self == nil && !o.Confirm:
		return warden.Errorf(warden.EInvalid, "a lockdown drill against a running server denies every agent of the fleet until it lifts the lockdown; add --yes to do it, or use --self")
	case len(o.Replicas) > 0 && o.Server.Self != nil:
		return warden.Errorf(warden.EInvalid, "--replicas names running servers; it excludes --self")
	case len(o.Replicas) > 16:
		return warden.Errorf(warden.EInvalid, "--replicas: at most 16")
	case len(o.Replicas) > 0 && strings.TrimSuffix(o.Replicas[0], "/") != strings.TrimSuffix(o.Server.Addr, "/"):
		return warden.Errorf(warden.EInvalid, "--replicas: the first replica is the one the kill is sent through, and must be the server address")
	}
	for i, r := range o.Replicas {
		if err := checkLoopback(r); err != nil {
			return err
		}
		if slices.Contains(o.Replicas[:i], r) {
			return warden.Errorf(warden.EInvalid, "--replicas names %s twice", r)
		}
	}
	return nil
}

// Check is one guarantee and whether the drill saw it hold.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// SandboxResult is what became of the canaries' sandboxes.
type SandboxResult struct {
	Available bool   `json:"available"`
	Note      string `json:"note,omitempty"`
	Started   int    `json:"started"`   // sandbox processes running before the kill
	Left      int    `json:"left"`      // still running 5 seconds after it
	Runners   int    `json:"runners"`   // `warden run` processes started
	Exited    int    `json:"exited"`    // of which exited on their own after the kill
	Stopped   int    `json:"stopped"`   // sandboxes warden reported it told to stop
	PIDsLeft  []int  `json:"pids_left"` // the processes left, which the drill then killed
}

// RestartResult is the token check after the server was restarted.
type RestartResult struct {
	Status  int  `json:"status"` // the gateway's answer to the canary's old token
	Self    int  `json:"agent_self_status"`
	Refused bool `json:"refused"`
}

// ReplicaResult is what a drill over several replicas saw on one of them.
type ReplicaResult struct {
	URL string `json:"url"`
	ID  string `json:"id"` // its replica id, as its audit events name it
	// Acked says the kill report names the replica as having acknowledged the kill; AckedMS is
	// how long after publishing the acknowledgement arrived.
	Acked          bool    `json:"acked"`
	AckedMS        float64 `json:"acked_ms"`
	InFlight       int     `json:"in_flight_calls"`
	Cancelled      int     `json:"in_flight_cancelled"`
	LastCancelMS   float64 `json:"last_cancel_ms"` // from sending the kill to the upstream seeing the last call through it cancelled
	Streams        int     `json:"streams"`
	StreamsClosed  int     `json:"streams_closed"`
	CallsAfter     int64   `json:"calls_sent_after"`
	SucceededAfter int64   `json:"succeeded_after_kill"` // load calls and a new MCP session's call
	AllowedAfter   int     `json:"allowed_after_kill"`
}

// DrillResult is what a drill measured and checked.
type DrillResult struct {
	Drill    string    `json:"drill"`
	ID       string    `json:"id"`
	Canaries []string  `json:"canaries"`
	Started  time.Time `json:"started"`
	Machine  Machine   `json:"machine"`
	Rate     float64   `json:"rate"`
	Sessions int       `json:"sessions_per_canary"`

	// KillReturnMS is the time from sending the kill (or lockdown) to its answer, at the client.
	KillReturnMS float64 `json:"kill_return_ms"`
	// AdminRoundTripMS is the median of a trivial admin request just before: the baseline.
	AdminRoundTripMS float64 `json:"admin_round_trip_ms"`
	// ServerElapsedMS is the same as the server measured it (the kill report's elapsed).
	ServerElapsedMS float64 `json:"server_elapsed_ms"`
	// LastCancelMS is the time from sending the kill until the upstream saw the last of the calls
	// in flight cancelled.
	LastCancelMS float64 `json:"last_cancel_ms"`
	InFlight     int     `json:"in_flight_calls"`
	Cancelled    int     `json:"in_flight_cancelled"`

	CallsOKBefore     int64 `json:"calls_ok_before"`
	CallsFailedBefore int64 `json:"calls_failed_before"`
	CallsAfter        int64 `json:"calls_sent_after"`
	AllowedAfter      int   `json:"allowed_after_kill"`   // allow decisions in the audit log timed after the kill returned
	SucceededAfter    int64 `json:"succeeded_after_kill"` // client calls sent after it that succeeded
	StreamsClosed     int   `json:"streams_closed"`       // the canaries' open MCP sessions found closed
	Streams           int   `json:"streams"`

	// Replicas has a row per replica when the drill ran over several (--replicas).
	Replicas []ReplicaResult `json:"replicas,omitempty"`

	Sandbox SandboxResult       `json:"sandbox"`
	Restart *RestartResult      `json:"restart,omitempty"`
	Report  *apitype.KillReport `json:"report"`

	Checks  []Check  `json:"checks"`  // guarantees: any failure fails the drill
	Targets []Check  `json:"targets"` // performance targets: reported, not failed
	Passed  bool     `json:"passed"`
	Cleanup *Cleanup `json:"cleanup"`
}

func (r *DrillResult) check(name string, ok bool, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Name: name, Passed: ok, Detail: fmt.Sprintf(format, args...)})
}

// Failed lists the guarantees that did not hold, with the cleanup when it left something.
func (r *DrillResult) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c.Name)
		}
	}
	if r.Cleanup != nil && !r.Cleanup.OK() {
		out = append(out, "cleanup")
	}
	return out
}

// canary is one agent of the drill and what runs as it.
type canary struct {
	*fixtureAgent
	tokens    []*tokenSource
	sessions  []*mcp.ClientSession // one per replica
	mcpDone   []chan error         // the long MCP call's end, per session
	sandbox   *exec.Cmd
	sbDone    chan error
	pids      []int
	workspace string
}

// Drill runs a fire drill of the kill switch: canaries under load, with an open MCP stream and
// calls in flight (and sandboxes when `warden run` exists), killed or locked down through the
// API; then it checks every guarantee and removes what it created.
func Drill(ctx context.Context, o DrillOptions) (res *DrillResult, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	say := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "drill: "+format+"\n", args...)
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
	res = &DrillResult{Drill: o.Kind, Started: time.Now().UTC(), Machine: ThisMachine(), Rate: o.Rate, Sessions: o.Sessions}
	if o.Kind == DrillLockdown {
		l, err := cn.c.LockdownState(ctx)
		if err != nil {
			return nil, err
		}
		if l.Active {
			return nil, warden.Errorf(warden.EConflict, "a lockdown is already in force (%s); the drill would not know what it changed, nor may it lift someone else's lockdown", l.Reason)
		}
	}
	up, err := startUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()
	fx := newFixture(cn.c, "drill")
	res.ID = fx.prefix
	var names []string
	if o.Kind == DrillKill {
		names = []string{fx.prefix + "-canary"}
	} else {
		for i := range o.Agents {
			names = append(names, fmt.Sprintf("%s-canary-%d", fx.prefix, i+1))
		}
	}
	res.Canaries = names
	var canaries []*canary
	defer func() {
		say("cleaning up")
		for _, c := range canaries {
			c.release()
		}
		res.Cleanup = fx.cleanup(ctx)
		res.Passed = len(res.Failed()) == 0
	}()
	say("creating %s, its tools and its policy", strings.Join(names, ", "))
	if err := fx.setup(ctx, up, names, len(names), false); err != nil {
		return res, err
	}
	say("getting %d tokens (live sessions) per canary", o.Sessions)
	for _, a := range fx.Agents {
		c := &canary{fixtureAgent: a}
		canaries = append(canaries, c)
		if c.tokens, err = tokens(ctx, cn.c, a, o.Sessions); err != nil {
			return res, err
		}
	}
	if err := startSandboxes(ctx, cn, canaries, o, &res.Sandbox, say); err != nil {
		return res, err
	}

	gw := &http.Client{Transport: cn.tr.new(256), Timeout: 30 * time.Second}
	fleet := []*client{cn.c}
	for _, r := range o.Replicas[min(1, len(o.Replicas)):] {
		fleet = append(fleet, newClient(r, o.Server.Token, cn.tr.new(4)))
	}
	if len(o.Replicas) > 0 {
		say("waiting for every replica to know the canaries, and learning their replica ids")
		if res.Replicas, err = identifyReplicas(ctx, fleet, gw, fx, canaries[0]); err != nil {
			return res, err
		}
	}
	say("opening an MCP session per canary and replica and starting calls that block until cancelled")
	// The calls that block are the kill's to cancel; if it does not, the drill ends them itself.
	callCtx, stopCalls := context.WithCancel(context.WithoutCancel(ctx))
	var calls sync.WaitGroup
	defer func() {
		stopCalls()
		calls.Wait()
	}()
	var ids []string              // the calls that block, by the id the upstream records them under
	idReplica := map[string]int{} // and the replica each went through
	for i, c := range canaries {
		for k, rc := range fleet {
			cs, err := mcpConnect(ctx, rc.base+"/mcp", c.tokens[0], cn.tr.new(4))
			if err != nil {
				return res, fmt.Errorf("canary %s: MCP session at %s: %w", c.Name, rc.base, err)
			}
			done := make(chan error, 1)
			c.sessions, c.mcpDone = append(c.sessions, cs), append(c.mcpDone, done)
			res.Streams++
			mcpID, httpID := fmt.Sprintf("mcp-%d-%d", i, k), fmt.Sprintf("http-%d-%d", i, k)
			ids = append(ids, mcpID, httpID)
			idReplica[mcpID], idReplica[httpID] = k, k
			calls.Add(2)
			go func() {
				defer calls.Done()
				_, err := cs.CallTool(callCtx, &mcp.CallToolParams{Name: fx.MCPTool + ".block", Arguments: map[string]any{"id": mcpID}})
				done <- err
			}()
			go func() {
				defer calls.Done()
				_, _, _ = httpCall(callCtx, gw, http.MethodGet, fmt.Sprintf("%s/http/%s/block?id=%s", rc.base, fx.HTTPTool, httpID), nil, c.tokens[len(c.tokens)-1])
			}()
		}
	}
	res.InFlight = len(ids)
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = up.blocks.wait(waitCtx, func(started, _ map[string]time.Time) bool {
		for _, id := range ids {
			if _, ok := started[id]; !ok {
				return false
			}
		}
		return true
	})
	cancel()
	if err != nil {
		return res, fmt.Errorf("the calls that block never all reached the upstream: %w", err)
	}

	say("driving %.0f calls/s through the HTTP gateway for %s", o.Rate, o.Before)
	var urls []string
	for _, rc := range fleet {
		urls = append(urls, rc.base+"/http/"+fx.HTTPTool+"/echo")
	}
	ld := startDrillLoad(ctx, gw, urls, canaries, o.Rate)
	time.Sleep(o.Before)

	reason := fmt.Sprintf("drill: warden drill %s %s (a fire drill of the kill switch; its canaries are deleted after)", o.Kind, fx.prefix)
	say("%s", map[string]string{DrillKill: "killing " + names[0], DrillLockdown: "locking the fleet down"}[o.Kind])
	if o.Kind == DrillLockdown {
		// Lift the lockdown this drill started — whatever happened, and only that one.
		defer func() {
			ctx := context.WithoutCancel(ctx)
			l, lerr := cn.c.LockdownState(ctx)
			if lerr == nil && l.Active && l.Reason == reason {
				say("lifting the lockdown")
				_, lerr = cn.c.LiftLockdown(ctx, "drill: end of warden drill lockdown "+fx.prefix)
			}
			res.check("lockdown lifted", lerr == nil, "%s", errorText(lerr, "the drill's lockdown is lifted"))
		}()
	}
	res.AdminRoundTripMS = roundTrip(ctx, cn.c)
	snapshotSandboxes(canaries, &res.Sandbox)
	t0 := time.Now()
	ld.killStarted.Store(t0.UnixNano())
	var report *apitype.KillReport
	if o.Kind == DrillKill {
		report, err = cn.c.Kill(ctx, names[0], apitype.KillRequest{Reason: reason})
	} else {
		report, err = cn.c.Lockdown(ctx, apitype.LockdownRequest{Reason: reason})
	}
	t1 := time.Now()
	ld.killReturned.Store(t1.UnixNano())
	if err != nil {
		ld.stop()
		return res, fmt.Errorf("the %s failed: %w", o.Kind, err)
	}
	res.Report = report
	res.KillReturnMS = ms(t1.Sub(t0))
	res.ServerElapsedMS = report.ElapsedMS
	time.Sleep(o.After)
	ld.stop()

	res.CallsOKBefore, res.CallsAfter, res.SucceededAfter = ld.okBefore.Load(), ld.after.Load(), ld.succeededAfter.Load()
	res.CallsFailedBefore = ld.failedBefore.Load()
	// Without calls that succeeded before, "none after" would prove nothing.
	res.check("load before the "+o.Kind, res.CallsOKBefore > 0, "%d calls ended before it was sent: %d succeeded, %d failed (%s)",
		res.CallsOKBefore+res.CallsFailedBefore, res.CallsOKBefore, res.CallsFailedBefore, ld.firstErr())

	say("checking cancellation, streams, the audit log")
	waitCtx, cancel = context.WithTimeout(ctx, 5*time.Second)
	_ = up.blocks.wait(waitCtx, func(_, cancelled map[string]time.Time) bool {
		for _, id := range ids {
			if _, ok := cancelled[id]; !ok {
				return false
			}
		}
		return true
	})
	cancel()
	var last time.Duration
	lastOn := make([]time.Duration, len(fleet))
	for _, id := range ids {
		k := idReplica[id]
		if res.Replicas != nil {
			res.Replicas[k].InFlight++
		}
		if _, c := up.blocks.times(id); !c.IsZero() {
			res.Cancelled++
			last = max(last, c.Sub(t0))
			lastOn[k] = max(lastOn[k], c.Sub(t0))
			if res.Replicas != nil {
				res.Replicas[k].Cancelled++
			}
		}
	}
	res.LastCancelMS = ms(last)
	res.check("calls in flight cancelled", res.Cancelled == res.InFlight,
		"%d of %d calls in flight were cancelled at the upstream, the last %.1f ms after the %s was sent", res.Cancelled, res.InFlight, res.LastCancelMS, o.Kind)

	for _, c := range canaries {
		for k, rc := range fleet {
			closed := c.streamClosed(ctx, k)
			worked := c.newSessionWorks(ctx, cn.tr.new(2), rc.base+"/mcp", fx.MCPTool+".echo")
			if closed {
				res.StreamsClosed++
			}
			if worked {
				res.SucceededAfter++
			}
			if res.Replicas != nil {
				res.Replicas[k].Streams++
				if closed {
					res.Replicas[k].StreamsClosed++
				}
				if worked {
					res.Replicas[k].SucceededAfter++
				}
			}
		}
	}
	res.check("MCP streams closed", res.StreamsClosed == res.Streams, "%d of %d open MCP sessions closed", res.StreamsClosed, res.Streams)
	res.check("no call succeeded after it returned", res.SucceededAfter == 0,
		"%d of %d calls sent after the %s returned succeeded (and a new MCP session was tried for each canary)", res.SucceededAfter, res.CallsAfter, o.Kind)

	allowedBy, err := allowedAfter(ctx, cn.c, names, t1)
	if err != nil {
		return res, err
	}
	allowed := 0
	for _, n := range allowedBy {
		allowed += n
	}
	res.AllowedAfter = allowed
	if res.Replicas != nil {
		checkReplicas(res, report, ld, allowedBy, lastOn)
	}
	res.check("no call allowed after it returned", allowed == 0, "%d allow decisions in the audit log are timed after the %s returned", allowed, o.Kind)
	recorded, err := recordedWithReason(ctx, cn.c, o.Kind, names[0], reason)
	if err != nil {
		return res, err
	}
	res.check("recorded as a drill", recorded, "the audit log has the %s with the reason %q", o.Kind, truncate(reason, 40))

	finishSandboxes(canaries, report, &res.Sandbox, say)
	if res.Sandbox.Available {
		res.check("sandbox processes left", res.Sandbox.Left == 0, "%d of %d sandbox processes still running 5 s after the %s", res.Sandbox.Left, res.Sandbox.Started, o.Kind)
	}

	if o.Restart {
		say("restarting the server")
		r := &RestartResult{}
		res.Restart = r
		cn.tr.closeIdle()
		if err := cn.self.Restart(ctx); err != nil {
			return res, fmt.Errorf("restarting the server: %w", err)
		}
		old := canaries[0].tokens[0]
		resp, _, _ := httpCall(ctx, gw, http.MethodGet, cn.c.base+"/http/"+fx.HTTPTool+"/echo", nil, old)
		if resp != nil {
			r.Status = resp.StatusCode
		}
		resp, _, _ = httpCall(ctx, gw, http.MethodGet, cn.c.base+"/v1/agent/self", nil, old)
		if resp != nil {
			r.Self = resp.StatusCode
		}
		if o.Kind == DrillKill {
			r.Refused = r.Status == http.StatusUnauthorized && r.Self == http.StatusUnauthorized
			res.check("token refused after restart", r.Refused, "a token from before the kill: gateway %d, /v1/agent/self %d (want 401)", r.Status, r.Self)
		} else {
			r.Refused = r.Status == http.StatusForbidden
			res.check("calls refused after restart", r.Refused, "a call with a token from before the lockdown: %d (want 403, the lockdown survives)", r.Status)
		}
	}

	res.Targets = []Check{
		{Name: o.Kind + " returns", Passed: res.KillReturnMS <= ms(TargetKillReturn), Detail: fmt.Sprintf("%.1f ms (target ≤ %d ms)", res.KillReturnMS, TargetKillReturn.Milliseconds())},
		{Name: "in-flight calls cancelled", Passed: res.Cancelled == res.InFlight && res.LastCancelMS <= ms(TargetCancel), Detail: fmt.Sprintf("%.1f ms (target ≤ %d ms)", res.LastCancelMS, TargetCancel.Milliseconds())},
	}
	if res.Replicas != nil {
		res.Targets[0] = Check{Name: o.Kind + " returns, every replica acknowledged", Passed: res.KillReturnMS <= ms(TargetFleetKillReturn),
			Detail: fmt.Sprintf("%.1f ms (target ≤ %d ms with %d replicas)", res.KillReturnMS, TargetFleetKillReturn.Milliseconds(), len(res.Replicas))}
	}
	return res, nil
}

// TargetFleetKillReturn is the target of a kill over several replicas (issue 14): it returns
// when every live replica has acknowledged it.
const TargetFleetKillReturn = 100 * time.Millisecond

// identifyReplicas waits until an echo call of the first canary passes each replica (they learn
// of the canaries, tools and policy from the store), and reads each replica's id from the audit
// event of that call, found by its trace id.
func identifyReplicas(ctx context.Context, fleet []*client, gw *http.Client, fx *fixture, c *canary) ([]ReplicaResult, error) {
	out := make([]ReplicaResult, len(fleet))
	for k, rc := range fleet {
		out[k].URL = rc.base
		trace := traceID()
		deadline := time.Now().Add(15 * time.Second)
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.base+"/http/"+fx.HTTPTool+"/echo", nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+c.tokens[0].current())
			req.Header.Set("Traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
			resp, err := gw.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("replica %s did not let the canary call within 15 s of its creation (does it share the store and public_url of %s?)", rc.base, fleet[0].base)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		evs, err := fleet[0].events(ctx, url.Values{"type": {warden.EventToolCall}, "agent": {c.Name}, "since": {"1h"}})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.TraceID == trace {
				out[k].ID = ev.Actor.Replica
			}
		}
		if out[k].ID == "" {
			return nil, fmt.Errorf("the audit log has no event of the canary's call through %s", rc.base)
		}
		if slices.ContainsFunc(out[:k], func(r ReplicaResult) bool { return r.ID == out[k].ID }) {
			return nil, fmt.Errorf("%s and another of --replicas are the same replica (%s): name each replica once, not a load balancer", rc.base, out[k].ID)
		}
	}
	return out, nil
}

// checkReplicas fills in each replica's row and checks the guarantees on each: it acknowledged
// the kill (the replica that heard it answers for itself), allowed nothing after it returned,
// cancelled its calls in flight and closed its MCP sessions.
func checkReplicas(res *DrillResult, report *apitype.KillReport, ld *drillLoad, allowedBy map[string]int, lastOn []time.Duration) {
	for k := range res.Replicas {
		r := &res.Replicas[k]
		r.CallsAfter = ld.afterOn[k].Load()
		r.SucceededAfter += ld.succeededAfterOn[k].Load()
		r.AllowedAfter = allowedBy[r.ID]
		r.LastCancelMS = ms(lastOn[k])
		i := slices.IndexFunc(report.Replicas, func(a apitype.ReplicaAck) bool { return a.ID == r.ID })
		if i >= 0 {
			r.Acked, r.AckedMS = report.Replicas[i].Acked, report.Replicas[i].AckedMS
		}
		if k > 0 || i >= 0 {
			res.check(r.ID+": acknowledged", r.Acked, "the report %s", map[bool]string{true: fmt.Sprintf("has its acknowledgement, %.1f ms after publishing", r.AckedMS), false: "does not name it as having acknowledged"}[r.Acked])
		}
		res.check(r.ID+": nothing allowed after", r.AllowedAfter == 0 && r.SucceededAfter == 0,
			"%d allow decisions recorded by it after the %s returned; %d of %d calls sent to it after succeeded", r.AllowedAfter, res.Drill, r.SucceededAfter, r.CallsAfter)
		res.check(r.ID+": calls in flight cancelled", r.Cancelled == r.InFlight, "%d of %d, the last %.1f ms after the %s was sent", r.Cancelled, r.InFlight, r.LastCancelMS, res.Drill)
		res.check(r.ID+": MCP sessions closed", r.StreamsClosed == r.Streams, "%d of %d", r.StreamsClosed, r.Streams)
	}
}

// tokens gets n tokens for an agent, eight requests at a time.
func tokens(ctx context.Context, c *client, a *fixtureAgent, n int) ([]*tokenSource, error) {
	out := make([]*tokenSource, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = newTokenSource(ctx, c, a.ClientID, a.Secret)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// roundTrip is the median time of a trivial admin API request (GET /v1/lockdown): the baseline
// the kill's return is set beside.
func roundTrip(ctx context.Context, c *client) float64 {
	var lat []time.Duration
	for range 7 {
		t0 := time.Now()
		if _, err := c.LockdownState(ctx); err != nil {
			return 0
		}
		lat = append(lat, time.Since(t0))
	}
	return percentiles(lat).P50
}

// allowedAfter counts the canaries' allow decisions timed after t, by the replica that made them.
func allowedAfter(ctx context.Context, c *client, names []string, t time.Time) (map[string]int, error) {
	n := map[string]int{}
	for _, name := range names {
		evs, err := c.events(ctx, url.Values{"type": {warden.EventToolCall}, "agent": {name}, "decision": {warden.EffectAllow},
			"since": {t.Add(-time.Second).UTC().Format(time.RFC3339Nano)}})
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Time.After(t) {
				n[ev.Actor.Replica]++
			}
		}
	}
	return n, nil
}

// recordedWithReason says whether the audit log has the kill of agent (or the lockdown) with
// the drill's reason.
func recordedWithReason(ctx context.Context, c *client, kind, agent, reason string) (bool, error) {
	typ, resource := warden.EventKillAgent, "agent:"+agent
	if kind == DrillLockdown {
		typ, resource = warden.EventLockdown, "lockdown"
	}
	evs, err := c.events(ctx, url.Values{"type": {typ}, "since": {"1h"}})
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(evs, func(ev *warden.AuditEvent) bool {
		return ev.Target.Resource == resource && strings.HasPrefix(ev.Decision.Message, reason)
	}), nil
}

// streamClosed says whether the canary's k-th MCP session ended: its call in flight returned and
// the session no longer answers.
func (c *canary) streamClosed(ctx context.Context, k int) bool {
	select {
	case <-c.mcpDone[k]:
	case <-time.After(5 * time.Second):
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := c.sessions[k].ListTools(ctx, nil)
	return err != nil
}

// newSessionWorks tries what an agent would after a kill: a new MCP session and a call.
func (c *canary) newSessionWorks(ctx context.Context, tr *http.Transport, endpoint, tool string) bool {
	cs, err := mcpConnect(ctx, endpoint, c.tokens[0], tr)
	if err != nil {
		return false
	}
	defer cs.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": "after"}})
	return err == nil && !res.IsError
}

func (c *canary) release() {
	for _, cs := range c.sessions {
		_ = cs.Close()
	}
	if c.sandbox != nil {
		killTree(c.sandbox.Process.Pid)
		select {
		case <-c.sbDone:
		case <-time.After(5 * time.Second):
		}
	}
	if c.workspace != "" {
		os.RemoveAll(c.workspace)
	}
}

// drillLoad is steady load through the HTTP gateway, open loop, spread over every token of
// every canary; it counts what succeeded before the kill returned and after.
type drillLoad struct {
	killStarted, killReturned     atomic.Int64 // unix nanos, 0 until the kill was sent, and returned
	okBefore, failedBefore, after atomic.Int64
	succeededAfter                atomic.Int64
	afterOn, succeededAfterOn     []atomic.Int64 // by replica
	errBefore                     atomic.Pointer[string]
	done                          chan struct{}
	wg                            sync.WaitGroup
}

// startDrillLoad spreads the calls over urls, one echo URL per replica.
func startDrillLoad(ctx context.Context, hc *http.Client, urls []string, canaries []*canary, rate float64) *drillLoad {
	ld := &drillLoad{done: make(chan struct{}), afterOn: make([]atomic.Int64, len(urls)), succeededAfterOn: make([]atomic.Int64, len(urls))}
	var tokens []*tokenSource
	for _, c := range canaries {
		tokens = append(tokens, c.tokens...)
	}
	sem := make(chan struct{}, 256)
	ld.wg.Add(1)
	go func() {
		defer ld.wg.Done()
		start := time.Now()
		interval := time.Duration(float64(time.Second) / rate)
		for i := 0; ; i++ {
			select {
			case <-ld.done:
				return
			case <-time.After(time.Until(start.Add(time.Duration(i) * interval))):
			}
			select {
			case sem <- struct{}{}:
			default:
				continue // 256 calls outstanding: the server is not keeping up; skip rather than pile on
			}
			ld.wg.Add(1)
			go func() {
				defer ld.wg.Done()
				defer func() { <-sem }()
				sent := time.Now().UnixNano()
				k := i % len(urls)
				_, _, err := httpCall(context.WithoutCancel(ctx), hc, http.MethodGet, urls[k], nil, tokens[i%len(tokens)])
				ended := time.Now().UnixNano()
				started, returned := ld.killStarted.Load(), ld.killReturned.Load()
				switch {
				case returned != 0 && sent > returned:
					ld.after.Add(1)
					ld.afterOn[k].Add(1)
					if err == nil {
						ld.succeededAfter.Add(1)
						ld.succeededAfterOn[k].Add(1)
					}
				case (started == 0 || ended < started) && err == nil:
					ld.okBefore.Add(1)
				case started == 0 || ended < started:
					ld.failedBefore.Add(1)
					msg := err.Error()
					ld.errBefore.CompareAndSwap(nil, &msg)
				}
				// A call in flight across the kill may end either way.
			}()
		}
	}()
	return ld
}

func (ld *drillLoad) stop() {
	select {
	case <-ld.done:
	default:
		close(ld.done)
	}
	ld.wg.Wait()
}

func (ld *drillLoad) firstErr() string {
	if p := ld.errBefore.Load(); p != nil {
		return "first failure: " + truncate(*p, 200)
	}
	return "none failed"
}

func errorText(err error, ok string) string {
	if err != nil {
		return warden.ErrorMessage(err)
	}
	return ok
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// startSandboxes starts `warden run` for each canary when a starter is given, and waits until
// each has registered with the server and its sandbox runs.
func startSandboxes(ctx context.Context, cn *connection, canaries []*canary, o DrillOptions, r *SandboxResult, say func(string, ...any)) error {
	if o.Sandbox == nil {
		r.Note = o.SandboxNote
		if r.Note == "" {
			r.Note = "not available"
		}
		return nil
	}
	r.Available = true
	say("starting a sandbox per canary (warden run -- sleep 600)")
	for _, c := range canaries {
		ws, err := os.MkdirTemp("", "warden-drill-")
		if err != nil {
			return err
		}
		c.workspace = ws
		cmd, err := o.Sandbox(ctx, SandboxSpec{Addr: cn.c.base, Agent: c.Name, ClientID: c.ClientID, ClientSecret: c.Secret, Workspace: ws, Command: []string{"sleep", "600"}})
		if err != nil {
			return fmt.Errorf("starting warden run for %s: %w", c.Name, err)
		}
		c.sandbox, c.sbDone = cmd, make(chan error, 1)
		r.Runners++
		go func() { c.sbDone <- cmd.Wait() }()
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range canaries {
		for {
			runners, err := cn.c.Runners(ctx)
			if err != nil {
				return err
			}
			if slices.ContainsFunc(runners, func(run apitype.RunnerInfo) bool { return run.Agent == c.Name && run.Connected }) {
				break
			}
			select {
			case err := <-c.sbDone:
				return fmt.Errorf("warden run for %s exited before its sandbox registered with the server: %v", c.Name, err)
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return errors.New("the sandboxes did not register with the server within 20 s")
			}
		}
	}
	return nil
}

// snapshotSandboxes records the sandbox processes running just before the kill.
func snapshotSandboxes(canaries []*canary, r *SandboxResult) {
	if !r.Available {
		return
	}
	for _, c := range canaries {
		c.pids = descendants(c.sandbox.Process.Pid)
		r.Started += len(c.pids)
	}
}

// finishSandboxes waits up to 5 s for every sandbox process to end after the kill and counts
// what is left; the drill then kills what is left (it started them).
func finishSandboxes(canaries []*canary, report *apitype.KillReport, r *SandboxResult, say func(string, ...any)) {
	if !r.Available {
		return
	}
	say("waiting for the sandboxes to end")
	if report != nil {
		r.Stopped = report.SandboxesStopped
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.PIDsLeft = r.PIDsLeft[:0]
		for _, c := range canaries {
			for _, pid := range append(c.pids, descendants(c.sandbox.Process.Pid)...) {
				if alive(pid) && !slices.Contains(r.PIDsLeft, pid) {
					r.PIDsLeft = append(r.PIDsLeft, pid)
				}
			}
		}
		if len(r.PIDsLeft) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Left = len(r.PIDsLeft)
	for _, c := range canaries {
		select {
		case <-c.sbDone:
			r.Exited++
			c.sandbox = nil
		default:
		}
	}
}

// traceID returns a new W3C trace id: 32 hex digits.
func traceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
