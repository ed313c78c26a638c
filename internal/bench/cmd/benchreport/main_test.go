package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/wardenhq/warden/internal/gateway
cpu: AMD EPYC
BenchmarkPipeline/policies=1000/budgets=true-2      	   50000	     24000 ns/op	        19.50 p50-µs	        80.00 p99-µs	    8733 B/op	     131 allocs/op
BenchmarkPipeline/policies=1000/budgets=true-2      	   50000	     26000 ns/op	        21.50 p50-µs	        90.00 p99-µs	    8733 B/op	     131 allocs/op
BenchmarkPipeline/policies=1000/budgets=true-2      	   50000	     25000 ns/op	        20.50 p50-µs	        70.00 p99-µs	    8733 B/op	     131 allocs/op
BenchmarkDurableAppend/appenders=64-2        	       1	       756.4 events/s	         1.246 p50-ms	         1.246 p99-ms
BenchmarkDurableAppendAtRate/rate=20000-2    	2026/12/07 05:07:18 WARN the database's directory lets other users in dir=/tmp/x mode=0755
       1	     19950 events/s	         4.100 p99-ms
--- SKIP: BenchmarkSandboxStart
    baseline_test.go:171: sandboxes are measured as root, like their tests
BenchmarkVerify
BenchmarkVerify-2   	       1	2752247975 ns/op	   4360072 events/min
PASS
ok  	github.com/wardenhq/warden/internal/gateway	10.1s
`

func TestParseBench(t *testing.T) {
	results, skipped := map[string]map[string][]float64{}, map[string]string{}
	parseBench(sample, results, skipped)
	r := &report{results: results, skipped: skipped, failed: map[string]string{}}
	for _, c := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkPipeline/policies=1000/budgets=true", "p50-µs", 20.5},
		{"BenchmarkPipeline/policies=1000/budgets=true", "p99-µs", 80},
		{"BenchmarkPipeline/policies=1000/budgets=true", "ns/op", 25000},
		{"BenchmarkDurableAppend/appenders=64", "p99-ms", 1.246},
		// A log line written into a result line does not lose the figures that follow it.
		{"BenchmarkDurableAppendAtRate/rate=20000", "p99-ms", 4.1},
		{"BenchmarkVerify", "events/min", 4360072},
	} {
		if got, why := r.metric("./x", c.name, c.unit); got != c.want || why != "" {
			t.Errorf("%s %s: %v (%s), want %v", c.name, c.unit, got, why, c.want)
		}
	}
	if _, why := r.metric("./x", "BenchmarkSandboxStart", "added-p50-ms"); why != "skipped: sandboxes are measured as root, like their tests" {
		t.Errorf("skip: %q", why)
	}
	// A renamed benchmark or metric is missing, loudly, never read as zero.
	if _, why := r.metric("./x", "BenchmarkPipeline/policies=1000/budgets=true", "p50-ms"); !strings.Contains(why, "no p50-ms") {
		t.Errorf("missing unit: %q", why)
	}
	r.failed["./y"] = "exit status 1"
	if _, why := r.metric("./y", "BenchmarkKill", "return-p99-ms"); why != "failed: exit status 1" {
		t.Errorf("failed package: %q", why)
	}
}

func TestVerdict(t *testing.T) {
	for _, c := range []struct {
		v, limit    float64
		lowerBetter bool
		want        string
	}{
		{1.5, 2, true, "yes"}, {2, 2, true, "yes"}, {2.1, 2, true, "**no**"},
		{0.6, 0.5, false, "yes"}, {0.5, 0.5, false, "yes"}, {0.4, 0.5, false, "**no**"},
	} {
		if got := verdict(c.v, c.limit, c.lowerBetter); got != c.want {
			t.Errorf("verdict(%v, %v, %v) = %s, want %s", c.v, c.limit, c.lowerBetter, got, c.want)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Fatal(m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatal(m)
	}
}
