package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/bench"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/sandbox"
)

// TestMain lets the drill start sandboxes: it runs `os.Executable() run …`, which here is this
// test binary, and the sandbox re-executes it as its init.
func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if len(os.Args) > 1 && os.Args[1] == "run" {
		os.Exit(cli.ExitCode(cli.Run(context.Background(), os.Args[1:], cli.OSEnv())))
	}
	os.Exit(m.Run())
}

// server starts a warden in this process for a test, with a people-written policy in force so
// that the tests can see it restored.
func server(t *testing.T) *bench.Self {
	t.Helper()
	s, err := bench.StartSelf(context.Background(), bench.SelfOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	p := &warden.Principal{Name: "test", Role: warden.RoleAdmin}
	if _, err := s.Server().Admin.ApplyPolicies(context.Background(), p, admin.PolicyApply{Files: map[string]string{
		"people.cedar": `forbid(principal == Agent::"nobody", action, resource);`,
	}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// warden runs the CLI against s (or, with s nil, with no server: --self) and returns stdout and
// stderr.
func run(t *testing.T, s *bench.Self, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
		if s == nil {
			return ""
		}
		return map[string]string{"WARDEN_ADDR": s.URL, "WARDEN_TOKEN": s.Token}[k]
	}}
	err := cli.Run(context.Background(), args, env)
	return stdout.String(), stderr.String(), err
}

func runJSON(t *testing.T, s *bench.Self, out any, args ...string) {
	t.Helper()
	stdout, stderr, err := run(t, s, append(args, "--json")...)
	if err != nil {
		t.Fatalf("warden %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("warden %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, stdout)
	}
}

// leftovers lists the agents and tools of bench and drill runs, and the policy files, on s.
func leftovers(t *testing.T, s *bench.Self) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	agents, err := s.Server().Admin.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		left = append(left, "agent "+a.Name)
	}
	tools, err := s.Server().Admin.Tools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range tools {
		left = append(left, "tool "+tl.Name)
	}
	ps, err := s.Server().Admin.PolicySet(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range ps.Files {
		if name != "people.cedar" || !strings.Contains(text, `Agent::"nobody"`) {
			left = append(left, "policy file "+name)
		}
	}
	if len(ps.Files) != 1 {
		left = append(left, "policy files: "+strings.Join(slices.Sorted(mapsKeys(ps.Files)), ", "))
	}
	return left
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func checkLatency(t *testing.T, what string, l bench.Latency) {
	t.Helper()
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: percentiles are not ordered or not positive: %+v", what, l)
	}
}

func checkBench(t *testing.T, r *bench.Result, path string) {
	t.Helper()
	if r.Path != path || r.Mode != "rate" || r.Rate != 50 {
		t.Errorf("result names path %q mode %q rate %g", r.Path, r.Mode, r.Rate)
	}
	for name, tr := range map[string]bench.TargetResult{"warden": r.Warden, "direct": r.Direct, "reverse proxy": r.Proxy} {
		// 50 calls/s for 0.6 s: 30 calls, and no fewer than half of that on a busy machine.
		if tr.Calls < 15 || tr.Errors != 0 || tr.Throughput <= 0 {
			t.Errorf("%s: %d calls, %d errors (%s), %.1f calls/s", name, tr.Calls, tr.Errors, tr.FirstError, tr.Throughput)
		}
		checkLatency(t, name, tr.LatencyMS)
	}
	if r.Warden.LatencyMS.P50 < r.Direct.LatencyMS.P50 {
		t.Errorf("warden's median latency %.3f ms is below the direct call's %.3f ms: warden cannot be faster than what it calls",
			r.Warden.LatencyMS.P50, r.Direct.LatencyMS.P50)
	}
	if got, want := r.AddedLatencyMS.P50, r.Warden.LatencyMS.P50-r.Direct.LatencyMS.P50; got != want {
		t.Errorf("added p50 %.3f, want warden - direct = %.3f", got, want)
	}
	if r.ThroughputRatio <= 0 {
		t.Errorf("throughput ratio %g", r.ThroughputRatio)
	}
	if r.Machine.CPUs < 1 || r.Started.IsZero() {
		t.Errorf("machine %+v, started %v", r.Machine, r.Started)
	}
	if r.Cleanup == nil || !r.Cleanup.OK() || len(r.Cleanup.Removed) < 4 {
		t.Errorf("cleanup: %+v", r.Cleanup)
	}
}

// TestBenchPaths runs warden bench briefly on every path against a running server and checks
// the figures are sane and nothing is left behind.
func TestBenchPaths(t *testing.T) {
	s := server(t)
	for _, path := range []string{bench.PathMCP, bench.PathHTTP, bench.PathAuthorize} {
		t.Run(path, func(t *testing.T) {
			args := []string{"bench", "--path", path, "--rate", "50", "--duration", "600ms", "--concurrency", "2"}
			if path != bench.PathMCP {
				args = append(args, "--policies", "200", "--budgets", "on")
			}
			var r bench.Result
			runJSON(t, s, &r, args...)
			checkBench(t, &r, path)
			if path != bench.PathMCP && (r.Scenario.Policies != 200 || !r.Scenario.Budgets || r.Scenario.Self) {
				t.Errorf("scenario %+v", r.Scenario)
			}
			if left := leftovers(t, s); len(left) > 0 {
				t.Fatalf("bench left behind: %v", left)
			}
		})
	}
}

// TestBenchSelf runs with a server of its own, with the audit sink on, for people.
func TestBenchSelf(t *testing.T) {
	out, stderr, err := run(t, nil, "bench", "--self", "--audit-sink", "on", "--path", "http", "--rate", "50", "--duration", "600ms", "--concurrency", "2")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"path http, 50 calls/s", "audit sink on, store sqlite, in-process server", "direct", "reverse proxy", "added by warden", "nothing left"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	s := server(t)
	for _, args := range [][]string{
		{"bench", "--path", "grpc"},
		{"bench", "--policies", "0"},
		{"bench", "--policies", "10001"},
		{"bench", "--budgets", "maybe"},
		{"bench", "--audit-sink", "on"}, // configures the server: --self only
		{"bench", "--self", "--store", "mysql://x"},
		{"drill", "kill", "--restart"}, // restarts only a server of its own
		{"drill", "lockdown"},          // the whole fleet of a running server: --yes
	} {
		if _, _, err := run(t, s, args...); cli.ExitCode(err) != cli.ExitUsage {
			t.Errorf("warden %s: %v (exit %d), want a usage error", strings.Join(args, " "), err, cli.ExitCode(err))
		}
	}
	if _, _, err := run(t, s, "bench", "--addr", "http://10.1.2.3:8787", "--duration", "1s"); cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a server off loopback: %v", err)
	}
}

// sandboxFlag runs the drill's sandboxes where they can run: as root, like CI and the sandbox's
// own tests.
func sandboxFlag(t *testing.T) string {
	if os.Getuid() != 0 {
		t.Log("not root: the drill runs without sandboxes")
		return "--sandbox=false"
	}
	return "--sandbox=true"
}

func checkDrill(t *testing.T, r *bench.DrillResult, canaries int) {
	t.Helper()
	if !r.Passed || len(r.Failed()) > 0 {
		t.Errorf("drill failed: %v", r.Failed())
	}
	for _, c := range r.Checks {
		if !c.Passed {
			t.Errorf("%s: %s", c.Name, c.Detail)
		}
	}
	if len(r.Canaries) != canaries || r.Streams != canaries || r.StreamsClosed != canaries || r.InFlight != 2*canaries || r.Cancelled != r.InFlight {
		t.Errorf("canaries %v, streams %d closed %d, in flight %d cancelled %d", r.Canaries, r.Streams, r.StreamsClosed, r.InFlight, r.Cancelled)
	}
	if r.AllowedAfter != 0 || r.SucceededAfter != 0 || r.CallsAfter == 0 || r.CallsOKBefore == 0 {
		t.Errorf("allowed after %d, succeeded after %d of %d, ok before %d", r.AllowedAfter, r.SucceededAfter, r.CallsAfter, r.CallsOKBefore)
	}
	if r.KillReturnMS <= 0 || r.LastCancelMS <= 0 || r.Report == nil || len(r.Targets) != 2 {
		t.Errorf("figures: return %.1f ms, cancel %.1f ms, report %+v", r.KillReturnMS, r.LastCancelMS, r.Report)
	}
	t.Logf("%s drill: returned in %.1f ms, last in-flight call cancelled after %.1f ms, sandbox %+v", r.Drill, r.KillReturnMS, r.LastCancelMS, r.Sandbox)
	if r.Sandbox.Available && (r.Sandbox.Started == 0 || r.Sandbox.Left != 0) {
		t.Errorf("sandbox %+v", r.Sandbox)
	}
	for _, name := range r.Canaries {
		if !strings.HasPrefix(name, "drill-") {
			t.Errorf("canary %q is not named as a drill's", name)
		}
	}
	if r.Cleanup == nil || !r.Cleanup.OK() {
		t.Errorf("cleanup %+v", r.Cleanup)
	}
}

func TestDrillKill(t *testing.T) {
	s := server(t)
	var r bench.DrillResult
	runJSON(t, s, &r, "drill", "kill", "--rate", "100", "--sessions", "3", "--before", "500ms", "--after", "500ms", sandboxFlag(t))
	checkDrill(t, &r, 1)
	if r.Restart != nil {
		t.Error("restart tested without --restart")
	}
	if left := leftovers(t, s); len(left) > 0 {
		t.Fatalf("drill left behind: %v", left)
	}
	// The drill's own audit events say it was a drill.
	evs, err := s.Server().Store.AuditEvents(context.Background(), warden.AuditFilter{Type: warden.EventKillAgent})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Target.Resource != "agent:"+r.Canaries[0] || !strings.HasPrefix(evs[0].Decision.Message, "drill: ") {
		t.Fatalf("kill events: %+v", evs)
	}
}

func TestDrillKillRestart(t *testing.T) {
	var r bench.DrillResult
	runJSON(t, nil, &r, "drill", "kill", "--self", "--restart", "--rate", "100", "--sessions", "2", "--before", "500ms", "--after", "500ms", "--sandbox=false")
	checkDrill(t, &r, 1)
	if r.Restart == nil || !r.Restart.Refused || r.Restart.Status != 401 || r.Restart.Self != 401 {
		t.Fatalf("after restart: %+v", r.Restart)
	}
}

func TestDrillLockdown(t *testing.T) {
	s := server(t)
	var r bench.DrillResult
	runJSON(t, s, &r, "drill", "lockdown", "--agents", "3", "--yes", "--rate", "100", "--sessions", "2", "--before", "500ms", "--after", "500ms", sandboxFlag(t))
	checkDrill(t, &r, 3)
	if l := s.Server().Kill.State.Load().Lockdown(); l.Active {
		t.Fatalf("the drill left the lockdown on: %+v", l)
	}
	if left := leftovers(t, s); len(left) > 0 {
		t.Fatalf("drill left behind: %v", left)
	}
	// Someone else's lockdown: the drill refuses rather than lift it.
	p := &warden.Principal{Name: "test", Role: warden.RoleAdmin}
	if _, err := s.Server().Kill.Lockdown(context.Background(), p, "real incident", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, s, "drill", "lockdown", "--yes", "--sandbox=false"); cli.ExitCode(err) != cli.ExitConflict {
		t.Fatalf("a drill during a real lockdown: %v", err)
	}
	if l := s.Server().Kill.State.Load().Lockdown(); !l.Active || l.Reason != "real incident" {
		t.Fatalf("the drill touched someone else's lockdown: %+v", l)
	}
}

// TestDrillVerdict: any guarantee that does not hold, or a cleanup that left something, fails
// the drill.
func TestDrillVerdict(t *testing.T) {
	ok := bench.Check{Name: "no call allowed after it returned", Passed: true}
	for _, c := range []struct {
		r    bench.DrillResult
		fail []string
	}{
		{bench.DrillResult{Checks: []bench.Check{ok}, Cleanup: &bench.Cleanup{}}, nil},
		{bench.DrillResult{Checks: []bench.Check{ok, {Name: "MCP streams closed"}}, Cleanup: &bench.Cleanup{}}, []string{"MCP streams closed"}},
		{bench.DrillResult{Checks: []bench.Check{ok}, Cleanup: &bench.Cleanup{Left: []string{"agent drill-x-canary"}}}, []string{"cleanup"}},
		{bench.DrillResult{Checks: []bench.Check{ok}, Cleanup: &bench.Cleanup{Errors: []string{"boom"}}}, []string{"cleanup"}},
	} {
		if got := c.r.Failed(); !slices.Equal(got, c.fail) {
			t.Errorf("%+v: failed %v, want %v", c.r.Checks, got, c.fail)
		}
	}
}

// TestBenchPostgres runs bench on a PostgreSQL store when WARDEN_TEST_POSTGRES names a server.
func TestBenchPostgres(t *testing.T) {
	dsn := pgtest.Database(t)
	var r bench.Result
	runJSON(t, nil, &r, "bench", "--self", "--store", dsn, "--path", "authorize", "--rate", "50", "--duration", "600ms", "--concurrency", "2")
	checkBench(t, &r, bench.PathAuthorize)
	if r.Scenario.Store != "postgres" {
		t.Fatalf("scenario %+v", r.Scenario)
	}
}
