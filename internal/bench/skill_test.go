//go:build unix

package bench_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/bench"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/skill"
	"github.com/wardenhq/warden/internal/skilltest"
)

// BenchmarkSkillAdd10MB is `warden skill add DIR` of a realistic 10 MB skill (skilltest: 70
// files of Markdown references, scripts and JSON Lines) end to end: the CLI reads and digests
// the folder, packs it and uploads it to a server on 127.0.0.1 with SQLite, which verifies the
// archive and the digest, scans every file, and stores the version with its audit event
// (the bar: ≤ 1 s). Each iteration changes SKILL.md, so that every add is a new
// version. The baseline, timed in the same loop, is SHA-256 over the same bytes read from disk:
// the least any verified add must do.
func BenchmarkSkillAdd10MB(b *testing.B) {
	s, err := bench.StartSelf(context.Background(), bench.SelfOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	dir := filepath.Join(b.TempDir(), "skill")
	t := skilltest.Realistic("weekly-digest", 10<<20, 1)
	if err := t.WriteDir(dir, -1, -1); err != nil {
		b.Fatal(err)
	}
	env := cli.Env{Stdin: strings.NewReader(""), Getenv: func(k string) string {
		return map[string]string{"WARDEN_ADDR": s.URL, "WARDEN_TOKEN": s.Token}[k]
	}}
	manifest := t.File(skill.ManifestFile).Data
	i := 0
	// addNew adds the skill as a new version and returns how long it took, and its CPU time.
	addNew := func() (time.Duration, time.Duration) {
		i++
		if err := os.WriteFile(filepath.Join(dir, skill.ManifestFile), fmt.Appendf(slices.Clip(manifest), "\nRevision %d.\n", i), 0o644); err != nil {
			b.Fatal(err)
		}
		t0, c0 := time.Now(), cpuTime(b)
		var stdout, stderr strings.Builder
		env.Stdout, env.Stderr = &stdout, &stderr
		if err := cli.Run(context.Background(), []string{"skill", "add", dir, "--allow-unsigned", "--reason", "benchmark", "--json"}, env); err != nil {
			b.Fatalf("skill add: %v\n%s", err, stderr.String())
		}
		took, cpu := time.Since(t0), cpuTime(b)-c0
		var out struct {
			Added bool `json:"added"`
		}
		if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil || !out.Added {
			b.Fatalf("skill add did not add a version: %v\n%s", err, stdout.String())
		}
		return took, cpu
	}
	addNew() // the server runs for long: its first add (caches, the heap's growth) is not the one measured
	var add, hash []time.Duration
	var cpu time.Duration
	for b.Loop() {
		took, c := addNew()
		add, cpu = append(add, took), cpu+c
		t0 := time.Now()
		if err := sha256Dir(dir); err != nil {
			b.Fatal(err)
		}
		hash = append(hash, time.Since(t0))
	}
	slices.Sort(add)
	slices.Sort(hash)
	// The median: with the few adds a run makes, the middle two averaged when they are even.
	p50 := func(l []time.Duration) float64 {
		return float64(l[(len(l)-1)/2]+l[len(l)/2]) / 2 / float64(time.Millisecond)
	}
	b.ReportMetric(p50(add), "add-p50-ms")
	b.ReportMetric(p50(hash), "sha256-p50-ms")
	b.ReportMetric(float64(cpu)/float64(len(add))/float64(time.Millisecond), "add-cpu-ms/op")
	b.ReportMetric(float64(t.Size)/1e6, "MB")
}

// sha256Dir reads every file under dir and hashes it.
func sha256Dir(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_ = sha256.Sum256(data)
		return nil
	})
}

// cpuTime is the process's user and system time (client and server both run in it).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
