package main_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/sandbox"
)

// BenchmarkSandboxStart measures what docs/PERFORMANCE.md records for `warden run`: the time
// from starting the command to its first instruction (here, its first byte on stdout), in a
// sandbox built by the real warden binary as init, against a plain exec of the same command.
func BenchmarkSandboxStart(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("the sandbox benchmark runs as root, like CI")
	}
	sandbox.InitBinary = binary
	defer func() { sandbox.InitBinary = "" }()
	ws := b.TempDir()
	firstByte := func(start func(w *os.File) (func(), error)) time.Duration {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		t0 := time.Now()
		wait, err := start(w)
		w.Close()
		if err != nil {
			b.Fatal(err)
		}
		var one [1]byte
		if _, err := io.ReadFull(r, one[:]); err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		wait()
		return d
	}
	plain := func(w *os.File) (func(), error) {
		c := exec.Command("/bin/echo", "x")
		c.Stdout = w
		if err := c.Start(); err != nil {
			return nil, err
		}
		return func() { _ = c.Wait() }, nil
	}
	boxed := func(w *os.File) (func(), error) {
		sb, err := sandbox.Start(context.Background(), &sandbox.Spec{
			Command: []string{"/bin/echo", "x"}, Env: []string{"PATH=/usr/bin:/bin"},
			Workspace: ws, Stdout: w, Limits: sandbox.Limits{Memory: 2 << 30, Pids: 512},
		})
		if err != nil {
			return nil, err
		}
		return func() { _, _ = sb.Wait() }, nil
	}
	var ps, ss []time.Duration
	b.ResetTimer()
	for range b.N {
		ps = append(ps, firstByte(plain))
		ss = append(ss, firstByte(boxed))
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	pp, sp := p50(ps), p50(ss)
	b.ReportMetric(pp, "plain-p50-ms")
	b.ReportMetric(sp, "sandbox-p50-ms")
	b.ReportMetric(sp-pp, "overhead-p50-ms")
}
