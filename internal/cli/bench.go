package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/wardenhq/warden/internal/bench"
)

var benchCommands = []command{
	{"bench", "[--self [--store URL] [--audit-sink on|off]] [--path mcp|http|authorize] [--rate N] [--duration D] [--concurrency N] [--policies N] [--budgets on|off]",
		"measure the latency warden adds and its throughput, against a direct call and a plain reverse proxy", benchCmd},
	{"drill kill", "[--self [--store URL] [--restart] | --replicas URL1,URL2,…] [--rate N] [--sessions N]",
		"fire drill: kill a canary agent under load and check every guarantee of the kill switch", drillKill},
	{"drill lockdown", "[--agents N] [--self [--store URL] [--restart] | --yes] [--rate N] [--sessions N]",
		"fire drill: lock the fleet down with N canaries under load, check every guarantee, lift it", drillLockdown},
}

// onOff is a flag that reads on or off.
type onOff bool

func (b *onOff) String() string {
	if *b {
		return "on"
	}
	return "off"
}

func (b *onOff) Set(s string) error {
	switch s {
	case "on", "true":
		*b = true
	case "off", "false":
		*b = false
	default:
		return fmt.Errorf("%q: use on or off", s)
	}
	return nil
}

// serverFlags are how bench and drill name their server: a running one (--addr and the admin
// token, as every client command) or --self, one they start in this process.
type serverFlags struct {
	self      bool
	store     string
	auditSink onOff
}

// syncWriter serialises writes: the progress line, the in-process server's log and the
// sandboxes' output all go to stderr from their own goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// stderr is the invocation's stderr, made safe for concurrent writers once per invocation.
func (inv *invocation) stderr() io.Writer {
	if _, ok := inv.env.Stderr.(*syncWriter); !ok {
		inv.env.Stderr = &syncWriter{w: inv.env.Stderr}
	}
	return inv.env.Stderr
}

func (inv *invocation) serverFlags(withSink bool) *serverFlags {
	sf := &serverFlags{}
	inv.clientFlags()
	inv.fs.BoolVar(&sf.self, "self", false, "start a server in this process on a temporary SQLite (or --store) instead of using a running one")
	inv.fs.StringVar(&sf.store, "store", "", "with --self: a postgres:// URL to run on instead of SQLite")
	if withSink {
		inv.fs.Var(&sf.auditSink, "audit-sink", "with --self: ship the audit log to a file sink (on|off)")
	}
	return sf
}

func (inv *invocation) serverOptions(sf *serverFlags) (bench.ServerOptions, error) {
	if sf.self {
		if inv.addr != "" {
			return bench.ServerOptions{}, usagef("--self and --addr exclude each other")
		}
		if sf.store != "" && !strings.HasPrefix(sf.store, "postgres://") && !strings.HasPrefix(sf.store, "postgresql://") {
			return bench.ServerOptions{}, usagef("--store: want a postgres:// URL (SQLite is the default)")
		}
		return bench.ServerOptions{Self: &bench.SelfOptions{Store: sf.store, AuditSink: bool(sf.auditSink), Getenv: inv.getenv, Log: inv.stderr()}}, nil
	}
	if sf.store != "" || sf.auditSink {
		return bench.ServerOptions{}, usagef("--store and --audit-sink configure the server, so they need --self; a running server has its own configuration")
	}
	token, err := inv.adminToken()
	if err != nil {
		return bench.ServerOptions{}, err
	}
	return bench.ServerOptions{Addr: strings.TrimSuffix(inv.serverAddr(), "/"), Token: token}, nil
}

func benchCmd(ctx context.Context, inv *invocation) error {
	sf := inv.serverFlags(true)
	o := bench.Options{Progress: inv.stderr()}
	var budgets onOff
	inv.fs.StringVar(&o.Path, "path", bench.PathMCP, "the entry point to drive: mcp (/mcp), http (/http/<tool>/…) or authorize (/v1/authorize)")
	inv.fs.Float64Var(&o.Rate, "rate", 0, "calls a second to each target, open loop; 0 drives them flat out")
	inv.fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per target (warden, direct, reverse proxy)")
	inv.fs.IntVar(&o.Concurrency, "concurrency", 8, "concurrent callers per target")
	inv.fs.IntVar(&o.Policies, "policies", 1, "policies in the run's own file (1 to 10000): its agent's grant and the rest for agents that do not exist; the server's own policies stay in force beside them")
	inv.fs.Var(&budgets, "budgets", "budgets on the agent and its tools, checked and consumed on every call (on|off)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	o.Budgets = bool(budgets)
	var err error
	if o.Server, err = inv.serverOptions(sf); err != nil {
		return err
	}
	res, err := bench.Run(ctx, o)
	if res != nil && res.Cleanup != nil && !res.Cleanup.OK() {
		fmt.Fprintf(inv.env.Stderr, "warden: cleanup incomplete: left %s; errors: %s\n", strings.Join(res.Cleanup.Left, ", "), strings.Join(res.Cleanup.Errors, "; "))
	}
	if err != nil {
		return err
	}
	if err := inv.print(res, func(w io.Writer) { printBench(w, res) }); err != nil {
		return err
	}
	if !res.Cleanup.OK() {
		return fmt.Errorf("the benchmark ran, but its cleanup left %s", strings.Join(append(res.Cleanup.Left, res.Cleanup.Errors...), ", "))
	}
	return nil
}

func printBench(w io.Writer, r *bench.Result) {
	mode := "flat out"
	if r.Mode == "rate" {
		mode = fmt.Sprintf("%g calls/s", r.Rate)
	}
	store := r.Scenario.Store
	if r.Scenario.Self {
		store += ", in-process server"
	}
	fmt.Fprintf(w, "warden bench: path %s, %s, %d concurrent, %gs per target\n", r.Path, mode, r.Concurrency, r.Duration)
	kv(w, "scenario", fmt.Sprintf("policies %d, budgets %s, audit sink %s, store %s", r.Scenario.Policies, onOffText(r.Scenario.Budgets), onOffText(r.Scenario.AuditSink), store),
		"machine", fmt.Sprintf("%d CPUs (%s), %s, kernel %s, load %s", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.OS, r.Machine.Kernel, r.Machine.LoadAvg),
		"started", fmtTime(r.Started))
	fmt.Fprintln(w)
	row := func(name string, t bench.TargetResult) []string {
		l := t.LatencyMS
		return []string{name, fmt.Sprint(t.Calls), fmt.Sprintf("%.0f", t.Throughput), msText(l.P50), msText(l.P90), msText(l.P99), msText(l.P999), msText(l.Max), fmt.Sprint(t.Errors)}
	}
	a := r.AddedLatencyMS
	table(w, []string{"TARGET", "CALLS", "CALLS/S", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS", "ERRORS"}, [][]string{
		row("direct", r.Direct),
		row("reverse proxy", r.Proxy),
		row("warden", r.Warden),
		{"added by warden", "", "", signed(a.P50), signed(a.P90), signed(a.P99), signed(a.P999), signed(a.Max), ""},
	})
	fmt.Fprintln(w)
	ratio := fmt.Sprintf("%.2f", r.ThroughputRatio)
	if r.Mode == "rate" {
		ratio += " (at a fixed rate both keep up; drive them flat out, --rate 0, to compare peak throughput)"
	}
	kv(w, "throughput warden / reverse proxy", ratio)
	if r.Warden.FirstError != "" {
		kv(w, "first warden error", r.Warden.FirstError)
	}
	printCleanup(w, r.Cleanup)
}

func printCleanup(w io.Writer, c *bench.Cleanup) {
	if c == nil {
		return
	}
	state := "removed " + strings.Join(c.Removed, ", ")
	if c.OK() {
		state += "; nothing left"
	} else {
		state += "; LEFT " + strings.Join(append(c.Left, c.Errors...), ", ")
	}
	kv(w, "cleanup", state)
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func msText(v float64) string { return fmt.Sprintf("%.3f", v) }

func signed(v float64) string { return fmt.Sprintf("%+.3f", v) }

func drillKill(ctx context.Context, inv *invocation) error {
	return drill(ctx, inv, bench.DrillKill)
}

func drillLockdown(ctx context.Context, inv *invocation) error {
	return drill(ctx, inv, bench.DrillLockdown)
}

func drill(ctx context.Context, inv *invocation, kind string) error {
	sf := inv.serverFlags(false)
	o := bench.DrillOptions{Kind: kind, Agents: 1, Progress: inv.stderr()}
	var sandbox bool
	inv.fs.Float64Var(&o.Rate, "rate", 200, "steady calls a second through the HTTP gateway while the drill runs")
	inv.fs.IntVar(&o.Sessions, "sessions", 10, "live sessions (tokens) per canary")
	what := "kill"
	if kind == bench.DrillLockdown {
		what = "lockdown"
	}
	inv.fs.DurationVar(&o.Before, "before", time.Second, "load before the "+what)
	inv.fs.DurationVar(&o.After, "after", time.Second, "load after the "+what+" returned, to catch a call let through late")
	inv.fs.BoolVar(&o.Restart, "restart", false, "with --self: restart the server after the kill and check the canary's token is still refused")
	inv.fs.BoolVar(&sandbox, "sandbox", true, "run a sandbox ('warden run -- sleep 600') per canary where this machine can")
	var replicas string
	inv.fs.StringVar(&replicas, "replicas", "", "the URLs of every replica of a fleet, comma-separated: the canaries' sessions and load are spread over them, the "+what+" is sent through the first, every guarantee is checked on each")
	if kind == bench.DrillLockdown {
		o.Agents = 3
		inv.fs.IntVar(&o.Agents, "agents", 3, "canary agents")
		inv.fs.BoolVar(&o.Confirm, "yes", false, "against a running server: lock the whole fleet down for the drill's few seconds")
	}
	if _, err := inv.parse(); err != nil {
		return err
	}
	var err error
	if o.Server, err = inv.serverOptions(sf); err != nil {
		return err
	}
	if replicas != "" {
		if o.Server.Self != nil {
			return usagef("--replicas names running servers; it excludes --self")
		}
		for _, r := range strings.Split(replicas, ",") {
			o.Replicas = append(o.Replicas, strings.TrimSuffix(strings.TrimSpace(r), "/"))
		}
		if len(o.Replicas) < 2 || slices.Contains(o.Replicas, "") {
			return usagef("--replicas: want two or more URLs separated by commas, e.g. http://127.0.0.1:8801,http://127.0.0.1:8802")
		}
		if inv.addr != "" && strings.TrimSuffix(inv.addr, "/") != o.Replicas[0] {
			return usagef("--replicas: the %s is sent through the first replica; leave --addr out or make it the first", what)
		}
		o.Server.Addr = o.Replicas[0]
	}
	switch {
	case !sandbox:
		o.SandboxNote = "not run (--sandbox=false)"
	case !HasCommand("run"):
		o.SandboxNote = "not available: this warden has no `warden run`"
	default:
		o.Sandbox = sandboxStarter(inv.stderr())
	}
	res, err := bench.Drill(ctx, o)
	if err != nil {
		if res != nil && res.Cleanup != nil && !res.Cleanup.OK() {
			fmt.Fprintf(inv.env.Stderr, "warden: cleanup incomplete: left %s; errors: %s\n", strings.Join(res.Cleanup.Left, ", "), strings.Join(res.Cleanup.Errors, "; "))
		}
		return err
	}
	if err := inv.print(res, func(w io.Writer) { printDrill(w, res) }); err != nil {
		return err
	}
	if failed := res.Failed(); len(failed) > 0 {
		return fmt.Errorf("drill %s FAILED: %s", res.ID, strings.Join(failed, ", "))
	}
	return nil
}

func printDrill(w io.Writer, r *bench.DrillResult) {
	verdict := "PASSED: every guarantee held"
	if failed := r.Failed(); len(failed) > 0 {
		verdict = "FAILED: " + strings.Join(failed, ", ")
	}
	fmt.Fprintf(w, "warden drill %s %s: %s\n\n", r.Drill, r.ID, verdict)
	what := map[string]string{bench.DrillKill: "kill", bench.DrillLockdown: "lockdown"}[r.Drill]
	stream := fmt.Sprintf("%s (%d of %d)", yesNo(r.StreamsClosed == r.Streams), r.StreamsClosed, r.Streams)
	sandbox := r.Sandbox.Note
	if r.Sandbox.Available {
		sandbox = fmt.Sprintf("%d processes left of %d (%d runners, %d exited, %d told to stop)", r.Sandbox.Left, r.Sandbox.Started, r.Sandbox.Runners, r.Sandbox.Exited, r.Sandbox.Stopped)
	}
	restart := "not tested (--restart with --self)"
	if r.Restart != nil {
		restart = fmt.Sprintf("%s (gateway %d, /v1/agent/self %d)", yesNo(r.Restart.Refused), r.Restart.Status, r.Restart.Self)
		if r.Drill == bench.DrillLockdown {
			restart = fmt.Sprintf("%s (gateway %d: the lockdown survived)", yesNo(r.Restart.Refused), r.Restart.Status)
		}
	}
	kv(w,
		"canaries", strings.Join(r.Canaries, ", "),
		"load", fmt.Sprintf("%g calls/s over %d sessions per canary; %d succeeded before the %s", r.Rate, r.Sessions, r.CallsOKBefore, what),
		what+" returned in", fmt.Sprintf("%.1f ms (server %.1f ms; a trivial admin request %.1f ms; target ≤ %d ms)", r.KillReturnMS, r.ServerElapsedMS, r.AdminRoundTripMS, bench.TargetKillReturn.Milliseconds()),
		"last in-flight call cancelled", fmt.Sprintf("%.1f ms after the %s was sent (%d of %d cancelled; target ≤ %d ms)", r.LastCancelMS, what, r.Cancelled, r.InFlight, bench.TargetCancel.Milliseconds()),
		"calls allowed after it returned", fmt.Sprintf("%d (audit log)", r.AllowedAfter),
		"calls succeeded after it", fmt.Sprintf("%d of %d sent", r.SucceededAfter, r.CallsAfter),
		"stream closed", stream,
		"sandbox", sandbox,
		"refused after restart", restart,
		"machine", fmt.Sprintf("%d CPUs, load %s", r.Machine.CPUs, r.Machine.LoadAvg),
	)
	if len(r.Replicas) > 0 {
		fmt.Fprintln(w, "\nReplicas:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tURL\tACKED\tCANCELLED\tLAST CANCEL\tSESSIONS CLOSED\tSUCCEEDED AFTER\tALLOWED AFTER")
		for _, p := range r.Replicas {
			acked := "no"
			if p.Acked {
				acked = fmt.Sprintf("%.1f ms", p.AckedMS)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d of %d\t%.1f ms\t%d of %d\t%d of %d\t%d\n", p.ID, p.URL, acked, p.Cancelled, p.InFlight, p.LastCancelMS, p.StreamsClosed, p.Streams, p.SucceededAfter, p.CallsAfter, p.AllowedAfter)
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "\nGuarantees:")
	for _, c := range r.Checks {
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %-38s %s\n", mark, c.Name, c.Detail)
	}
	fmt.Fprintln(w, "Targets (reported, not failed):")
	for _, c := range r.Targets {
		mark := "met "
		if !c.Passed {
			mark = "over"
		}
		fmt.Fprintf(w, "  %s  %-38s %s\n", mark, c.Name, c.Detail)
	}
	fmt.Fprintln(w)
	printCleanup(w, r.Cleanup)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// HasCommand says whether this warden has the named command ("run").
func HasCommand(name string) bool {
	for _, c := range commands {
		if c.name == name {
			return true
		}
	}
	return false
}

// sandboxStarter runs `warden run --agent NAME -- CMD` as the canary when this warden has the
// run command, with the canary's credentials in the environment and nothing else of ours: the
// admin token must not reach a sandbox.
func sandboxStarter(stderr io.Writer) bench.SandboxStarter {
	return func(ctx context.Context, s bench.SandboxSpec) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, append([]string{"run", "--agent", s.Agent, "--workspace", s.Workspace, "--"}, s.Command...)...)
		cmd.Dir = s.Workspace
		cmd.Env = []string{"WARDEN_ADDR=" + s.Addr, "WARDEN_CLIENT_ID=" + s.ClientID, "WARDEN_CLIENT_SECRET=" + s.ClientSecret}
		for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
			if v, ok := os.LookupEnv(k); ok {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		cmd.Stdout, cmd.Stderr = stderr, stderr
		return cmd, cmd.Start()
	}
}
