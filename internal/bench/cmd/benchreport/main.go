// Command benchreport regenerates docs/PERFORMANCE.md (`make bench`): it runs the Go benchmarks
// behind every figure the issues ask for and the `warden bench --self` and `warden drill kill
// --self` scenarios, takes the median of each over -count runs, and writes one table with the
// target, the baseline measured in the same run, the machine, the command and the date.
//
// A figure it cannot find (a benchmark renamed, failed or gone) is written as missing and the
// command exits 1: the table never silently loses a row.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type options struct {
	out      string
	count    int
	goBin    string
	duration time.Duration // per target, per warden bench run
	quick    bool
}

func run(ctx context.Context, args []string, log io.Writer) error {
	var o options
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.StringVar(&o.out, "o", "docs/PERFORMANCE.md", "file to write")
	fs.IntVar(&o.count, "count", 5, "runs of each benchmark and scenario; the table gives medians")
	fs.StringVar(&o.goBin, "go", "go", "the go command")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per target of each warden bench run")
	fs.BoolVar(&o.quick, "quick", false, "a fast smoke run: -count 1, short benchmarks (figures not for publishing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.quick {
		o.count, o.duration = 1, time.Second
	}
	r := &report{opts: o, started: time.Now().UTC(), machine: bench.ThisMachine(), log: log}
	for _, g := range goBenches(o) {
		r.runGo(ctx, g)
	}
	r.runGateway(ctx)
	r.runDrill(ctx)
	r.runCorpus(ctx)
	r.ended = time.Now().UTC()
	r.endLoad = bench.LoadAverage()
	rows := r.rows()
	if err := os.WriteFile(o.out, []byte(r.markdown(rows)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "benchreport: wrote %s\n", o.out)
	var missing []string
	for _, row := range rows {
		if row.missing != "" {
			missing = append(missing, row.figure+": "+row.missing)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d figures missing:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	return nil
}

// goBench is one `go test -bench` invocation: extra are go test flags, binFlags flags of the
// test binary (which go after the package).
type goBench struct {
	pkg, pattern    string
	extra, binFlags []string
}

func goBenches(o options) []goBench {
	var benchtime []string
	if o.quick {
		benchtime = []string{"-benchtime", "200ms"}
	}
	var audit []string
	if o.quick {
		audit = []string{"-audit.verify-events", "20000"}
	}
	// The fleet's kill: each iteration kills a fresh agent under load on three real replicas.
	fleetKill := []string{"-benchtime", "20x"}
	if o.quick {
		fleetKill = []string{"-benchtime", "3x"}
	}
	return []goBench{
		{pkg: "./internal/identity", pattern: "^BenchmarkVerifyToken(Cached|First)$", extra: benchtime},
		{pkg: "./internal/gateway", pattern: "^BenchmarkPipeline$/^policies=(1|1000)$/", extra: benchtime},
		{pkg: "./internal/audit", pattern: "^Benchmark(DurableAppend|DurableAppendAtRate|Verify)$", extra: benchtime, binFlags: audit},
		{pkg: "./internal/sqlite", pattern: "^BenchmarkAppendAuditEvents$", extra: benchtime},
		{pkg: "./internal/server", pattern: "^BenchmarkKill$", extra: benchtime},
		{pkg: "./internal/bench", pattern: "^Benchmark(Baseline|RunEndToEnd|SkillAdd10MB)", extra: benchtime},
		{pkg: "./cmd/warden", pattern: "^BenchmarkSandboxStart$", extra: benchtime},
		{pkg: "./internal/fleet", pattern: "^Benchmark(NotifyRoundTrip|PublishAck)$", extra: benchtime},
		{pkg: "./internal/replicatest", pattern: "^BenchmarkFleetKill$", extra: fleetKill},
		{pkg: "./internal/scan", pattern: "^BenchmarkScan(Text|Skill|BaselineIndex|BaselineRegexp)$", extra: benchtime},
		{pkg: "./internal/skill", pattern: "^BenchmarkReadDir10MB$", extra: benchtime},
		{pkg: "./internal/gateway", pattern: "^BenchmarkPipelineFlow$", extra: benchtime},
		{pkg: "./internal/gateway", pattern: "^BenchmarkPipelineTracing$", extra: benchtime},
		{pkg: "./internal/taint", pattern: "^Benchmark(Facts|Observe100KB|ExtractBody)$", extra: benchtime},
		{pkg: "./internal/metrics", pattern: "^BenchmarkObserver$", extra: benchtime},
		{pkg: "./internal/gateway", pattern: "^BenchmarkPipelineMetrics$", extra: benchtime},
		{pkg: "./internal/gateway", pattern: "^BenchmarkPipelineShadow$", extra: benchtime},
		{pkg: "./internal/detect", pattern: "^Benchmark(Observe|RunnerPass)$", extra: benchtime},
	}
}

// report collects every measurement of one run.
type report struct {
	opts    options
	started time.Time
	ended   time.Time
	machine bench.Machine
	endLoad string
	log     io.Writer

	// results by benchmark name (without the -GOMAXPROCS suffix) and unit: one value per run
	results map[string]map[string][]float64
	skipped map[string]string // benchmark → why it skipped
	failed  map[string]string // package → what went wrong
	cmds    map[string]string // package → the command
	loads   map[string]string // package → load average when it started

	gateway     []*bench.Result // mcp at 1,000 calls/s
	sustained   []*bench.Result // mcp at 200 calls/s, which this machine sustains
	throughput  []*bench.Result // mcp flat out
	drills      []*bench.DrillResult
	gatewayErr  error
	drillErr    error
	gatewayCmd  string
	slowCmd     string
	flatCmd     string
	drillCmd    string
	gatewayLoad string
	corpus      []string // what the corpus replay logged: the figures and each miss
	corpusCmd   string
	corpusErr   error
	slowLoad    string
	flatLoad    string
	drillLoad   string
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

// logInBenchLine is a benchmark's name with a log line written into the middle of its result
// line (the test binary's stderr shares go test's output): the figures follow on the next line.
var logInBenchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} `)

// runCorpus replays the injection corpus (examples/injection) through the policy library
// (examples/policies) on a real server — TestReplayInjectionCorpus, which also holds the goal —
// and keeps what it logs: the ratios and every miss.
func (r *report) runCorpus(ctx context.Context) {
	args := []string{"test", "-count=1", "-run", "^TestReplayInjectionCorpus$", "-v", "./internal/server"}
	r.corpusCmd = "go " + shellJoin(args)
	fmt.Fprintf(r.log, "benchreport: %s\n", r.corpusCmd)
	cmd := exec.CommandContext(ctx, r.opts.goBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, prefixed(r.log)), prefixed(r.log)
	r.corpusErr = cmd.Run()
	for _, line := range strings.Split(out.String(), "\n") {
		if _, msg, ok := strings.Cut(line, "replay_test.go:"); ok {
			if _, text, ok := strings.Cut(msg, ": "); ok {
				r.corpus = append(r.corpus, text)
			}
		}
	}
}

func (r *report) runGo(ctx context.Context, g goBench) {
	if r.results == nil {
		r.results, r.skipped, r.failed, r.cmds, r.loads = map[string]map[string][]float64{}, map[string]string{}, map[string]string{}, map[string]string{}, map[string]string{}
	}
	args := append([]string{"test", "-run", "^$", "-bench", g.pattern, "-count", strconv.Itoa(r.opts.count), "-timeout", "60m"}, g.extra...)
	args = append(append(args, g.pkg), g.binFlags...)
	r.cmds[g.pkg] = "go " + shellJoin(args)
	r.loads[g.pkg] = bench.LoadAverage()
	fmt.Fprintf(r.log, "benchreport: %s\n", r.cmds[g.pkg])
	cmd := exec.CommandContext(ctx, r.opts.goBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, prefixed(r.log)), prefixed(r.log)
	err := cmd.Run()
	parseBench(out.String(), r.results, r.skipped)
	if err != nil {
		r.failed[g.pkg] = fmt.Sprintf("%v: %s", err, lastLines(out.String(), 5))
	}
}

// parseBench reads the standard benchmark format: "BenchmarkName-P  N  value unit  value unit …",
// and "--- SKIP: BenchmarkName" followed by the reason.
func parseBench(out string, results map[string]map[string][]float64, skipped map[string]string) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	skipping, interrupted := "", ""
	for sc.Scan() {
		line := sc.Text()
		if m := logInBenchLine.FindStringSubmatch(line); m != nil {
			interrupted = m[1]
			continue
		}
		if interrupted != "" {
			line, interrupted = interrupted+"\t"+strings.TrimSpace(line), ""
		}
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "--- SKIP: "); ok {
			skipping = strings.Fields(name)[0]
			skipped[skipping] = "skipped"
			continue
		}
		if skipping != "" {
			if msg := strings.TrimSpace(line); msg != "" && !strings.HasPrefix(msg, "---") {
				if _, m, ok := strings.Cut(msg, ": "); ok {
					msg = m
				}
				skipped[skipping] = msg
			}
			skipping = ""
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := strings.Fields(m[4])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			if results[m[1]] == nil {
				results[m[1]] = map[string][]float64{}
			}
			results[m[1]][f[i+1]] = append(results[m[1]][f[i+1]], v)
		}
	}
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// metric is the median of a benchmark's metric, or why it is missing.
func (r *report) metric(pkg, name, unit string) (float64, string) {
	if vs := r.results[name][unit]; len(vs) > 0 {
		return median(vs), ""
	}
	if why, ok := r.skipped[name]; ok {
		return 0, "skipped: " + why
	}
	if why, ok := r.failed[pkg]; ok {
		return 0, "failed: " + why
	}
	return 0, fmt.Sprintf("no %s in the output of %s", unit, name)
}

func (r *report) runGateway(ctx context.Context) {
	d := r.opts.duration
	base := bench.Options{Path: bench.PathMCP, Duration: d, Policies: 1000, Budgets: true, Progress: r.log,
		Server: bench.ServerOptions{Self: &bench.SelfOptions{Log: r.log}}}
	rate := base
	rate.Rate, rate.Concurrency = 1000, 16
	slow := rate
	slow.Rate = 200
	flat := base
	flat.Concurrency = 8
	r.gatewayCmd = fmt.Sprintf("warden bench --self --path mcp --rate 1000 --concurrency 16 --policies 1000 --budgets on --duration %s", d)
	r.slowCmd = strings.Replace(r.gatewayCmd, "--rate 1000", "--rate 200", 1)
	r.flatCmd = fmt.Sprintf("warden bench --self --path mcp --rate 0 --concurrency 8 --policies 1000 --budgets on --duration %s", d)
	for _, sc := range []struct {
		cmd  string
		o    bench.Options
		load *string
		out  *[]*bench.Result
	}{
		{r.gatewayCmd, rate, &r.gatewayLoad, &r.gateway},
		{r.slowCmd, slow, &r.slowLoad, &r.sustained},
		{r.flatCmd, flat, &r.flatLoad, &r.throughput},
	} {
		*sc.load = bench.LoadAverage()
		for i := range r.opts.count {
			fmt.Fprintf(r.log, "benchreport: %s (%d/%d)\n", sc.cmd, i+1, r.opts.count)
			res, err := bench.Run(ctx, sc.o)
			if err != nil {
				r.gatewayErr = err
				return
			}
			*sc.out = append(*sc.out, res)
		}
	}
}

func (r *report) runDrill(ctx context.Context) {
	o := bench.DrillOptions{Kind: bench.DrillKill, Agents: 1, Sessions: 1000, Rate: 500, Before: 2 * time.Second, After: time.Second,
		Server: bench.ServerOptions{Self: &bench.SelfOptions{Log: r.log}}, Progress: r.log, SandboxNote: "not part of this figure"}
	r.drillCmd = "warden drill kill --self --sessions 1000 --rate 500 --before 2s --after 1s --sandbox=false"
	r.drillLoad = bench.LoadAverage()
	for i := range r.opts.count {
		fmt.Fprintf(r.log, "benchreport: %s (%d/%d)\n", r.drillCmd, i+1, r.opts.count)
		res, err := bench.Drill(ctx, o)
		if err == nil && !res.Passed {
			err = fmt.Errorf("drill %s failed: %s", res.ID, strings.Join(res.Failed(), ", "))
		}
		if err != nil {
			r.drillErr = err
			return
		}
		r.drills = append(r.drills, res)
	}
}

// row is one figure of the table.
type row struct {
	figure, target     string
	measured, baseline string
	verdict, load, cmd string
	missing            string // why the figure could not be measured (the run fails)
	skipped            string // why it was not measured on this machine (the run does not fail)
}

func (r *report) rows() []row {
	var rows []row
	goRow := func(figure, target, pkg, command string, value func() (float64, string, string, string), limit float64, lowerBetter bool) {
		v, measured, base, why := value()
		rw := row{figure: figure, target: target, load: r.loads[pkg], cmd: command}
		switch {
		case strings.HasPrefix(why, "skipped: "):
			rw.skipped = strings.TrimPrefix(why, "skipped: ")
		case why != "":
			rw.missing = why
		default:
			rw.measured, rw.baseline = measured, base
			rw.verdict = "—"
			if limit > 0 {
				rw.verdict = verdict(v, limit, lowerBetter)
			}
		}
		rows = append(rows, rw)
	}
	goCmd := func(pkg, pattern string) string {
		return fmt.Sprintf("go test -run '^$' -bench '%s' -count %d %s", pattern, r.opts.count, pkg)
	}
	us := func(ns float64) float64 { return ns / 1000 }

	goRow("Token verification, cached token", "≤ 2 µs", "./internal/identity", goCmd("./internal/identity", "^BenchmarkVerifyTokenCached$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/identity", "BenchmarkVerifyTokenCached", "ns/op")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineSHA256Token", "ns/op")
		return us(v), fmt.Sprintf("%.2f µs", us(v)), baseline(fmt.Sprintf("SHA-256 of a token: %.2f µs", us(b)), bwhy), why
	}, 2, true)
	goRow("Token verification, first use", "≤ 100 µs", "./internal/identity", goCmd("./internal/identity", "^BenchmarkVerifyTokenFirst$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/identity", "BenchmarkVerifyTokenFirst", "ns/op")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineEd25519Verify", "ns/op")
		return us(v), fmt.Sprintf("%.1f µs", us(v)), baseline(fmt.Sprintf("one Ed25519 verify: %.1f µs", us(b)), bwhy), why
	}, 100, true)
	for _, p := range []struct{ label, unit, target string }{{"p50", "p50-µs", "≤ 20 µs"}, {"p99", "p99-µs", "≤ 100 µs"}} {
		limit, _ := strconv.ParseFloat(strings.Fields(p.target)[1], 64)
		goRow("Pipeline decision "+p.label+", 1,000 policies, budgets on", p.target, "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipeline$/^policies=(1|1000)$/"), func() (float64, string, string, string) {
			v, why := r.metric("./internal/gateway", "BenchmarkPipeline/policies=1000/budgets=true", p.unit)
			b, bwhy := r.metric("./internal/gateway", "BenchmarkPipeline/policies=1/budgets=false", p.unit)
			return v, fmt.Sprintf("%.1f µs", v), baseline(fmt.Sprintf("1 policy, no budgets: %.1f µs", b), bwhy), why
		}, limit, true)
	}

	goRow("Flow facts added to a decision, session holding 1 MiB of untrusted output (p50)", "≤ 5 µs", "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipelineFlow$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/gateway", "BenchmarkPipelineFlow/session=1MiB", "p50-µs")
		b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineFlow/session=none", "p50-µs")
		return v - b, fmt.Sprintf("%+.1f µs (%.1f µs)", v-b, v), baseline(fmt.Sprintf("the same decision with no flow state: %.1f µs", b), bwhy), why
	}, 5, true)
	goRow("Flow facts added to a decision on a fleet (PostgreSQL read-back, settled), p50", "— (reported)", "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipelineFlow$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/gateway", "BenchmarkPipelineFlow/session=1MiB-postgres", "p50-µs")
		b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineFlow/session=none", "p50-µs")
		return v - b, fmt.Sprintf("%+.1f µs (%.1f µs)", v-b, v), baseline(fmt.Sprintf("the same decision with no flow state: %.1f µs", b), bwhy), why
	}, 0, false)
	for _, m := range []struct{ label, bench string }{{"every call sampled", "on"}, {"none sampled (ratio 0)", "unsampled"}} {
		goRow("Tracing added to a decision, "+m.label+" (p50)", "— (reported)", "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipelineTracing$"), func() (float64, string, string, string) {
			v, why := r.metric("./internal/gateway", "BenchmarkPipelineTracing/tracing="+m.bench, "p50-µs")
			b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineTracing/tracing=off", "p50-µs")
			va, _ := r.metric("./internal/gateway", "BenchmarkPipelineTracing/tracing="+m.bench, "allocs/op")
			ba, _ := r.metric("./internal/gateway", "BenchmarkPipelineTracing/tracing=off", "allocs/op")
			return v - b, fmt.Sprintf("%+.1f µs (%.1f µs), %+.0f allocations", v-b, v, va-ba),
				baseline(fmt.Sprintf("tracing off (no telemetry.otlp_endpoint): %.1f µs, %.0f allocations", b, ba), bwhy), why
		}, 0, false)
	}
	goRow("Taint facts of a call, session holding 1 MiB (taint.Facts)", "≤ 5 µs", "./internal/taint", goCmd("./internal/taint", "^Benchmark(Facts|Observe100KB|ExtractBody)$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/taint", "BenchmarkFacts/unkeyed", "ns/op")
		b, bwhy := r.metric("./internal/taint", "BenchmarkExtractBody", "ns/op")
		k, _ := r.metric("./internal/taint", "BenchmarkFacts/keyed", "ns/op")
		return us(v), fmt.Sprintf("%.2f µs (keyed, as on a fleet: %.2f µs)", us(v), us(k)), baseline(fmt.Sprintf("reading a 500-byte argument alone: %.2f µs", us(b)), bwhy), why
	}, 5, true)
	goRow("Indexing a 100 KB untrusted result", "≤ 1 ms", "./internal/taint", goCmd("./internal/taint", "^Benchmark(Facts|Observe100KB|ExtractBody)$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/taint", "BenchmarkObserve100KB", "ns/op")
		b, bwhy := r.metric("./internal/taint", "BenchmarkExtractBody", "ns/op")
		return v / 1e6, fmt.Sprintf("%.2f ms", v/1e6), baseline(fmt.Sprintf("reading a 500-byte argument: %.2f µs", us(b)), bwhy), why
	}, 1, true)

	goRow("Prometheus metrics added to a call (its decision counted and timed, its outcome timed)", "≤ 1 µs", "./internal/metrics", goCmd("./internal/metrics", "^BenchmarkObserver$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/metrics", "BenchmarkObserver", "ns/op")
		b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineMetrics/metrics=false", "p50-µs")
		return us(v), fmt.Sprintf("%.2f µs", us(v)), baseline(fmt.Sprintf("the decision it observes (1,000 policies, budgets on), p50: %.1f µs", b), bwhy), why
	}, 1, true)
	goRow("Pipeline decision p50 with metrics ÷ without, 1,000 policies, budgets on", "— (reported)", "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipelineMetrics$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/gateway", "BenchmarkPipelineMetrics/metrics=true", "p50-µs")
		b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineMetrics/metrics=false", "p50-µs")
		if why == "" && b <= 0 {
			why = "no baseline"
		}
		return v / b, fmt.Sprintf("%.2f (%.1f µs)", v/b, v), baseline(fmt.Sprintf("without metrics: %.1f µs", b), bwhy), why
	}, 0, false)

	goRow("Shadow mode added to a decision, a candidate that differs on every call (p50)", "— (reported)", "./internal/gateway", goCmd("./internal/gateway", "^BenchmarkPipelineShadow$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/gateway", "BenchmarkPipelineShadow/shadow=true", "p50-µs")
		b, bwhy := r.metric("./internal/gateway", "BenchmarkPipelineShadow/shadow=false", "p50-µs")
		va, _ := r.metric("./internal/gateway", "BenchmarkPipelineShadow/shadow=true", "allocs/op")
		ba, _ := r.metric("./internal/gateway", "BenchmarkPipelineShadow/shadow=false", "allocs/op")
		return v - b, fmt.Sprintf("+%.1f µs (%.1f µs), %+.0f allocations", v-b, v, va-ba), baseline(fmt.Sprintf("no candidate (1,000 policies, budgets on): %.1f µs, %.0f allocations", b, ba), bwhy), why
	}, 0, false)
	goRow("Detection keeping up with the audit log: the runner end to end on SQLite (read, judge, save)", "≥ 20,000 events/s", "./internal/detect", goCmd("./internal/detect", "^Benchmark(Observe|RunnerPass)$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/detect", "BenchmarkRunnerPass", "events/s")
		b, bwhy := r.metric("./internal/detect", "BenchmarkObserve", "events/s")
		return v, fmt.Sprintf("%.0f events/s", v), baseline(fmt.Sprintf("the detector alone (judging, no store): %.0f events/s", b), bwhy), why
	}, 20000, false)

	gw := func(figure, target string, limit float64, results []*bench.Result, cmd, load, unit string, pick func(*bench.Result) (float64, float64)) {
		rw := row{figure: figure, target: target, load: load, cmd: cmd + fmt.Sprintf(" (%d runs)", r.opts.count)}
		if len(results) < r.opts.count {
			rw.missing = errorText(r.gatewayErr, "the warden bench runs did not complete")
		} else {
			var vs, bs []float64
			for _, res := range results {
				v, b := pick(res)
				vs, bs = append(vs, v), append(bs, b)
			}
			v := median(vs)
			rw.measured = fmt.Sprintf("%+.3f ms", v)
			rw.baseline = fmt.Sprintf("direct call: %.3f ms; warden: %.3f ms", median(bs), median(bs)+v)
			if floor, why := r.metric("./internal/audit", "BenchmarkDurableAppendAtRate/rate=1000", unit); limit > 0 && why == "" {
				// Every allow waits for its durable commit before it goes upstream: that wait
				// alone, at the same rate, is the floor of what warden can add.
				rw.baseline += fmt.Sprintf("; the durable audit commit alone at 1,000 events/s: %.3f ms", floor)
			}
			rw.verdict = "—"
			if limit > 0 {
				rw.verdict = verdict(v, limit, true)
			}
		}
		rows = append(rows, rw)
	}
	p50 := func(res *bench.Result) (float64, float64) { return res.AddedLatencyMS.P50, res.Direct.LatencyMS.P50 }
	p99 := func(res *bench.Result) (float64, float64) { return res.AddedLatencyMS.P99, res.Direct.LatencyMS.P99 }
	gw("Gateway added latency p50, /mcp at 1,000 calls/s", "≤ 0.5 ms", 0.5, r.gateway, r.gatewayCmd, r.gatewayLoad, "p50-ms", p50)
	gw("Gateway added latency p99, /mcp at 1,000 calls/s", "≤ 2 ms", 2, r.gateway, r.gatewayCmd, r.gatewayLoad, "p99-ms", p99)
	gw("Gateway added latency p50, /mcp at 200 calls/s (below the peak: no queueing)", "—", 0, r.sustained, r.slowCmd, r.slowLoad, "p50-ms", p50)
	gw("Gateway added latency p99, /mcp at 200 calls/s (below the peak: no queueing)", "—", 0, r.sustained, r.slowCmd, r.slowLoad, "p99-ms", p99)
	{
		rw := row{figure: "Gateway throughput, /mcp flat out, warden ÷ httputil.ReverseProxy", target: "≥ 0.5", load: r.flatLoad, cmd: r.flatCmd + fmt.Sprintf(" (%d runs)", r.opts.count)}
		if len(r.throughput) < r.opts.count {
			rw.missing = errorText(r.gatewayErr, "the warden bench runs did not complete")
		} else {
			var ratio, proxy, warden []float64
			for _, res := range r.throughput {
				ratio, proxy, warden = append(ratio, res.ThroughputRatio), append(proxy, res.Proxy.Throughput), append(warden, res.Warden.Throughput)
			}
			v := median(ratio)
			rw.measured = fmt.Sprintf("%.2f", v)
			rw.baseline = fmt.Sprintf("ReverseProxy: %.0f calls/s; warden: %.0f calls/s", median(proxy), median(warden))
			rw.verdict = verdict(v, 0.5, false)
		}
		rows = append(rows, rw)
	}

	appenders, why := r.auditOperatingPoint()
	name := "BenchmarkDurableAppend/appenders=" + appenders
	goRow("Audit append throughput, durable (SQLite, synchronous=FULL)", "≥ 20,000 events/s", "./internal/audit", goCmd("./internal/audit", "^BenchmarkDurableAppend$"), func() (float64, string, string, string) {
		if why != "" {
			return 0, "", "", why
		}
		v, why := r.metric("./internal/audit", name, "events/s")
		b, bwhy := r.metric("./internal/sqlite", "BenchmarkAppendAuditEvents/batch=64", "events/s")
		return v, fmt.Sprintf("%.0f events/s (%s appenders)", v, appenders), baseline(fmt.Sprintf("the store alone, 64 events per commit: %.0f events/s", b), bwhy), why
	}, 20000, false)
	goRow("Audit append p99 commit wait", "≤ 5 ms", "./internal/audit", goCmd("./internal/audit", "^BenchmarkDurableAppend$"), func() (float64, string, string, string) {
		if why != "" {
			return 0, "", "", why
		}
		v, why := r.metric("./internal/audit", name, "p99-ms")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineFsync", "p99-ms")
		return v, fmt.Sprintf("%.2f ms (%s appenders)", v, appenders), baseline(fmt.Sprintf("p99 of one 512-byte write + fsync: %.2f ms", b), bwhy), why
	}, 5, true)
	goRow("Audit append p99 wait at 20,000 events/s offered (open loop)", "≤ 5 ms", "./internal/audit", goCmd("./internal/audit", "^BenchmarkDurableAppendAtRate$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/audit", "BenchmarkDurableAppendAtRate/rate=20000", "p99-ms")
		b, bwhy := r.metric("./internal/audit", "BenchmarkDurableAppendAtRate/rate=5000", "p99-ms")
		return v, fmt.Sprintf("%.2f ms", v), baseline(fmt.Sprintf("the same at 5,000 events/s: %.2f ms", b), bwhy), why
	}, 5, true)
	goRow("Audit verify", "≥ 1,000,000 events/min", "./internal/audit", goCmd("./internal/audit", "^BenchmarkVerify$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/audit", "BenchmarkVerify", "events/min")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineHashChain", "events/min")
		return v, fmt.Sprintf("%.2fM events/min", v/1e6), baseline(fmt.Sprintf("a SHA-256 chain alone: %.0fM events/min", b/1e6), bwhy), why
	}, 1e6, false)
	goRow("Kill return p99, 1,000 live sessions, 500 calls/s", "≤ 50 ms", "./internal/server", goCmd("./internal/server", "^BenchmarkKill$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/server", "BenchmarkKill", "return-p99-ms")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineAgentUpdate", "p99-ms")
		return v, fmt.Sprintf("%.1f ms", v), baseline(fmt.Sprintf("p99 of one durable agent update on SQLite: %.1f ms", b), bwhy), why
	}, 50, true)
	goRow("Kill: calls in flight cancelled, p99 after the command", "≤ 100 ms", "./internal/server", goCmd("./internal/server", "^BenchmarkKill$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/server", "BenchmarkKill", "cancelled-p99-ms")
		b, bwhy := r.metric("./internal/bench", "BenchmarkBaselineCancel", "p99-ms")
		return v, fmt.Sprintf("%.1f ms", v), baseline(fmt.Sprintf("p99 of a plain Go client's cancel reaching its upstream: %.2f ms", b), bwhy), why
	}, 100, true)
	scanBaseline := func() string {
		idx, why := r.metric("./internal/scan", "BenchmarkScanBaselineIndex", "MB/s")
		re, rwhy := r.metric("./internal/scan", "BenchmarkScanBaselineRegexp", "MB/s")
		if why == "" {
			why = rwhy
		}
		return baseline(fmt.Sprintf("one strings.Index pass: %.0f MB/s; one regexp of the scanner's kind: %.1f MB/s", idx, re), why)
	}
	scanCmd := goCmd("./internal/scan", "^BenchmarkScan(Text|Skill|BaselineIndex|BaselineRegexp)$")
	goRow("Supply-chain scan throughput, a realistic 10 MB skill (Markdown references, scripts, JSON Lines)", "≥ 20 MB/s", "./internal/scan", scanCmd, func() (float64, string, string, string) {
		v, why := r.metric("./internal/scan", "BenchmarkScanSkill", "MB/s")
		cpu, _ := r.metric("./internal/scan", "BenchmarkScanSkill", "cpu-MB/s")
		return v, fmt.Sprintf("%.1f MB/s (%.0f MB per CPU second)", v, cpu), scanBaseline(), why
	}, 20, false)
	goRow("Supply-chain scan throughput, ordinary skill text (Markdown, code, Unicode; with tool names and allowed hosts)", "≥ 20 MB/s", "./internal/scan", scanCmd, func() (float64, string, string, string) {
		v, why := r.metric("./internal/scan", "BenchmarkScanText", "MB/s")
		cpu, _ := r.metric("./internal/scan", "BenchmarkScanText", "cpu-MB/s")
		return v, fmt.Sprintf("%.1f MB/s (%.0f MB per CPU second)", v, cpu), scanBaseline(), why
	}, 20, false)
	goRow("`warden skill add` of a realistic 10 MB skill, p50 end to end (CLI → server on 127.0.0.1, SQLite)", "≤ 1 s", "./internal/bench", goCmd("./internal/bench", "^BenchmarkSkillAdd10MB$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/bench", "BenchmarkSkillAdd10MB", "add-p50-ms")
		cpu, _ := r.metric("./internal/bench", "BenchmarkSkillAdd10MB", "add-cpu-ms/op")
		b, bwhy := r.metric("./internal/bench", "BenchmarkSkillAdd10MB", "sha256-p50-ms")
		return v, fmt.Sprintf("%.0f ms (%.0f ms of CPU, client and server)", v, cpu), baseline(fmt.Sprintf("SHA-256 of the same files read from disk: %.1f ms", b), bwhy), why
	}, 1000, true)
	goRow("Skill read and digest, 10 MB in 200 files (the part of `skill add` before the scan)", "—", "./internal/skill", goCmd("./internal/skill", "^BenchmarkReadDir10MB$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/skill", "BenchmarkReadDir10MB", "ns/op")
		return v / 1e6, fmt.Sprintf("%.0f ms", v/1e6), "—", why
	}, 0, true)
	notify := func() string {
		p50, why := r.metric("./internal/fleet", "BenchmarkNotifyRoundTrip", "p50-ms")
		p99, why99 := r.metric("./internal/fleet", "BenchmarkNotifyRoundTrip", "p99-ms")
		if why == "" {
			why = why99
		}
		return baseline(fmt.Sprintf("one NOTIFY round trip between two connections: p50 %.2f ms, p99 %.2f ms", p50, p99), why)
	}
	goRow("Fleet: kill returns with every replica acknowledged, p99 (3 replicas, 1,000 sessions, 500 calls/s)", "≤ 100 ms", "./internal/replicatest", goCmd("./internal/replicatest", "^BenchmarkFleetKill$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/replicatest", "BenchmarkFleetKill", "kill-return-p99-ms")
		p50, _ := r.metric("./internal/replicatest", "BenchmarkFleetKill", "kill-return-p50-ms")
		return v, fmt.Sprintf("%.1f ms (p50 %.1f ms)", v, p50), notify(), why
	}, 100, true)
	goRow("Fleet: last call in flight on another replica cancelled, p99 after the command", "≤ 100 ms", "./internal/replicatest", goCmd("./internal/replicatest", "^BenchmarkFleetKill$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/replicatest", "BenchmarkFleetKill", "remote-cancel-p99-ms")
		p50, _ := r.metric("./internal/replicatest", "BenchmarkFleetKill", "remote-cancel-p50-ms")
		missed, _ := r.metric("./internal/replicatest", "BenchmarkFleetKill", "not-cancelled")
		return v, fmt.Sprintf("%.1f ms (p50 %.1f ms; %.0f not cancelled within 3 s)", v, p50, missed), notify(), why
	}, 100, true)
	goRow("Fleet: publish a kill-state change and every other replica acknowledges it, p99 (3 replicas, idle)", "—", "./internal/fleet", goCmd("./internal/fleet", "^BenchmarkPublishAck$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/fleet", "BenchmarkPublishAck/replicas=3", "p99-ms")
		p50, _ := r.metric("./internal/fleet", "BenchmarkPublishAck/replicas=3", "p50-ms")
		return v, fmt.Sprintf("%.2f ms (p50 %.2f ms)", v, p50), notify(), why
	}, 0, true)
	{
		rw := row{figure: "Kill return through the API (drill: 1,000 sessions, 500 calls/s)", target: "≤ 50 ms", load: r.drillLoad, cmd: r.drillCmd + fmt.Sprintf(" (%d runs)", r.opts.count)}
		if len(r.drills) < r.opts.count {
			rw.missing = errorText(r.drillErr, "the drills did not complete")
		} else {
			var ret, cancel, rt []float64
			for _, d := range r.drills {
				ret, cancel, rt = append(ret, d.KillReturnMS), append(cancel, d.LastCancelMS), append(rt, d.AdminRoundTripMS)
			}
			v := median(ret)
			rw.measured = fmt.Sprintf("%.1f ms (last call in flight cancelled after %.1f ms); every guarantee held", v, median(cancel))
			rw.baseline = fmt.Sprintf("a trivial admin request: %.1f ms", median(rt))
			rw.verdict = verdict(v, 50, true)
		}
		rows = append(rows, rw)
	}
	goRow("Sandbox start p50 over plain exec (to the command's first output)", "≤ 30 ms", "./cmd/warden", goCmd("./cmd/warden", "^BenchmarkSandboxStart$"), func() (float64, string, string, string) {
		v, why := r.metric("./cmd/warden", "BenchmarkSandboxStart", "overhead-p50-ms")
		box, _ := r.metric("./cmd/warden", "BenchmarkSandboxStart", "sandbox-p50-ms")
		b, _ := r.metric("./cmd/warden", "BenchmarkSandboxStart", "plain-p50-ms")
		return v, fmt.Sprintf("+%.1f ms", v), fmt.Sprintf("plain exec of echo: %.1f ms; in the sandbox: %.1f ms", b, box), why
	}, 30, true)
	goRow("`warden run -- true` end to end p50 over plain exec (runner, token, registration, sandbox)", "—", "./internal/bench", goCmd("./internal/bench", "^BenchmarkRunEndToEnd$"), func() (float64, string, string, string) {
		v, why := r.metric("./internal/bench", "BenchmarkRunEndToEnd", "added-p50-ms")
		run, _ := r.metric("./internal/bench", "BenchmarkRunEndToEnd", "run-p50-ms")
		b, _ := r.metric("./internal/bench", "BenchmarkRunEndToEnd", "exec-p50-ms")
		return v, fmt.Sprintf("+%.1f ms", v), fmt.Sprintf("plain exec of true: %.1f ms; warden run: %.1f ms", b, run), why
	}, 0, true)
	return rows
}

// auditOperatingPoint picks the appender count the audit figures are read at: the smallest
// whose median throughput meets 20,000 events/s (the best latency at the target throughput), or
// else the one with the most throughput.
func (r *report) auditOperatingPoint() (string, string) {
	type point struct {
		n   int
		eps float64
	}
	var points []point
	for name, units := range r.results {
		if s, ok := strings.CutPrefix(name, "BenchmarkDurableAppend/appenders="); ok {
			if n, err := strconv.Atoi(s); err == nil && len(units["events/s"]) > 0 {
				points = append(points, point{n, median(units["events/s"])})
			}
		}
	}
	if len(points) == 0 {
		_, why := r.metric("./internal/audit", "BenchmarkDurableAppend/appenders=1", "events/s")
		return "", why
	}
	slices.SortFunc(points, func(a, b point) int { return a.n - b.n })
	best := points[0]
	for _, p := range points {
		if p.eps >= 20000 {
			return strconv.Itoa(p.n), ""
		}
		if p.eps > best.eps {
			best = p
		}
	}
	return strconv.Itoa(best.n), ""
}

func baseline(text, why string) string {
	if why != "" {
		return "missing (" + why + ")"
	}
	return text
}

func errorText(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

func verdict(v, limit float64, lowerBetter bool) string {
	if lowerBetter == (v <= limit) || v == limit {
		return "yes"
	}
	return "**no**"
}

func (r *report) markdown(rows []row) string {
	var b strings.Builder
	m := r.machine
	fmt.Fprintf(&b, "# Performance\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (`go run ./internal/bench/cmd/benchreport -count %d`) on %s, in %s.\n",
		r.opts.count, r.started.Format("2006-01-02 15:04 UTC"), r.ended.Sub(r.started).Round(time.Second))
	if r.opts.quick {
		b.WriteString("**This is a quick smoke run (-quick): one run of each, short benchmarks. Do not quote these figures.**\n")
	}
	fmt.Fprintf(&b, "Each figure is the median of %d runs; each baseline was measured in the same run, on the same machine, beside it.\n\n", r.opts.count)
	fmt.Fprintf(&b, "**Machine:** %d CPUs (GOMAXPROCS %d), %s, %s, kernel %s, %s. Load average (1, 5, 15 min) %s at the start and %s at the end; each row gives it when that figure's measurement began.\n\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.OS, m.Kernel, m.Go, m.LoadAvg, r.endLoad)
	b.WriteString("The machine is shared and noisy (two cores; other people's tests run beside these). Absolute figures move with the neighbours; a figure beside its baseline from the same run moves much less. `warden bench` runs warden, the load generator and the upstream in one process on the same two cores, so its figures include the load generator's own cost on both sides.\n\n")
	b.WriteString("| Figure | Target | Measured (median) | Baseline (same run) | Meets target | Load avg | Command |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, rw := range rows {
		measured, base, v := rw.measured, rw.baseline, rw.verdict
		switch {
		case rw.missing != "":
			measured, base, v = "**missing**: "+cell(rw.missing), "", "not measured"
		case rw.skipped != "":
			measured, v = "not measured here: "+cell(rw.skipped), "not measured"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | `%s` |\n", rw.figure, rw.target, measured, base, v, rw.load, rw.cmd)
	}
	b.WriteString("\n## Injection containment: the shipped policies on the corpus\n\n")
	fmt.Fprintf(&b, "`%s`: the 79 sessions of examples/injection (mail assistant, banking, chat workspace, travel booking, code hosting; every call labelled benign or attack) through examples/policies on a real server, by `warden replay`'s path. Goal: at least 95%% of attack calls blocked (denied or held for a person) and at least 90%% of benign calls allowed. Each miss and why it is one: examples/injection/README.md.\n\n", r.corpusCmd)
	switch {
	case r.corpusErr != nil && len(r.corpus) == 0:
		fmt.Fprintf(&b, "**missing**: %s\n", cell(r.corpusErr.Error()))
	default:
		if r.corpusErr != nil {
			fmt.Fprintf(&b, "**The goal was not met** (%s).\n\n", cell(r.corpusErr.Error()))
		}
		for _, line := range r.corpus {
			fmt.Fprintf(&b, "- %s\n", line)
		}
	}
	b.WriteString(methods)
	b.WriteString("\n## Every benchmark of the run (medians)\n\n")
	b.WriteString("| Benchmark | Metrics |\n|---|---|\n")
	for _, name := range slices.Sorted(mapKeys(r.results)) {
		var parts []string
		for _, unit := range slices.Sorted(mapKeys(r.results[name])) {
			parts = append(parts, fmt.Sprintf("%s %s", strconv.FormatFloat(median(r.results[name][unit]), 'g', 4, 64), unit))
		}
		fmt.Fprintf(&b, "| %s | %s |\n", name, strings.Join(parts, ", "))
	}
	for _, pkg := range slices.Sorted(mapKeys(r.failed)) {
		fmt.Fprintf(&b, "\n`%s` failed: %s\n", r.cmds[pkg], cell(r.failed[pkg]))
	}
	return b.String()
}

const methods = `
## How each figure is measured

- **Token verification** (BenchmarkVerifyTokenCached, BenchmarkVerifyTokenFirst in internal/identity): a
  token seen before (hash, cache, expiry, revocation, the agent's status and epoch) and one never seen
  (parsing and the Ed25519 signature too). Baselines: SHA-256 of a token-sized string, one Ed25519
  verify — the unavoidable part of each.
- **Pipeline decision** (BenchmarkPipeline in internal/gateway): one call in process with a cached token
  — authenticate, kill state, resolve, Cedar among 1,000 policies, budgets (rate, quota, sum), the audit
  event handed to an in-memory log (the durable write is the audit rows), the outcome. Baseline: the
  same with 1 policy and no budgets.
- **Gateway added latency and throughput** (` + "`warden bench --self --path mcp`" + `): tools/call from the official Go
  SDK client to a trivial Go SDK server on 127.0.0.1, three ways in one run — directly, through a plain
  httputil.ReverseProxy (idle connections tuned up, so the baseline is a fair one) and through warden's
  /mcp with 1,000 policies and budgets on — interleaved in one-second slices. Added latency is warden's
  percentile minus the direct call's; at a fixed rate each call is timed from its scheduled send time, so
  queueing counts: a rate above warden's peak throughput on the machine shows as queueing delay. The
  200 calls/s rows have no target; they show the cost of one call when nothing queues. The throughput
  ratio is warden's calls/s over the reverse proxy's, both flat out. Every allowed call waits for its
  tool.call event to be durable (committed and fsynced) before it goes upstream, so the 1,000 calls/s
  rows also give the durable commit alone at that rate (BenchmarkDurableAppendAtRate/rate=1000): the
  floor of what warden can add on this disk.
- **Audit append** (BenchmarkDurableAppend in internal/audit): events appended by concurrent appenders on
  SQLite with synchronous=FULL, each durable when Append returns (group commit). The row is read at the
  smallest appender count that reaches 20,000 events/s (or the best one); p99 is the wait of each
  Append. Baselines: the store's own write path with 64 events per commit (BenchmarkAppendAuditEvents
  in internal/sqlite), and the p99 of one small write + fsync on the same disk. The open-loop row
  (BenchmarkDurableAppendAtRate) offers 20,000 events/s on a fixed schedule from a pool of appenders and
  times each Append, beside the same at 5,000 events/s.
- **Audit verify** (BenchmarkVerify in internal/audit): the hash chain and signed checkpoints of a
  200,000-event log. Baseline: a SHA-256 chain over event-sized records alone.
- **Kill** (BenchmarkKill in internal/server): kill returns, and every call of the agent in flight has
  ended, with 1,000 live sessions of the agent, 500 calls/s flowing and 20 slow calls in flight.
  Baselines: one durable agent update on SQLite (the kill's first write); a plain Go client's
  cancellation reaching its upstream. The drill row is the same kill end to end through the admin API
  (` + "`warden drill kill`" + `, which also checks every guarantee), beside a trivial admin request.
- **Sandbox start** (BenchmarkSandboxStart in cmd/warden): from starting a command in a sandbox, built
  with the real warden binary as its init, to the command's first output, against a plain exec of the
  same command. The row below it (BenchmarkRunEndToEnd in internal/bench, no target) is what a person
  waits for: ` + "`warden run --agent A -- true`" + ` end to end — the runner's own start, its token,
  registration with the server, the sandbox built and torn down — against plain exec of true. Both run
  as root, like the sandbox's tests; elsewhere they are not measured.
- **Flow facts** (BenchmarkPipelineFlow in internal/gateway): the decision of BenchmarkPipeline (1 policy,
  no budgets) with six arguments (recipient, IBAN, amount, subject, a 500-byte body, URL) in a session
  whose value index holds 1 MiB of realistic untrusted mail (senders, IBANs, account numbers, amounts,
  links, quoted phrases), minus the same decision with no flow state: labels, the session's facts, the
  arguments read and looked up, the Cedar records, the audit event's flow. The fleet row reads the
  session back from PostgreSQL before the decision (one indexed query; observations settled).
  taint.Facts (BenchmarkFacts in internal/taint) is the lookup alone; BenchmarkObserve100KB indexes
  100 KB of such mail into a full session. Baseline: extracting the 500-byte body alone.
- **Prometheus metrics** (BenchmarkObserver in internal/metrics): what internal/metrics adds to one
  call — its decision counted under its labels and timed, its outcome timed — through the label
  children resolved once per tool and action. BenchmarkPipelineMetrics (internal/gateway) runs
  BenchmarkPipeline's decision (1,000 policies, budgets on) without and with the metrics; on this
  noisy machine the difference is within the run-to-run spread, so the observer alone is the figure.
- **Supply-chain scan** (BenchmarkScanSkill, BenchmarkScanText in internal/scan): every rule over a
  realistic 10 MB skill (internal/skilltest: Markdown references with typographic punctuation and
  non-Latin text, Python and shell scripts, JSON Lines schemas), file by file as ` + "`warden skill add`" + `
  scans it, and over repeated ordinary skill text with tool names and allowed hosts set (so shadowing
  and URLs are judged too). MB/s is wall-clock; MB per CPU second is the process's CPU time, which the
  neighbours on a shared machine move much less. Baselines over the same skill: one strings.Index pass
  for a word it does not hold (memory speed), and one case-insensitive regexp of the scanner's kind
  (what a scanner without prefilters pays for each rule).
- **` + "`warden skill add`" + `** (BenchmarkSkillAdd10MB in internal/bench): the CLI's add of the same realistic
  10 MB skill folder end to end against a server in the same process on 127.0.0.1 with SQLite — read,
  digest, canonical archive and upload on the client; archive safety, digest, scan, canonical archive,
  store and audit event on the server — a new version each time. The CPU figure is the process's
  (client and server together). Baseline, timed in the same loop: SHA-256 of the same files read from
  disk. BenchmarkReadDir10MB (internal/skill) is the client's read and digest alone.
`

func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ^$|()*") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " / ")
}

// prefixed indents a subprocess's output in the log.
func prefixed(w io.Writer) io.Writer { return &indent{w: w, start: true} }

type indent struct {
	w     io.Writer
	start bool
}

func (p *indent) Write(b []byte) (int, error) {
	var out bytes.Buffer
	for _, c := range b {
		if p.start {
			out.WriteString("    ")
		}
		out.WriteByte(c)
		p.start = c == '\n'
	}
	if _, err := p.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}
