//go:build unix

package identity_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// cpuTime is the process's user and system time. Benchmarks report it per operation beside the
// wall-clock ns/op, because on a shared machine wall time measures the neighbours too.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkVerifyTokenCached is the hot path: a token seen before, so the cost is the hash, the
// cache lookup and the checks of expiry, revocation and the agent's status and epoch.
func BenchmarkVerifyTokenCached(b *testing.B) {
	e := newEnv(b)
	token := e.issue(identity.IssueRequest{}).Token
	if _, err := e.svc.VerifyToken(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if _, err := e.svc.VerifyToken(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

func BenchmarkVerifyTokenCachedParallel(b *testing.B) {
	e := newEnv(b)
	tokens := make([]string, 64)
	for i := range tokens {
		tokens[i] = e.issue(identity.IssueRequest{}).Token
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.svc.VerifyToken(ctx, tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkVerifyTokenFirst is a token's first use: every iteration verifies a token this
// service has never seen, so the cost includes parsing and the Ed25519 signature check. The
// tokens come from another replica and are made before the timer starts.
func BenchmarkVerifyTokenFirst(b *testing.B) {
	e := newEnv(b)
	issuer := e.replica()
	tokens := make([]string, b.N)
	for i := range tokens {
		iss, err := issuer.Issue(ctx, e.agent, identity.IssueRequest{})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = iss.Token
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime(b)
	for i := range b.N {
		if _, err := e.svc.VerifyToken(ctx, tokens[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, start)
	if st := e.svc.CacheStats(); st.Hits != 0 {
		b.Fatalf("%d cache hits in a benchmark of first uses", st.Hits)
	}
}

func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Issue(ctx, e.agent, identity.IssueRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
